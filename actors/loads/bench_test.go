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

// BenchmarkLoad runs whole loads through the supervisor against instant stand-ins (platform,
// bank, terminal; the terminal CONFIRMs S on every approved reply), 32 in flight, with the
// real store (synced group commits). allocs/op and the CPU profile are the shell's and the
// store's share of a load:
//
//	go test ./actors/loads -run XXX -bench 'Load$' -benchtime 3000x -benchmem
func BenchmarkLoad(b *testing.B) {
	discard := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := persistence.Open(b.TempDir(), persistence.Options{Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	stan, err := st.Counter("stan:"+bankCode, 1, 999999, 100)
	if err != nil {
		b.Fatal(err)
	}
	sys := quietSystem()
	defer sys.Shutdown()
	var refs atomic.Int64
	platform := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case messages.PlatformCheck:
			ctx.Respond(messages.PlatformCheckResult{ReqID: m.ReqID, Ref: fmt.Sprintf("2026112700%010d", refs.Add(1)), Batch: 7})
		case messages.PlatformBook:
			ctx.Respond(messages.PlatformBookResult{ReqID: m.ReqID, Ref: m.Ref, MAC2: [4]byte{1, 2, 3, 4}, HostTime: "20261127120000"})
		case messages.PlatformConfirm:
			ctx.Respond(messages.PlatformConfirmResult{ReqID: m.ReqID, Ref: m.Ref})
		}
	}))
	bank := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) { bankApproves(ctx, ctx.Message()) }))
	done := make(chan struct{}, 1024)
	var sup *actor.PID
	term := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case messages.LoadReply:
			if m.Result != string(txn.KioskApproved) {
				b.Errorf("load %s: %+v", m.TxnID, m)
				done <- struct{}{}
				return
			}
			ctx.Send(sup, messages.KioskConfirm{Terminal: m.Terminal, KioskTrace: m.KioskTrace, Ref: m.Ref, Status: 'S', TAC: [4]byte{5, 6, 7, 8}})
		case messages.KioskConfirmReply:
			done <- struct{}{}
		}
	}))
	deps := Deps{Store: st, STAN: map[string]*persistence.Counter{bankCode: stan}, Platform: platform,
		Banks: map[string]*actor.PID{bankCode: bank}, Terminal: func(string) *actor.PID { return term }, Logger: discard}
	sup = sys.Root.Spawn(Props(Config{Merchant: "898310048990001", Grace: 100 * time.Millisecond}, deps))
	const inflight = 32
	b.ReportAllocs()
	b.ResetTimer()
	started := 0
	for ; started < min(inflight, b.N); started++ {
		sys.Root.Send(sup, startLoad(fmt.Sprintf("B%08d", started)))
	}
	for range b.N {
		<-done
		if started < b.N {
			sys.Root.Send(sup, startLoad(fmt.Sprintf("B%08d", started)))
			started++
		}
	}
	b.StopTimer()
	s := st.Stats()
	b.ReportMetric(float64(s.Groups)/float64(b.N), "syncs/load")
	b.ReportMetric(float64(s.Ops)/float64(b.N), "ops/load")
}
