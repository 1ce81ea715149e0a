package persistence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// ErrCounter: a counter cannot be made (bad range, name already in use).
var ErrCounter = errors.New("persistence: counter")

// Counter hands out numbers in [min, max], wrapping from max back to min, and never
// reuses one across crashes: before handing out a block of numbers it durably records
// the first number after the block (the mark), and a restart resumes at the mark. The
// rest of a block in use at a crash is skipped. Safe for concurrent use.
type Counter struct {
	s                 *Store
	name              string
	key               []byte
	min, max, reserve uint64

	mu   sync.Mutex
	next uint64 // next number to hand out
	left uint64 // numbers of the reserved block not yet handed out
}

// Counter opens the named counter, e.g. Counter("stan", 1, 999999, 100). reserve is
// the block size: one durable write per reserve numbers, and at most reserve-1 numbers
// skipped per crash. A stored mark outside [min, max] (the range was changed) restarts
// at min. One Counter per name per Store.
func (s *Store) Counter(name string, min, max, reserve uint64) (*Counter, error) {
	if min > max || reserve == 0 || (max-min != ^uint64(0) && reserve > max-min+1) {
		return nil, fmt.Errorf("%w %q: need min <= max and 1 <= reserve <= max-min+1 (got %d, %d, %d)",
			ErrCounter, name, min, max, reserve)
	}
	key := Key("ctr", name)
	next := min
	v, err := s.Get(key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("%w %q: %w", ErrCounter, name, err)
	default:
		mark, err := decodeMark(v)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrCounter, name, err)
		}
		if mark >= min && mark <= max {
			next = mark
		}
	}
	s.counterMu.Lock()
	defer s.counterMu.Unlock()
	if s.counters[name] {
		return nil, fmt.Errorf("%w %q: already open", ErrCounter, name)
	}
	s.counters[name] = true
	return &Counter{s: s, name: name, key: key, min: min, max: max, reserve: reserve, next: next}, nil
}

// Next returns the next number. When the block is used up it first makes the next
// block's mark durable (one group commit); if that fails, no number is handed out.
func (c *Counter) Next() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left == 0 {
		mark := c.advance(c.next, c.reserve)
		op := Op{Key: c.key, Value: binary.BigEndian.AppendUint64(nil, mark)}
		if err := c.s.Commit(context.Background(), op); err != nil {
			return 0, fmt.Errorf("counter %q: reserve block: %w", c.name, err)
		}
		c.left = c.reserve
	}
	n := c.next
	c.next = c.advance(c.next, 1)
	c.left--
	return n, nil
}

// advance moves x forward by k inside [min, max], wrapping.
func (c *Counter) advance(x, k uint64) uint64 {
	span := c.max - c.min + 1 // 0 means the whole uint64 range
	if span == 0 {
		return x + k
	}
	off := x - c.min
	if off >= span-k {
		return c.min + off - (span - k)
	}
	return c.min + off + k
}

// decodeMark reads a stored mark: 8 bytes big-endian.
func decodeMark(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: mark of %d bytes, want 8", ErrCounter, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
