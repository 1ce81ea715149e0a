package loads

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// sentToBank is the record a load has once "sent to bank" is durable, built through the
// same Step and derive the actor uses.
func sentToBank(id string, stan int, now time.Time) Record {
	a := &txnActor{spec: txnSpec{cfg: Config{Merchant: "898310048990001"}}}
	m := startLoad(id)
	rec := Record{V: recordVersion, Start: atRest(m)}
	for _, ev := range []txn.Msg{
		txn.KioskLoadRequest{ID: id, Terminal: m.Terminal, KioskTrace: m.KioskTrace, CardSerial: "3300000000000001",
			Amount: m.Amount, BankCode: bankCode, MaskedPAN: maskPAN(pan), STAN: fmt.Sprintf("%06d", stan), BankDate: now.Format("0102")},
		txn.PlatformCheckOK{Ref: fmt.Sprintf("2024031500%010d", stan)},
	} {
		s2, effects := txn.Step(rec.State, txn.Event{Now: now, Msg: ev})
		rec = a.derive(rec, s2, effects, input{msg: ev})
	}
	return rec
}

// writeUnfinished stores n loads in "sent to bank", with their indexes, 200 per commit.
func writeUnfinished(tb testing.TB, st *persistence.Store, n int) {
	now := time.Now()
	var ops []persistence.Op
	for i := range n {
		rec := sentToBank(fmt.Sprintf("T%08d", i), i+1, now)
		o, err := rec.ops(Record{})
		if err != nil {
			tb.Fatal(err)
		}
		ops = append(ops, o...)
		if len(ops) >= 600 || i == n-1 {
			if err := st.Commit(tb.Context(), ops...); err != nil {
				tb.Fatal(err)
			}
			ops = nil
		}
	}
}

// BenchmarkRecovery measures the start of a supervisor over 10,000 loads left in "sent to
// bank" by a crash, until every one has stepped Restarted durably and enqueued its
// reversal (reason 98) at the bank link:
//
//	go test ./actors/loads -run XXX -bench Recovery -benchtime 1x
func BenchmarkRecovery(b *testing.B) {
	const n = 10000
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range b.N {
		b.StopTimer()
		st, err := persistence.Open(b.TempDir(), persistence.Options{Logger: discard})
		if err != nil {
			b.Fatal(err)
		}
		tw := time.Now()
		writeUnfinished(b, st, n)
		b.Logf("writing %d records took %v", n, time.Since(tw))
		sys := quietSystem()
		var enqueued atomic.Int64
		bank := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(messages.EnqueueReversal); ok && m.Reason == "98" {
				enqueued.Add(1)
				ctx.Respond(messages.ReversalQueued{ReqID: m.ReqID, STAN: m.STAN})
			}
		}))
		sink := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
		deps := Deps{Store: st, Platform: sink, Banks: map[string]*actor.PID{bankCode: bank},
			Terminal: func(string) *actor.PID { return sink }, Logger: discard}
		b.StartTimer()

		t0 := time.Now()
		sup := sys.Root.Spawn(Props(Config{}, deps))
		for enqueued.Load() < n {
			time.Sleep(time.Millisecond)
		}
		took := time.Since(t0)

		b.StopTimer()
		res, err := sys.Root.RequestFuture(sup, StatsRequest{}, 10*time.Second).Result()
		if err != nil {
			b.Fatal(err)
		}
		stats := res.(Stats)
		if stats.Recovered != n {
			b.Fatalf("recovered %d, want %d", stats.Recovered, n)
		}
		b.ReportMetric(float64(took.Milliseconds()), "ms/10k-resumed")
		b.ReportMetric(float64(n)/took.Seconds(), "resumed/s")
		b.Logf("%d unfinished loads resumed and reversals enqueued in %v (supervisor: recovery took %v; store %+v)", n, took, stats.RecoveryTook, st.Stats())
		_ = sys.Root.StopFuture(sup).Wait()
		sys.Shutdown()
		_ = st.Close()
		b.StartTimer()
	}
}
