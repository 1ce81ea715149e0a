package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
)

// Sentinels, checked with errors.Is.
var (
	// ErrNotFound: Get found no value for the key.
	ErrNotFound = errors.New("persistence: not found")
	// ErrUnavailable: an earlier write failed, so the store refuses writes until the
	// process is restarted. The error also wraps the original cause.
	ErrUnavailable = errors.New("persistence: store unavailable after a failed write")
	// ErrWriteFailed: this commit's write failed; its ops may or may not be on disk.
	// The store is now unavailable.
	ErrWriteFailed = errors.New("persistence: write failed, outcome unknown")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("persistence: store closed")
	// ErrTooLarge: one Commit's ops do not fit in one Badger transaction. Nothing was
	// written; the store stays healthy.
	ErrTooLarge = errors.New("persistence: commit too large for one transaction")
	// ErrInvalidOp: an op Badger refuses (empty key, reserved prefix, oversize key).
	// Nothing of that Commit was written; the store stays healthy.
	ErrInvalidOp = errors.New("persistence: invalid op")
)

// Options tunes the store. The zero value is the small-memory profile of
// docs/persistence.md (about 30 MiB resident at most instead of Badger's ~700 MiB).
type Options struct {
	// Logger receives Badger's messages and the store's own. Nil: slog.Default().
	Logger *slog.Logger
	// BadgerLevel is the lowest Badger level passed on. Nil: slog.LevelWarn, because
	// Badger logs every replay, flush and compaction at Info.
	BadgerLevel slog.Leveler
	// MemTableSize is Badger's memtable (and write-ahead file) size. Each memtable's arena
	// is about 1.3x this. Zero: 8 MiB (Badger: 64 MiB).
	MemTableSize int64
	// NumMemtables is how many memtables may wait for flush before writes stall.
	// Zero: 2 (Badger: 5).
	NumMemtables int
	// ValueLogFileSize caps one value-log file (values over the memtable batch size go
	// there). Zero: 64 MiB (Badger: 1 GiB).
	ValueLogFileSize int64
	// BlockCacheSize is Badger's read cache. Zero: 8 MiB (Badger: 256 MiB).
	BlockCacheSize int64
	// MaxGroupOps and MaxGroupBytes bound one group commit (one Badger transaction, one
	// sync). A group is also split when Badger says the transaction is too big.
	// Zero: 4096 ops, 512 KiB of keys and values.
	MaxGroupOps   int
	MaxGroupBytes int
	// QueueLen is how many commits may wait for the writer before Commit blocks.
	// Zero: 4096.
	QueueLen int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BadgerLevel == nil {
		o.BadgerLevel = slog.LevelWarn
	}
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MemTableSize, 8<<20)
	def(&o.ValueLogFileSize, 64<<20)
	def(&o.BlockCacheSize, 8<<20)
	defInt(&o.NumMemtables, 2)
	defInt(&o.MaxGroupOps, 4096)
	defInt(&o.MaxGroupBytes, 512<<10)
	defInt(&o.QueueLen, 4096)
	return o
}

func (o Options) badger(dir string) badger.Options {
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log: o.Logger, min: o.BadgerLevel}).
		WithMetricsEnabled(false). // Badger's metrics are process-global expvars
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithBlockCacheSize(o.BlockCacheSize).
		WithNumCompactors(2).
		// Only the writer goroutine writes, so Badger's conflict tracking is dead weight.
		WithDetectConflicts(false)
	// Badger refuses a value threshold above 15% of the memtable (its batch limit).
	if limit := o.MemTableSize * 15 / 100; bo.ValueThreshold > limit {
		bo = bo.WithValueThreshold(limit)
	}
	return bo
}

// Stats counts the writer's work since Open. Ops/Groups is the number of records each
// sync carried.
type Stats struct {
	Commits uint64 // Commit/CommitAsync calls acknowledged durable
	Ops     uint64 // ops in those commits
	Groups  uint64 // Badger transactions committed, i.e. syncs
}

// Store is a Badger database with one group-commit writer. Safe for concurrent use.
type Store struct {
	db   *badger.DB
	log  *slog.Logger
	opts Options

	// mu guards closed; Commit holds it shared while enqueueing so Close can close reqs.
	mu     sync.RWMutex
	closed bool
	reads  sync.WaitGroup // reads in flight; Close waits so Badger never sees a read after close
	reqs   chan *request
	done   chan struct{} // closed when the writer has exited

	failed atomic.Pointer[error] // first write failure; non-nil means unavailable

	// commitTxn commits one group. A field so tests can inject a failing disk.
	commitTxn func(*badger.Txn) error

	commits, ops, groups atomic.Uint64

	counterMu sync.Mutex
	counters  map[string]bool
}

// Open opens (creating if needed) the store in dir and starts its writer.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	db, err := badger.Open(opts.badger(dir))
	if err != nil {
		return nil, fmt.Errorf("persistence: open %s: %w", dir, err)
	}
	s := &Store{
		db:        db,
		log:       opts.Logger.With("component", "persistence"),
		opts:      opts,
		reqs:      make(chan *request, opts.QueueLen),
		done:      make(chan struct{}),
		commitTxn: (*badger.Txn).Commit,
		counters:  map[string]bool{},
	}
	go s.run()
	return s, nil
}

// Close lets queued commits finish, stops the writer and closes Badger. Later calls
// return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	s.reads.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("persistence: close: %w", err)
	}
	return nil
}

// Healthy is nil while the store accepts writes; otherwise an error wrapping
// ErrUnavailable and the cause, or ErrClosed.
func (s *Store) Healthy() error {
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Ops: s.ops.Load(), Groups: s.groups.Load()}
}

// beginRead registers a read so Close waits for it.
func (s *Store) beginRead() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.reads.Add(1)
	return nil
}

// Get returns a copy of the value stored at key, or an error wrapping ErrNotFound.
// Reads keep working after a write failure: what is on disk is still readable.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := s.beginRead(); err != nil {
		return nil, err
	}
	defer s.reads.Done()
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, notFound{key: key} // formatted only if printed: a miss is on the hot path
	}
	if err != nil {
		return nil, fmt.Errorf("persistence: get %q: %w", key, err)
	}
	return v, nil
}

// notFound is Get's miss: it wraps ErrNotFound and names the key when printed.
type notFound struct{ key []byte }

func (e notFound) Error() string { return fmt.Sprintf("get %q: %v", e.key, ErrNotFound) }
func (e notFound) Unwrap() error { return ErrNotFound }

// ErrStop may be returned by a scan callback to end the scan early without error.
var ErrStop = errors.New("persistence: stop scan")

// Scan calls fn for every key with the given prefix, in key order, on one consistent
// snapshot. key and value are only valid during fn (they point into Badger's memory):
// copy them to keep them. An error from fn ends the scan and is returned, except ErrStop.
// fn may call Commit; writes made during the scan are not seen by it.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return s.scan(prefix, prefix, nil, fn)
}

// ScanRange is Scan over start <= key < end; a nil end means no upper bound.
func (s *Store) ScanRange(start, end []byte, fn func(key, value []byte) error) error {
	return s.scan(nil, start, end, fn)
}

func (s *Store) scan(prefix, start, end []byte, fn func(key, value []byte) error) error {
	if err := s.beginRead(); err != nil {
		return err
	}
	defer s.reads.Done()
	err := s.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.PrefetchValues = false // values are small and inline; prefetch only copies
		iopt.Prefix = prefix
		it := txn.NewIterator(iopt)
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			if end != nil && bytes.Compare(k, end) >= 0 {
				return nil
			}
			if err := item.Value(func(v []byte) error { return fn(k, v) }); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}
