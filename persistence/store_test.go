package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

func testOptions() Options {
	return Options{Logger: slog.New(slog.DiscardHandler)}
}

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func set(k, v string) Op { return Op{Key: []byte(k), Value: []byte(v)} }

func mustGet(t *testing.T, s *Store, key, want string) {
	t.Helper()
	got, err := s.Get([]byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if string(got) != want {
		t.Fatalf("get %q = %q, want %q", key, got, want)
	}
}

// waitQueued waits (without a deadline of its own) until n requests are queued.
func waitQueued(s *Store, n int) {
	for len(s.reqs) < n {
		time.Sleep(100 * time.Microsecond)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Commit(ctx, set("a", "1"), set("b", "2"), set("c", "3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, Op{Key: []byte("b"), Delete: true}, set("a", "1b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	mustGet(t, s, "a", "1b")
	mustGet(t, s, "c", "3")
	if _, err := s.Get([]byte("b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: err = %v, want ErrNotFound", err)
	}
}

func TestConcurrentCommittersAllAcknowledged(t *testing.T) {
	s := openT(t, t.TempDir())
	const workers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				k := Key("w", Uint(uint64(w)), Uint(uint64(i)))
				if err := s.Commit(context.Background(), Op{Key: k, Value: k}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	if err := s.Scan(Key("w"), func(k, v []byte) error {
		if !bytes.Equal(k, v) {
			return fmt.Errorf("value of %q is %q", k, v)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if n != workers*each || st.Commits != workers*each || st.Ops != workers*each {
		t.Fatalf("found %d records, stats %+v; want %d", n, st, workers*each)
	}
	if st.Groups == 0 || st.Groups > st.Commits {
		t.Fatalf("groups %d for %d commits", st.Groups, st.Commits)
	}
	t.Logf("%d commits in %d groups", st.Commits, st.Groups)
}

// TestGroupCommitSharesSync holds the writer inside its first sync while 50 callers
// queue, and checks that all 50 then share one transaction.
func TestGroupCommitSharesSync(t *testing.T) {
	s := openT(t, t.TempDir())
	entered, release := blockFirstSync(s)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Commit(context.Background(), set("first", "x")); err != nil {
			t.Error(err)
		}
	})
	<-entered
	const n = 50
	for i := range n {
		wg.Go(func() {
			if err := s.Commit(context.Background(), set(fmt.Sprint("k", i), "v")); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(s, n)
	close(release)
	wg.Wait()
	if st := s.Stats(); st.Groups != 2 || st.Commits != n+1 {
		t.Fatalf("stats %+v, want 2 groups for %d commits", st, n+1)
	}
}

// blockFirstSync makes the writer's first sync wait for release; entered is closed
// when the writer is inside it.
func blockFirstSync(s *Store) (entered <-chan struct{}, release chan struct{}) {
	in, rel := make(chan struct{}), make(chan struct{})
	first := true
	s.commitTxn = func(txn *badger.Txn) error {
		if first {
			first = false
			close(in)
			<-rel
		}
		return txn.Commit()
	}
	return in, rel
}

func TestBigGroupIsSplit(t *testing.T) {
	s := openT(t, t.TempDir())
	s.opts.MaxGroupOps = 1 << 30
	s.opts.MaxGroupBytes = 1 << 30
	entered, release := blockFirstSync(s)
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Commit(context.Background(), set("first", "x")) })
	<-entered
	// 8 x 4000 ops exceed one Badger transaction at the default 8 MiB memtable.
	const reqs, per = 8, 4000
	for r := range reqs {
		wg.Go(func() {
			ops := make([]Op, per)
			for i := range ops {
				k := Key("big", Uint(uint64(r)), Uint(uint64(i)))
				ops[i] = Op{Key: k, Value: k}
			}
			if err := s.Commit(context.Background(), ops...); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(s, reqs)
	close(release)
	wg.Wait()
	n := 0
	if err := s.Scan(Key("big"), func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if n != reqs*per || st.Groups < 3 {
		t.Fatalf("found %d of %d, stats %+v: want the group split into >= 2 txns", n, reqs*per, st)
	}
	t.Logf("stats %+v", st)
}

func TestTooLargeAndInvalidKeepStoreHealthy(t *testing.T) {
	s := openT(t, t.TempDir())
	ops := make([]Op, 40000)
	for i := range ops {
		ops[i] = set(fmt.Sprint("huge", i), "v")
	}
	if err := s.Commit(context.Background(), ops...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge commit: err = %v, want ErrTooLarge", err)
	}
	for _, bad := range []Op{{Key: nil}, set("!badger!x", "v")} {
		if err := s.Commit(context.Background(), set("ok", "1"), bad); !errors.Is(err, ErrInvalidOp) {
			t.Fatalf("op %q: err = %v, want ErrInvalidOp", bad.Key, err)
		}
	}
	if err := s.Healthy(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("huge0")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("part of a refused commit was written: %v", err)
	}
	if _, err := s.Get([]byte("ok")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("part of a refused commit was written: %v", err)
	}
	if err := s.Commit(context.Background(), set("after", "1")); err != nil {
		t.Fatal(err)
	}
}

// TestAtomicUnderConcurrentReads: every snapshot sees both keys of a Commit or neither.
func TestAtomicUnderConcurrentReads(t *testing.T) {
	s := openT(t, t.TempDir())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 300 {
			id := Uint(uint64(i))
			if err := s.Commit(context.Background(),
				Op{Key: Key("a", id), Value: []byte(id)},
				Op{Key: Key("b", id), Value: []byte(id)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	scans := 0
	for {
		select {
		case <-done:
			wg.Wait()
			t.Logf("%d consistent scans", scans)
			return
		default:
		}
		var as, bs int
		err := s.ScanRange(Key("a"), Key("c"), func(k, v []byte) error {
			if parts, _ := SplitKey(k); parts[0] == "a" {
				as++
			} else {
				bs++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if as != bs {
			t.Fatalf("snapshot saw %d a-keys and %d b-keys", as, bs)
		}
		scans++
	}
}

func TestScanOrderPrefixRangeStop(t *testing.T) {
	s := openT(t, t.TempDir())
	var ops []Op
	for _, day := range []string{"20260128", "20260127", "2026012"} {
		for _, id := range []uint64{10, 9, 100} {
			ops = append(ops, Op{Key: Key("idx", "day", day, Uint(id)), Value: []byte(day)})
		}
	}
	ops = append(ops, set("zzz", "other"))
	if err := s.Commit(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	var got []string
	collect := func(k, v []byte) error {
		p, err := SplitKey(k)
		if err != nil {
			return err
		}
		got = append(got, p[2]+"/"+p[3][17:])
		return nil
	}
	if err := s.Scan(Key("idx", "day", "20260127"), collect); err != nil {
		t.Fatal(err)
	}
	want := "[20260127/009 20260127/010 20260127/100]"
	if fmt.Sprint(got) != want {
		t.Fatalf("prefix scan = %v, want %v", got, want)
	}
	got = nil
	if err := s.ScanRange(Key("idx", "day", "20260127"), Key("idx", "day", "20260128", Uint(10)), collect); err != nil {
		t.Fatal(err)
	}
	want = "[20260127/009 20260127/010 20260127/100 20260128/009]"
	if fmt.Sprint(got) != want {
		t.Fatalf("range scan = %v, want %v", got, want)
	}
	n := 0
	if err := s.Scan(nil, func(k, v []byte) error {
		if n++; n == 2 {
			return ErrStop
		}
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("ErrStop: err %v after %d calls", err, n)
	}
	boom := errors.New("boom")
	if err := s.Scan(nil, func(k, v []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("callback error not returned: %v", err)
	}
}

func TestFailedWriteMakesStoreUnavailable(t *testing.T) {
	s := openT(t, t.TempDir())
	if err := s.Commit(context.Background(), set("before", "1")); err != nil {
		t.Fatal(err)
	}
	c, err := s.Counter("stan", 1, 999999, 10)
	if err != nil {
		t.Fatal(err)
	}
	disk := errors.New("injected: no space left on device")
	s.commitTxn = func(*badger.Txn) error { return disk }

	err = s.Commit(context.Background(), set("lost", "1"))
	if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, disk) {
		t.Fatalf("failing commit: err = %v, want ErrWriteFailed wrapping the cause", err)
	}
	if h := s.Healthy(); !errors.Is(h, ErrUnavailable) || !errors.Is(h, disk) {
		t.Fatalf("Healthy() = %v, want ErrUnavailable wrapping the cause", h)
	}
	s.commitTxn = (*badger.Txn).Commit // the disk "recovers": the store must still refuse
	if err := s.Commit(context.Background(), set("later", "1")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("later commit: err = %v, want ErrUnavailable", err)
	}
	got := make(chan error, 1)
	s.CommitAsync([]Op{set("async", "1")}, func(err error) { got <- err })
	if err := <-got; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("async commit: err = %v, want ErrUnavailable", err)
	}
	if _, err := c.Next(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("counter after failure: err = %v, want ErrUnavailable", err)
	}
	mustGet(t, s, "before", "1") // reads still work
	if _, err := s.Get([]byte("later")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused write is visible: %v", err)
	}
}

// TestBadgerClosedUnderStore makes Badger itself refuse the write.
func TestBadgerClosedUnderStore(t *testing.T) {
	s := openT(t, t.TempDir())
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), set("k", "v")); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("err = %v, want ErrWriteFailed", err)
	}
	if err := s.Commit(context.Background(), set("k", "v")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Healthy() = %v", err)
	}
}

func TestCommitContextAndClose(t *testing.T) {
	s, err := Open(t.TempDir(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	s.commitTxn = func(txn *badger.Txn) error { <-release; return txn.Commit() }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Commit(ctx, set("k", "v")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled commit: err = %v", err)
	}
	close(release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), set("k", "v")); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: err = %v, want ErrClosed", err)
	}
	if _, err := s.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: err = %v, want ErrClosed", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Healthy() after close = %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}
