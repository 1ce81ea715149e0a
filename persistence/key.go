package persistence

import (
	"errors"
	"fmt"
	"strconv"
)

// Key encoding. Every part is written as its bytes followed by the terminator 0x00 0x01;
// a 0x00 inside a part is escaped as 0x00 0xFF. So any string can be a part, and:
//   - byte order of keys equals the lexicographic order of their part lists, and
//   - Key(a, b) is a byte prefix of Key(a, b, c), so Scan(Key(a, b)) finds all children
//     (but Key("2026") is not a prefix of Key("20260127"): parts match whole).
const (
	keyEsc     = 0x00
	keyTerm    = 0x01
	keyEscZero = 0xFF
)

// ErrBadKey is returned by SplitKey for bytes that Key cannot have produced.
var ErrBadKey = errors.New("persistence: malformed key")

// Key builds an ordered composite key, e.g. Key("txn", id) or
// Key("idx", "day", "20260127", id). Numbers must be fixed width to sort numerically:
// use Uint.
func Key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + 2
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			b = append(b, p[i])
			if p[i] == keyEsc {
				b = append(b, keyEscZero)
			}
		}
		b = append(b, keyEsc, keyTerm)
	}
	return b
}

// SplitKey is the inverse of Key.
func SplitKey(k []byte) ([]string, error) {
	var parts []string
	var cur []byte
	open := false // bytes seen since the last terminator
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c != keyEsc {
			cur = append(cur, c)
			open = true
			continue
		}
		if i+1 == len(k) {
			return nil, fmt.Errorf("%w: escape at end (offset %d)", ErrBadKey, i)
		}
		i++
		switch k[i] {
		case keyEscZero:
			cur = append(cur, keyEsc)
			open = true
		case keyTerm:
			parts = append(parts, string(cur))
			cur = cur[:0]
			open = false
		default:
			return nil, fmt.Errorf("%w: byte %#x after escape (offset %d)", ErrBadKey, k[i], i)
		}
	}
	if open {
		return nil, fmt.Errorf("%w: last part not terminated", ErrBadKey)
	}
	return parts, nil
}

// Uint formats n as 20 zero-padded decimal digits, so numeric order is key order and
// keys stay readable in a dump.
func Uint(n uint64) string {
	var b [20]byte
	for i := range b {
		b[i] = '0'
	}
	s := strconv.AppendUint(nil, n, 10)
	copy(b[20-len(s):], s)
	return string(b[:])
}
