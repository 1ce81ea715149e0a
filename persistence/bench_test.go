package persistence

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Run: go test -run '^$' -bench . -benchtime 3s ./persistence
// records/s and syncs/s are wall-clock rates; records/sync is Stats().Ops/Groups.

var benchValue = make([]byte, 200) // about one transaction record

func reportRates(b *testing.B, s *Store, records int, start time.Time) {
	el := time.Since(start).Seconds()
	st := s.Stats()
	b.ReportMetric(float64(records)/el, "records/s")
	b.ReportMetric(float64(st.Groups)/el, "syncs/s")
	if st.Groups > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Groups), "records/sync")
	}
}

func BenchmarkCommitSerial(b *testing.B) {
	s := openT(b, b.TempDir())
	ctx := context.Background()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if err := s.Commit(ctx, Op{Key: Key("txn", Uint(uint64(i))), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, s, b.N, start)
}

// BenchmarkCommitParallel: N goroutines (transaction actors) each committing one record
// at a time and waiting for it, as the actors do.
func BenchmarkCommitParallel(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprint("committers=", n), func(b *testing.B) {
			s := openT(b, b.TempDir())
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						op := Op{Key: Key("txn", Uint(uint64(i))), Value: benchValue}
						if err := s.Commit(context.Background(), op); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			reportRates(b, s, b.N, start)
		})
	}
}

// BenchmarkCommitAsync: one actor shell firing CommitAsync without waiting, bounded
// to 1024 in flight (the mailbox keeps working while writes are durable-pending).
func BenchmarkCommitAsync(b *testing.B) {
	s := openT(b, b.TempDir())
	inflight := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		inflight <- struct{}{}
		wg.Add(1)
		s.CommitAsync([]Op{{Key: Key("txn", Uint(uint64(i))), Value: benchValue}}, func(err error) {
			if err != nil {
				b.Error(err)
			}
			<-inflight
			wg.Done()
		})
	}
	wg.Wait()
	reportRates(b, s, b.N, start)
}

func BenchmarkCounterNext(b *testing.B) {
	s := openT(b, b.TempDir())
	c, err := s.Counter("stan", 1, 999999, 100)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Stats().Groups)/float64(b.N), "syncs/op")
}
