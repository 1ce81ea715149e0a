package loads

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

const (
	bankCode = "0103000000"
	pan      = "6228480000000001234"
)

// stub is a stand-in actor (platform, bank, terminal): it records every message and
// answers through its behaviour.
type stub struct {
	pid *actor.PID
	mu  sync.Mutex
	got []any
}

func newStub(sys *actor.ActorSystem, behave func(ctx actor.Context, m any)) *stub {
	s := &stub{}
	s.pid = sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		m := ctx.Message()
		switch m.(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		s.mu.Lock()
		s.got = append(s.got, m)
		s.mu.Unlock()
		if behave != nil {
			behave(ctx, m)
		}
	}))
	return s
}

// all returns the recorded messages of type T.
func all[T any](s *stub) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []T
	for _, m := range s.got {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// wait polls cond until it holds or fails the test after 5s.
func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// first waits for the first recorded message of type T.
func first[T any](t *testing.T, s *stub) T {
	t.Helper()
	wait(t, fmt.Sprintf("a %T", *new(T)), func() bool { return len(all[T](s)) > 0 })
	return all[T](s)[0]
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// platformOK answers CARD CHECK, BOOK and CONFIRM successfully.
func platformOK(ctx actor.Context, m any) {
	switch m := m.(type) {
	case messages.PlatformCheck:
		ctx.Respond(messages.PlatformCheckResult{ReqID: m.ReqID, Ref: "20240315000000000001", Batch: 7})
	case messages.PlatformBook:
		ctx.Respond(messages.PlatformBookResult{ReqID: m.ReqID, Ref: m.Ref, MAC2: [4]byte{1, 2, 3, 4}, HostTime: "20240315120000"})
	case messages.PlatformConfirm:
		ctx.Respond(messages.PlatformConfirmResult{ReqID: m.ReqID, Ref: m.Ref})
	}
}

// bankApproves approves every 0200 and queues every reversal.
func bankApproves(ctx actor.Context, m any) {
	switch m := m.(type) {
	case messages.BankDebit:
		ctx.Respond(messages.BankDebitResult{ReqID: m.ReqID, STAN: m.STAN, Code: "00", RRN: "000000000042",
			AuthCode: "A1B2C3", SettleDate: "0316", MACOK: true})
	case messages.EnqueueReversal:
		ctx.Respond(messages.ReversalQueued{ReqID: m.ReqID, STAN: m.STAN})
	}
}

// bankSilent never answers a 0200 (a bank timeout) but queues reversals.
func bankSilent(ctx actor.Context, m any) {
	if m, ok := m.(messages.EnqueueReversal); ok {
		ctx.Respond(messages.ReversalQueued{ReqID: m.ReqID, STAN: m.STAN})
	}
}

type env struct {
	t        *testing.T
	store    *persistence.Store
	stan     *persistence.Counter
	sys      *actor.ActorSystem
	platform *stub
	bank     *stub
	term     *stub
	sup      *actor.PID
	cfg      Config
	log      *lockedBuf
}

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

// newEnv opens a store in a temp dir; start() starts the stand-ins and the supervisor.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	buf := &lockedBuf{}
	st, err := persistence.Open(t.TempDir(), persistence.Options{Logger: slog.New(slog.NewTextHandler(buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stan, err := st.Counter("stan:"+bankCode, 1, 999999, 100)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, stan: stan, cfg: cfg, log: buf}
	t.Cleanup(func() {
		if e.sys != nil {
			e.stop()
		}
		_ = st.Close()
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return e
}

func (e *env) start(platform, bank func(actor.Context, any)) {
	e.sys = quietSystem()
	e.platform = newStub(e.sys, platform)
	e.bank = newStub(e.sys, bank)
	e.term = newStub(e.sys, nil)
	deps := Deps{
		Store:    e.store,
		STAN:     map[string]*persistence.Counter{bankCode: e.stan},
		Platform: e.platform.pid,
		Banks:    map[string]*actor.PID{bankCode: e.bank.pid},
		Terminal: func(string) *actor.PID { return e.term.pid },
		Logger:   slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	pid, err := e.sys.Root.SpawnNamed(Props(e.cfg, deps), "loads")
	if err != nil {
		e.t.Fatal(err)
	}
	e.sup = pid
}

// stop stops the supervisor and its children and drops the system, as a crash would
// (no state is written on the way down).
func (e *env) stop() {
	if err := e.sys.Root.StopFuture(e.sup).Wait(); err != nil {
		e.t.Errorf("stop supervisor: %v", err)
	}
	e.sys.Shutdown()
	e.sys = nil
}

func (e *env) stats() Stats {
	e.t.Helper()
	res, err := e.sys.Root.RequestFuture(e.sup, StatsRequest{}, 2*time.Second).Result()
	if err != nil {
		e.t.Fatalf("stats: %v", err)
	}
	return res.(Stats)
}

func (e *env) record(id string) Record {
	e.t.Helper()
	b, err := e.store.Get(TxnKey(id))
	if err != nil {
		e.t.Fatalf("record %s: %v", id, err)
	}
	rec, err := DecodeRecord(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// waitPhase waits until the stored record of id is in phase p.
func (e *env) waitPhase(id string, p txn.Phase) Record {
	e.t.Helper()
	var rec Record
	wait(e.t, fmt.Sprintf("%s in phase %s", id, p), func() bool {
		b, err := e.store.Get(TxnKey(id))
		if err != nil {
			return false
		}
		rec, err = DecodeRecord(b)
		return err == nil && rec.State.Phase == p
	})
	return rec
}

func startLoad(id string) messages.StartLoad {
	return messages.StartLoad{
		TxnID: id, Terminal: "KIOSK001", KioskTrace: "000123", Amount: 5000, BankCode: bankCode,
		Card:  messages.CardInit{AppSerial: [8]byte{0x33, 0, 0, 0, 0, 0, 0, 1}, Serial: 7, MAC1: [4]byte{9, 9, 9, 9}},
		Payer: messages.BankCard{PAN: pan, Track2: pan + "=2512", PINBlock: []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}, PINKey: "kiosk001.pik"},
	}
}

func TestLoadEndToEndConfirmS(t *testing.T) {
	e := newEnv(t, Config{Merchant: "898310048990001", Grace: 50 * time.Millisecond})
	e.start(platformOK, bankApproves)
	e.sys.Root.Send(e.sup, startLoad("L1"))

	reply := first[messages.LoadReply](t, e.term)
	if reply.Result != string(txn.KioskApproved) || reply.MAC2 != [4]byte{1, 2, 3, 4} || reply.Ref != "20240315000000000001" || reply.RRN != "000000000042" {
		t.Fatalf("kiosk reply %+v, want approved with MAC2 01020304 and the reference", reply)
	}
	debit := first[messages.BankDebit](t, e.bank)
	if debit.Merchant != "898310048990001" || debit.Amount != 5000 || debit.Ref != reply.Ref || len(debit.Payer.PINBlock) != 8 {
		t.Errorf("0200 %+v: want merchant, amount, reference and the PIN block", debit)
	}
	check := first[messages.PlatformCheck](t, e.platform)
	if check.Card.MAC1 != [4]byte{9, 9, 9, 9} || check.Amount != 5000 {
		t.Errorf("card check %+v does not carry the card's INIT data", check)
	}

	e.sys.Root.Send(e.sup, messages.KioskConfirm{Terminal: "KIOSK001", KioskTrace: "000123", Ref: reply.Ref, Status: 'S', TAC: [4]byte{5, 6, 7, 8}})
	cr := first[messages.KioskConfirmReply](t, e.term)
	if cr.Code != "00" || cr.Ref != reply.Ref {
		t.Errorf("confirm reply %+v, want 00", cr)
	}
	rec := e.waitPhase("L1", txn.PhaseDone)
	if rec.State.Outcome != txn.OutcomeLoaded || rec.State.Write != txn.WriteS || rec.State.TAC != "05060708" || rec.Batch != 7 {
		t.Errorf("final state %+v batch %d, want loaded with write S, TAC and batch 7", rec.State, rec.Batch)
	}
	if pc := first[messages.PlatformConfirm](t, e.platform); pc.Status != 'S' || pc.TAC != [4]byte{5, 6, 7, 8} {
		t.Errorf("platform confirm %+v, want S with the TAC", pc)
	}
	if len(rec.Start.Payer.PINBlock) != 0 || (rec.Debit != nil && len(rec.Debit.Payer.PINBlock) != 0) {
		t.Error("the PIN block was persisted")
	}
	if rec.State.MaskedPAN != "622848*********1234" {
		t.Errorf("masked PAN %q", rec.State.MaskedPAN)
	}
	// The indexes were written with the record.
	if id, err := e.store.Get(RefKey(reply.Ref)); err != nil || string(id) != "L1" {
		t.Errorf("ref index: %q, %v", id, err)
	}
	days := 0
	if err := e.store.Scan(DayPrefix(rec.State.Started.Format("20060102")), func(_, v []byte) error {
		days++
		return nil
	}); err != nil || days != 1 {
		t.Errorf("day index: %d entries, %v", days, err)
	}
	// After its grace period the finished actor is gone.
	wait(t, "the finished actor to retire", func() bool { return e.stats().Live == 0 })
}

func TestBankTimeoutReversedThenReversalDone(t *testing.T) {
	e := newEnv(t, Config{Limits: txn.Limits{Bank: 200 * time.Millisecond}})
	e.start(platformOK, bankSilent)
	e.sys.Root.Send(e.sup, startLoad("L2"))

	rev := first[messages.EnqueueReversal](t, e.bank)
	debit := first[messages.BankDebit](t, e.bank)
	if rev.Reason != "98" || rev.ReqID != "L2" || rev.STAN != debit.STAN || rev.Amount != 5000 {
		t.Fatalf("reversal %+v, want reason 98 for the 0200's STAN %s", rev, debit.STAN)
	}
	if rev.Original.STAN != debit.STAN || rev.Original.Payer.PAN != pan || len(rev.Original.Payer.PINBlock) != 0 {
		t.Errorf("reversal original %+v: want the persisted 0200 without PIN block", rev.Original)
	}
	reply := first[messages.LoadReply](t, e.term)
	if reply.Result != string(txn.KioskFailed) || reply.Code != "98" {
		t.Errorf("kiosk reply %+v, want failed 98", reply)
	}
	e.waitPhase("L2", txn.PhaseReversing)

	e.sys.Root.Send(e.sup, messages.ReversalDone{ReqID: "L2", STAN: rev.STAN, Code: "00"})
	rec := e.waitPhase("L2", txn.PhaseDone)
	if rec.State.Outcome != txn.OutcomeReversed || rec.State.Txn != txn.TxnC || rec.State.RevCode != "00" {
		t.Errorf("final %+v, want reversed, txn C", rec.State)
	}
	if n := len(all[messages.BankDebit](e.bank)); n != 1 {
		t.Errorf("%d 0200s, want 1", n)
	}
}

func TestRecoveryReversesSentToBank(t *testing.T) {
	e := newEnv(t, Config{Limits: txn.Limits{Bank: time.Hour}})
	e.start(platformOK, bankSilent)
	e.sys.Root.Send(e.sup, startLoad("L3"))
	debit := first[messages.BankDebit](t, e.bank)
	if rec := e.record("L3"); rec.State.Phase != txn.PhaseSentToBank {
		t.Fatalf("phase %s before the crash, want sent_to_bank", rec.State.Phase)
	}
	e.stop() // the process dies with the 0200 unanswered

	e.start(platformOK, bankSilent) // a new system on the same store
	rev := first[messages.EnqueueReversal](t, e.bank)
	if rev.Reason != "98" || rev.STAN != debit.STAN || rev.ReqID != "L3" || rev.Original.Payer.PAN != pan {
		t.Fatalf("reversal after restart %+v, want reason 98 for STAN %s", rev, debit.STAN)
	}
	if n := len(all[messages.BankDebit](e.bank)); n != 0 {
		t.Errorf("%d 0200s after the restart, want none", n)
	}
	e.waitPhase("L3", txn.PhaseReversing)
	wait(t, "recovery to finish", func() bool { return e.stats().RecoveryTook > 0 })
	if st := e.stats(); st.Recovered != 1 {
		t.Errorf("stats %+v, want 1 recovered", st)
	}
	e.sys.Root.Send(e.sup, messages.ReversalDone{ReqID: "L3", Code: "25"})
	if rec := e.waitPhase("L3", txn.PhaseDone); rec.State.Outcome != txn.OutcomeReversed {
		t.Errorf("outcome %s, want reversed", rec.State.Outcome)
	}
}

func TestDuplicateStartLoadOneDebit(t *testing.T) {
	e := newEnv(t, Config{Grace: 20 * time.Millisecond})
	e.start(platformOK, bankApproves)
	e.sys.Root.Send(e.sup, startLoad("L4"))
	e.sys.Root.Send(e.sup, startLoad("L4")) // while in progress: ignored
	r1 := first[messages.LoadReply](t, e.term)
	e.sys.Root.Send(e.sup, messages.KioskConfirm{Terminal: "KIOSK001", KioskTrace: "000123", Ref: r1.Ref, Status: 'F'})
	if rec := e.waitPhase("L4", txn.PhaseDone); rec.State.Outcome != txn.OutcomeUnwritten {
		t.Fatalf("outcome %s, want unwritten", rec.State.Outcome)
	}
	wait(t, "the finished actor to retire", func() bool { return e.stats().Live == 0 })

	e.sys.Root.Send(e.sup, startLoad("L4")) // after it finished: answered from the store
	wait(t, "a second LoadReply", func() bool { return len(all[messages.LoadReply](e.term)) == 2 })
	if r2 := all[messages.LoadReply](e.term)[1]; r2 != r1 {
		t.Errorf("duplicate answered %+v, want the original %+v", r2, r1)
	}
	// A late confirm for the finished load is answered from the store too.
	e.sys.Root.Send(e.sup, messages.KioskConfirm{Terminal: "KIOSK001", KioskTrace: "000123", Ref: r1.Ref, Status: 'F'})
	wait(t, "a second confirm reply", func() bool { return len(all[messages.KioskConfirmReply](e.term)) == 2 })
	if c := all[messages.KioskConfirmReply](e.term)[1]; c.Code != "00" {
		t.Errorf("late confirm answered %q, want 00", c.Code)
	}
	if n := len(all[messages.BankDebit](e.bank)); n != 1 {
		t.Errorf("%d 0200s for one load, want 1", n)
	}
	if n := len(all[messages.PlatformCheck](e.platform)); n != 1 {
		t.Errorf("%d card checks for one load, want 1", n)
	}
}

func TestCommitFailureNoDebit(t *testing.T) {
	e := newEnv(t, Config{})
	// The platform answers the card check after the disk went away: "sent to bank"
	// cannot be made durable, so the 0200 must not leave.
	e.start(func(ctx actor.Context, m any) {
		if c, ok := m.(messages.PlatformCheck); ok {
			_ = e.store.Close()
			ctx.Respond(messages.PlatformCheckResult{ReqID: c.ReqID, Ref: "20240315000000000009"})
		}
	}, bankApproves)
	e.sys.Root.Send(e.sup, startLoad("L5"))

	reply := first[messages.LoadReply](t, e.term)
	if reply.Result != string(txn.KioskFailed) || reply.Code != CodeSystem {
		t.Errorf("kiosk reply %+v, want failed %s", reply, CodeSystem)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(all[messages.BankDebit](e.bank)); n != 0 {
		t.Fatalf("%d 0200s after a failed commit, want none", n)
	}
	if !bytes.Contains([]byte(e.log.String()), []byte("level=ERROR")) {
		t.Error("the failed commit was not logged at Error")
	}
	wait(t, "the failed actor to stop", func() bool { return e.stats().Live == 0 })
	if err := e.store.Healthy(); !errors.Is(err, persistence.ErrClosed) {
		t.Errorf("store health %v", err)
	}
}

func TestUnknownBankFailsAtOnce(t *testing.T) {
	e := newEnv(t, Config{})
	e.start(platformOK, bankApproves)
	m := startLoad("L6")
	m.BankCode = "9999999999"
	e.sys.Root.Send(e.sup, m)
	if r := first[messages.LoadReply](t, e.term); r.Result != string(txn.KioskFailed) || r.Code != CodeNoRoute {
		t.Errorf("reply %+v, want failed %s", r, CodeNoRoute)
	}
	if n := len(all[messages.PlatformCheck](e.platform)); n != 0 {
		t.Errorf("%d card checks for an unroutable load", n)
	}
}

func TestRewriteConfirmForwardedToPlatform(t *testing.T) {
	e := newEnv(t, Config{})
	e.start(platformOK, bankApproves)
	e.sys.Root.Send(e.sup, messages.KioskConfirm{Terminal: "KIOSK001", KioskTrace: "000200", Ref: "20240301000000000077", Status: 'S', TAC: [4]byte{1, 1, 1, 1}})
	pc := first[messages.PlatformConfirm](t, e.platform)
	if pc.Ref != "20240301000000000077" || pc.Status != 'S' || pc.TAC != [4]byte{1, 1, 1, 1} {
		t.Errorf("forwarded confirm %+v", pc)
	}
	if r := first[messages.KioskConfirmReply](t, e.term); r.Code != "00" || r.KioskTrace != "000200" {
		t.Errorf("confirm reply %+v, want 00 after the platform acked", r)
	}
}

func TestPanicRestartsFromPersistedState(t *testing.T) {
	e := newEnv(t, Config{})
	e.start(platformOK, bankApproves)
	// The first LoadReply panics inside the transaction actor, after "await confirm" is
	// durable: the supervisor restarts it, and the new incarnation resumes from the store.
	var panicked atomic.Bool
	term := e.term.pid
	e.sys.Root.Stop(e.sup) // replaced by one whose terminal lookup panics once
	deps := Deps{
		Store: e.store, STAN: map[string]*persistence.Counter{bankCode: e.stan},
		Platform: e.platform.pid, Banks: map[string]*actor.PID{bankCode: e.bank.pid},
		Terminal: func(string) *actor.PID {
			if panicked.CompareAndSwap(false, true) {
				panic("terminal lookup failed")
			}
			return term
		},
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	pid, err := e.sys.Root.SpawnNamed(Props(e.cfg, deps), "loads2")
	if err != nil {
		t.Fatal(err)
	}
	e.sup = pid
	e.sys.Root.Send(e.sup, startLoad("L7"))
	rec := e.waitPhase("L7", txn.PhaseAwaitConfirm)
	wait(t, "the panic", panicked.Load)
	if n := len(all[messages.LoadReply](e.term)); n != 0 {
		t.Fatalf("%d replies; the panic should have swallowed the first", n)
	}
	e.sys.Root.Send(e.sup, messages.KioskConfirm{Terminal: "KIOSK001", KioskTrace: "000123", Ref: rec.State.Ref, Status: 'S', TAC: [4]byte{1, 2, 3, 4}})
	if r := first[messages.KioskConfirmReply](t, e.term); r.Code != "00" {
		t.Errorf("confirm after the restart answered %q, want 00", r.Code)
	}
	if rec := e.waitPhase("L7", txn.PhaseDone); rec.State.Outcome != txn.OutcomeLoaded {
		t.Errorf("outcome %s, want loaded", rec.State.Outcome)
	}
	if n := len(all[messages.BankDebit](e.bank)); n != 1 {
		t.Errorf("%d 0200s, want 1", n)
	}
}
