package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// Op is one write: set Key to Value, or delete Key.
type Op struct {
	Key, Value []byte
	Delete     bool
}

type request struct {
	ops  []Op
	size int // bytes of keys and values, for the group limit
	done func(error)
}

// Commit writes ops atomically and returns nil only once they are synced to disk.
// Concurrent callers share one transaction and one sync (group commit).
//
// Errors: ErrWriteFailed (this write failed and may or may not have reached disk: do
// not act on it; after restart the store holds either all or none of ops),
// ErrUnavailable (an earlier write failed: nothing was written), ErrTooLarge and
// ErrInvalidOp (nothing written, store healthy), ErrClosed, or ctx's error if ctx ends
// while waiting (the ops may still become durable).
// ops must not be modified until Commit returns.
func (s *Store) Commit(ctx context.Context, ops ...Op) error {
	ch := make(chan error, 1)
	s.CommitAsync(ops, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("persistence: commit: %w", ctx.Err())
	}
}

// CommitAsync is Commit for actor shells that must not block their mailbox: done is
// called once with Commit's result, from the writer goroutine, so it must be quick and
// must not block or Commit (send the actor a message). When the store refuses at once
// (closed, unavailable, invalid op) done runs before CommitAsync returns.
// CommitAsync itself blocks only while the writer's queue is full (back-pressure).
// ops must not be modified until done is called.
func (s *Store) CommitAsync(ops []Op, done func(error)) {
	if p := s.failed.Load(); p != nil {
		done(fmt.Errorf("%w: %w", ErrUnavailable, *p))
		return
	}
	size := 0
	for i, op := range ops {
		if err := validate(op); err != nil {
			done(fmt.Errorf("%w: op %d: %w", ErrInvalidOp, i, err))
			return
		}
		size += len(op.Key) + len(op.Value)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		done(ErrClosed)
		return
	}
	if len(ops) == 0 {
		done(nil)
		return
	}
	s.reqs <- &request{ops: ops, size: size, done: done}
}

const badgerPrefix = "!badger!"

// validate catches what Badger would refuse, so a bad op never reaches a shared group.
func validate(op Op) error {
	switch {
	case len(op.Key) == 0:
		return errors.New("empty key")
	case len(op.Key) > 65000:
		return fmt.Errorf("key of %d bytes (max 65000)", len(op.Key))
	case bytes.HasPrefix(op.Key, []byte(badgerPrefix)):
		return errors.New("key uses Badger's reserved prefix")
	}
	return nil
}

// run is the writer: it takes the first waiting request, gathers whatever else is
// queued (up to the group limits) and writes the group in one transaction. Groups grow
// by themselves under load, because requests queue while the previous sync runs.
func (s *Store) run() {
	defer close(s.done)
	group := make([]*request, 0, 256)
	for r := range s.reqs {
		group = append(group[:0], r)
		ops, size := len(r.ops), r.size
	gather:
		for ops < s.opts.MaxGroupOps && size < s.opts.MaxGroupBytes {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break gather
				}
				group = append(group, r)
				ops += len(r.ops)
				size += r.size
			default:
				break gather
			}
		}
		s.writeGroup(group)
		clear(group) // drop references for the GC
	}
}

// writeGroup commits group in as few transactions as fit and answers every request.
func (s *Store) writeGroup(group []*request) {
	for len(group) > 0 {
		if p := s.failed.Load(); p != nil {
			for _, r := range group {
				r.done(fmt.Errorf("%w: %w", ErrUnavailable, *p))
			}
			return
		}
		txn := s.db.NewTransaction(true)
		n, addErr := addRequests(txn, group)
		if addErr != nil && n > 0 {
			// The failing request left partial ops in txn: rebuild without it.
			txn.Discard()
			txn = s.db.NewTransaction(true)
			if _, err := addRequests(txn, group[:n]); err != nil {
				txn.Discard()
				s.fail(group[:n], group[n:], err)
				return
			}
		}
		if n > 0 {
			err := s.commitTxn(txn)
			txn.Discard()
			if err != nil {
				s.fail(group[:n], group[n:], err)
				return
			}
			s.groups.Add(1)
			for _, r := range group[:n] {
				s.commits.Add(1)
				s.ops.Add(uint64(len(r.ops)))
				r.done(nil)
			}
			group = group[n:]
			continue
		}
		// The first request alone cannot be written; refuse it, keep the store healthy.
		txn.Discard()
		if errors.Is(addErr, badger.ErrTxnTooBig) {
			group[0].done(fmt.Errorf("%w: %d ops", ErrTooLarge, len(group[0].ops)))
		} else {
			group[0].done(fmt.Errorf("%w: %w", ErrInvalidOp, addErr))
		}
		group = group[1:]
	}
}

// addRequests adds whole requests to txn and returns how many fit before an error.
func addRequests(txn *badger.Txn, group []*request) (int, error) {
	for i, r := range group {
		for _, op := range r.ops {
			var err error
			if op.Delete {
				err = txn.Delete(op.Key)
			} else {
				err = txn.Set(op.Key, op.Value)
			}
			if err != nil {
				return i, err
			}
		}
	}
	return len(group), nil
}

// fail puts the store in the failed state. The write that failed has an unknown
// outcome, so its callers get ErrWriteFailed; the rest, never tried, ErrUnavailable.
func (s *Store) fail(tried, rest []*request, cause error) {
	s.failed.CompareAndSwap(nil, &cause)
	s.log.Error("write failed; refusing all further writes until restart", "err", cause)
	for _, r := range tried {
		r.done(fmt.Errorf("%w: %w", ErrWriteFailed, cause))
	}
	for _, r := range rest {
		r.done(fmt.Errorf("%w: %w", ErrUnavailable, cause))
	}
}
