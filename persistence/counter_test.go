package persistence

import (
	"errors"
	"sync"
	"testing"
)

// TestCounterResumesAboveAfterCrash: numbers taken before a "crash" (the store closed
// without any chance to save the in-memory position) are all below those taken after.
func TestCounterResumesAboveAfterCrash(t *testing.T) {
	dir := t.TempDir()
	var before []uint64
	highest := uint64(0)
	for round := range 4 {
		s, err := Open(dir, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Counter("stan", 1, 999999, 10)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 7 + round*5 { // stop mid-block each round
			n, err := c.Next()
			if err != nil {
				t.Fatal(err)
			}
			if n <= highest {
				t.Fatalf("round %d take %d: %d is not above %d handed out earlier", round, i, n, highest)
			}
			highest = n
			before = append(before, n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if before[0] != 1 {
		t.Fatalf("first number %d, want min 1", before[0])
	}
	t.Logf("numbers across 4 crashes: %v", before)
}

// TestCounterWrapsWithoutReuseInACycle: in a range of 10 with blocks of 3 and crashes,
// the position along the cycle (counting wraps) strictly increases.
func TestCounterWrapsWithoutReuseInACycle(t *testing.T) {
	dir := t.TempDir()
	var seq []uint64
	for range 5 {
		s, err := Open(dir, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Counter("trace", 1, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			n, err := c.Next()
			if err != nil {
				t.Fatal(err)
			}
			if n < 1 || n > 10 {
				t.Fatalf("%d outside [1, 10]", n)
			}
			seq = append(seq, n)
		}
		_ = s.Close()
	}
	// Unwrap: a step down means one wrap. The unwrapped values must strictly increase,
	// and successive numbers may skip at most reserve-1 per crash.
	var prev, wraps uint64
	for i, n := range seq {
		if i > 0 && n <= seq[i-1] {
			wraps++
		}
		u := wraps*10 + n
		if i > 0 && u <= prev {
			t.Fatalf("reuse at %d in %v", i, seq)
		}
		prev = u
	}
	if wraps == 0 {
		t.Fatalf("sequence %v never wrapped", seq)
	}
	t.Logf("sequence %v", seq)
}

func TestCounterConcurrentDistinctAndOneSyncPerBlock(t *testing.T) {
	s := openT(t, t.TempDir())
	c, err := s.Counter("ref", 0, ^uint64(0), 100)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 500
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := c.Next()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("%d handed out twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct numbers, want %d", len(seen), workers*each)
	}
	if st := s.Stats(); st.Commits != workers*each/100 {
		t.Fatalf("%d durable writes for %d numbers in blocks of 100", st.Commits, workers*each)
	}
}

func TestCounterArguments(t *testing.T) {
	s := openT(t, t.TempDir())
	for _, a := range [][3]uint64{{5, 4, 1}, {1, 10, 0}, {1, 10, 11}} {
		if _, err := s.Counter("x", a[0], a[1], a[2]); !errors.Is(err, ErrCounter) {
			t.Errorf("Counter(%v): err = %v, want ErrCounter", a, err)
		}
	}
	if _, err := s.Counter("batch", 1, 10, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Counter("batch", 1, 10, 10); !errors.Is(err, ErrCounter) {
		t.Fatalf("second counter of the same name: err = %v", err)
	}
}

func TestCounterMarkOutsideRangeRestartsAtMin(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Counter("batch", 1, 1000, 500)
	for range 300 { // mark 501: outside the narrowed range
		if _, err := c.Next(); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	s = openT(t, dir)
	c, err = s.Counter("batch", 1, 100, 10) // range narrowed by the operator
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Next(); err != nil || n != 1 {
		t.Fatalf("Next() = %d, %v; want 1", n, err)
	}
}

func FuzzDecodeMark(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 42})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, v []byte) {
		n, err := decodeMark(v)
		if (err == nil) != (len(v) == 8) {
			t.Fatalf("decodeMark(%x) = %d, %v", v, n, err)
		}
	})
}
