package banklink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/reversal"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

const (
	testBank = "B1"
	testPAN  = "6222021234567890123"
	testPIN  = "123456"
)

// env is the FEP side of a test: security module, store, STAN counter, status board.
type env struct {
	t     *testing.T
	hsm   *hsm.Soft
	store *persistence.Store
	stan  *persistence.Counter
	board *linkstatus.Board
	logs  *lockedBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	logs := &lockedBuffer{}
	m, err := hsm.NewSoft(testMaster, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportClear("zmk/"+testBank, hsm.UsageKEK, testZMK); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportClear("kiosk/pik", hsm.UsagePIN, testKioskPIK); err != nil {
		t.Fatal(err)
	}
	st, err := persistence.Open(t.TempDir(), persistence.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Counter("stan", 1, 999999, 100)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, hsm: m, store: st, stan: c, board: linkstatus.New(), logs: logs}
	t.Cleanup(func() {
		st.Close()
		if t.Failed() || os.Getenv("BANKLINK_LOG") != "" {
			t.Logf("link log:\n%s", logs.String())
		}
		// DESIGN 6: PANs masked, keys and PIN blocks never logged.
		if s := logs.String(); strings.Contains(s, testPAN) {
			t.Errorf("the log holds a clear PAN")
		}
	})
	return e
}

func (e *env) config(addr string) Config {
	return Config{BankCode: testBank, Addr: addr, Terminal: "FEP00001", Merchant: "898310048990001",
		ZMKKey: "zmk/" + testBank, ResponseTimeout: 2 * time.Second, EchoInterval: time.Hour,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		Reversal: reversal.Knobs{InitialDelay: 10 * time.Millisecond, Interval: 50 * time.Millisecond,
			WaitForResponse: 300 * time.Millisecond}}
}

// running is one actor system with a link and a stand-in loads actor.
type running struct {
	sys   *actor.ActorSystem
	link  *actor.PID
	done  chan messages.ReversalDone
	board *linkstatus.Board
}

func (e *env) start(cfg Config) *running {
	e.t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	done := make(chan messages.ReversalDone, 16)
	loads := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(messages.ReversalDone); ok {
			done <- m
		}
	}))
	deps := Deps{HSM: e.hsm, Store: e.store, STAN: e.stan, Status: e.board, Loads: loads,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := Check(cfg, deps); err != nil {
		e.t.Fatal(err)
	}
	// crash{} makes the actor panic inside its receive, as a bug would.
	props := Props(cfg, deps).Configure(actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if _, ok := env.Message.(crash); ok {
				panic("test: crash")
			}
			next(c, env)
		}
	}))
	pid, err := sys.Root.SpawnNamed(props, "bank/"+cfg.BankCode)
	if err != nil {
		e.t.Fatal(err)
	}
	r := &running{sys: sys, link: pid, done: done, board: e.board}
	e.t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	if r.sys.IsStopped() {
		return
	}
	_ = r.sys.Root.StopFuture(r.link).Wait()
	r.sys.Shutdown()
}

func (r *running) up() bool { return r.board.Up(linkstatus.Bank(testBank)) }

type crash struct{}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) debit(r *running, stan string, pin string) messages.BankDebitResult {
	e.t.Helper()
	blk, err := e.hsm.EncryptPIN("kiosk/pik", pin, testPAN)
	if err != nil {
		e.t.Fatal(err)
	}
	req := &messages.BankDebit{ReqID: "txn-" + stan, Bank: testBank, STAN: stan, Amount: 1000,
		Ref: "20260101000000000042", Payer: messages.BankCard{PAN: testPAN, Expiry: "2812",
			EntryMode: "021", PINBlock: blk, PINKey: "kiosk/pik"}}
	res, err := r.sys.Root.RequestFuture(r.link, req, 5*time.Second).Result()
	if err != nil {
		e.t.Fatalf("debit %s: %v", stan, err)
	}
	out, ok := res.(messages.BankDebitResult)
	if !ok {
		e.t.Fatalf("debit %s answered %T", stan, res)
	}
	return out
}

func (e *env) stanNext() string {
	n, err := e.stan.Next()
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("%06d", n)
}

func TestSignOnImportsCheckedKeys(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	r := e.start(e.config(s.addr()))
	waitFor(t, "link up", 5*time.Second, r.up)

	for name, want := range map[string]string{ZPKName(testBank): s.kcv("pik"), MAKName(testBank): s.kcv("mak")} {
		got, err := e.hsm.Info(name)
		if err != nil {
			t.Fatalf("%s not imported: %v", name, err)
		}
		if got.KCV != want {
			t.Errorf("%s KCV %s, the bank's key has %s", name, got.KCV, want)
		}
	}
	if zpk, _ := e.hsm.Info(ZPKName(testBank)); zpk.Usage != hsm.UsagePIN {
		t.Errorf("ZPK usage %s", zpk.Usage)
	}
	if n := s.signOns.Load(); n != 1 {
		t.Errorf("%d sign-ons, want 1", n)
	}
	so, ok := s.messages()[0].(*bank.SignOn)
	if !ok || so.Terminal.ID != "FEP00001" {
		t.Errorf("first message %#v, want a 0800 from FEP00001", s.messages()[0])
	}
	if !strings.Contains(e.logs.String(), s.kcv("mak")) {
		t.Errorf("the MAK's KCV is not in the log")
	}
}

func TestBadKCVRefusedLinkStaysDown(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	s.badKCV.Store(true)
	r := e.start(e.config(s.addr()))
	waitFor(t, "sign-on retried", 5*time.Second, func() bool { return s.signOns.Load() >= 3 })
	if r.up() {
		t.Fatal("link up with keys whose KCV did not match")
	}
	if _, err := e.hsm.Info(MAKName(testBank)); !errors.Is(err, hsm.ErrNoKey) {
		t.Errorf("MAK with a bad KCV was stored: %v", err)
	}
	if res := e.debit(r, e.stanNext(), testPIN); !res.NotSent {
		t.Errorf("debit on a link without keys: %+v, want NotSent", res)
	}
	if len(s.debits()) != 0 {
		t.Errorf("the bank received a 0200 on a link without keys")
	}
	// The bank fixes its keys: the next sign-on brings the link up.
	s.badKCV.Store(false)
	waitFor(t, "link up after good keys", 5*time.Second, r.up)
}

func TestDebitApprovedEndToEnd(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	r := e.start(e.config(s.addr()))
	waitFor(t, "link up", 5*time.Second, r.up)

	stan := e.stanNext()
	res := e.debit(r, stan, testPIN)
	if res.NotSent || res.Malformed || !res.MACOK || res.Code != "00" || res.STAN != stan ||
		res.ReqID != "txn-"+stan || res.RRN != "123456789012" || res.AuthCode != "A1B2C3" || res.LocalDate == "" {
		t.Fatalf("result %+v, want approved with MAC ok", res)
	}
	seen := s.debits()
	if len(seen) != 1 || !seen[0].pinOK || !seen[0].macOK {
		t.Fatalf("bank saw %+v, want one 0200 with the PIN under its PIK and a good MAC", seen)
	}
	d := seen[0].debit
	if d.ProcCode != "000000" || d.Condition != "00" || d.EntryMode != "021" || d.PINCapture != "12" ||
		d.Currency != "156" || d.SecurityCtl != "2600000000000000" || d.F60.Type != "22" || d.F60.Batch != 7 ||
		d.F60.Code != "000" || d.Private != "20260101000000000042" || d.Amount != 1000 || d.Terminal.ID != "FEP00001" {
		t.Errorf("0200 fields: %+v", d)
	}

	// A wrong PIN reaches the bank translated too, and its decline comes back.
	if res := e.debit(r, e.stanNext(), "999999"); res.Code != "55" || !res.MACOK {
		t.Errorf("wrong PIN: %+v, want 55", res)
	}
}

func TestBadResponseMACReSignsOn(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	r := e.start(e.config(s.addr()))
	waitFor(t, "link up", 5*time.Second, r.up)
	s.badResponseMAC.Store(true)
	res := e.debit(r, e.stanNext(), testPIN)
	if res.MACOK || res.NotSent || res.Code != "00" {
		t.Fatalf("result %+v, want the code with MACOK false", res)
	}
	waitFor(t, "second sign-on", 5*time.Second, func() bool { return s.signOns.Load() == 2 && r.up() })
	if s.conns.Load() != 1 {
		t.Errorf("re-sign-on used %d connections, want the same one", s.conns.Load())
	}
	if res := e.debit(r, e.stanNext(), testPIN); !res.MACOK || res.Code != "00" {
		t.Errorf("debit after re-sign-on: %+v", res)
	}
}

func TestDuplicate0210Dropped(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	s.duplicate0210.Store(true)
	r := e.start(e.config(s.addr()))
	waitFor(t, "link up", 5*time.Second, r.up)
	// The requester is an actor so a second answer would reach it.
	got := make(chan messages.BankDebitResult, 4)
	client := r.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *messages.BankDebit:
			c.Request(r.link, m)
		case messages.BankDebitResult:
			got <- m
		}
	}))
	stan := e.stanNext()
	r.sys.Root.Send(client, &messages.BankDebit{ReqID: "dup", STAN: stan, Amount: 1000,
		Payer: messages.BankCard{PAN: testPAN}})
	select {
	case res := <-got:
		if res.STAN != stan || !res.MACOK {
			t.Errorf("first answer %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	waitFor(t, "duplicate logged", 5*time.Second, func() bool {
		return strings.Contains(e.logs.String(), "duplicate 0210 dropped")
	})
	select {
	case res := <-got:
		t.Errorf("the duplicate 0210 reached the transaction: %+v", res)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestDebitNotSentWhenDown(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens: every dial is refused
	r := e.start(e.config(addr))
	start := time.Now()
	res := e.debit(r, e.stanNext(), testPIN)
	if !res.NotSent || res.Code != "" {
		t.Errorf("result %+v, want NotSent", res)
	}
	if time.Since(start) > time.Second {
		t.Errorf("NotSent took %v, want at once", time.Since(start))
	}
	if r.up() {
		t.Errorf("status up with no bank")
	}
}

func TestMaxInFlight(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	s.holdDebits.Store(true)
	cfg := e.config(s.addr())
	cfg.MaxInFlight = 1
	r := e.start(cfg)
	waitFor(t, "link up", 5*time.Second, r.up)

	first := r.sys.Root.RequestFuture(r.link, &messages.BankDebit{ReqID: "a", STAN: e.stanNext(), Amount: 1,
		Payer: messages.BankCard{PAN: testPAN}}, 5*time.Second)
	waitFor(t, "first 0200 at the bank", 5*time.Second, func() bool { return len(s.debits()) == 1 })
	if res := e.debit(r, e.stanNext(), testPIN); !res.NotSent {
		t.Errorf("second debit over max_in_flight 1: %+v, want NotSent", res)
	}
	if len(s.debits()) != 1 {
		t.Errorf("bank saw %d 0200s, want 1", len(s.debits()))
	}
	_ = first
}

func (e *env) enqueue(r *running, stan string) messages.ReversalQueued {
	e.t.Helper()
	req := &messages.EnqueueReversal{ReqID: "txn-" + stan, Bank: testBank, STAN: stan, Date: "0101",
		Amount: 1000, Reason: bank.ReasonTimeout, Original: messages.BankDebit{ReqID: "txn-" + stan,
			STAN: stan, Amount: 1000, Payer: messages.BankCard{PAN: testPAN, Expiry: "2812", EntryMode: "021"}}}
	res, err := r.sys.Root.RequestFuture(r.link, req, 5*time.Second).Result()
	if err != nil {
		e.t.Fatalf("enqueue %s: %v", stan, err)
	}
	q, ok := res.(messages.ReversalQueued)
	if !ok || q.ReqID != "txn-"+stan || q.STAN != stan {
		e.t.Fatalf("enqueue answered %#v", res)
	}
	return q
}

func (e *env) persistedQueue() reversal.Queue {
	e.t.Helper()
	q, _, err := loadQueue(e.store, testBank, reversal.Knobs{})
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

func TestReversalRetriedUntilAnswered(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	s.ignoreReversals.Store(1)
	r := e.start(e.config(s.addr()))
	waitFor(t, "link up", 5*time.Second, r.up)

	stan := e.stanNext()
	e.enqueue(r, stan)
	// Durable before it was acknowledged.
	if q := e.persistedQueue(); len(q.Entries) != 1 || q.Entries[0].Key.STAN != stan {
		t.Fatalf("persisted queue %+v, want the entry", q.Entries)
	}
	select {
	case d := <-r.done:
		if d.ReqID != "txn-"+stan || d.STAN != stan || d.Code != "00" {
			t.Errorf("ReversalDone %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ReversalDone")
	}
	revs := s.reversals()
	if len(revs) != 2 || revs[0].Repeat || !revs[1].Repeat {
		t.Fatalf("bank saw %d reversals (repeat flags %v), want a 0400 then a 0401", len(revs), repeats(revs))
	}
	for _, rv := range revs {
		if rv.STAN != mustSTAN(t, stan) || rv.Reason != "98" || rv.Amount != 1000 || rv.PAN != testPAN ||
			rv.EntryMode != "021" || rv.Terminal.ID != "FEP00001" {
			t.Errorf("reversal %+v", rv)
		}
	}
	waitFor(t, "queue persisted empty", 2*time.Second, func() bool {
		q := e.persistedQueue()
		return len(q.Entries) == 0 && len(q.Finished) == 1
	})
	// A re-enqueue of the answered reversal is answered again with its code, not re-sent.
	e.enqueue(r, stan)
	select {
	case d := <-r.done:
		if d.Code != "00" {
			t.Errorf("re-enqueue told %+v", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("re-enqueue of a finished reversal not answered")
	}
	if n := len(s.reversals()); n != 2 {
		t.Errorf("bank saw %d reversals after the re-enqueue, want 2", n)
	}
}

func repeats(rs []*bank.Reversal) []bool {
	var out []bool
	for _, r := range rs {
		out = append(out, r.Repeat)
	}
	return out
}

func mustSTAN(t *testing.T, s string) uint32 {
	n, err := parseSTAN(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReversalSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	s.ignoreReversals.Store(1)
	cfg := e.config(s.addr())
	cfg.Reversal.WaitForResponse = time.Hour // the first attempt stays in flight
	r1 := e.start(cfg)
	waitFor(t, "link up", 5*time.Second, r1.up)
	stan := e.stanNext()
	e.enqueue(r1, stan)
	waitFor(t, "first 0400 at the bank", 5*time.Second, func() bool { return len(s.reversals()) == 1 })
	r1.stop() // the whole actor system goes; the store stays

	r2 := e.start(cfg)
	select {
	case d := <-r2.done:
		if d.ReqID != "txn-"+stan || d.Code != "00" {
			t.Errorf("ReversalDone %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reversal not completed after the restart")
	}
	revs := s.reversals()
	if len(revs) != 2 || revs[0].Repeat || !revs[1].Repeat || revs[1].STAN != mustSTAN(t, stan) {
		t.Fatalf("bank saw %d reversals %v, want the 0400 then, after the restart, a 0401", len(revs), repeats(revs))
	}
}

func TestPanicRestartsFromStore(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	s.ignoreReversals.Store(1)
	cfg := e.config(s.addr())
	cfg.Reversal.WaitForResponse = time.Hour
	r := e.start(cfg)
	waitFor(t, "link up", 5*time.Second, r.up)
	stan := e.stanNext()
	e.enqueue(r, stan)
	waitFor(t, "first 0400", 5*time.Second, func() bool { return len(s.reversals()) == 1 })
	conns := s.conns.Load()

	r.sys.Root.Send(r.link, crash{})

	select {
	case d := <-r.done:
		if d.ReqID != "txn-"+stan {
			t.Errorf("ReversalDone %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reversal not completed after the panic")
	}
	if got := s.conns.Load(); got != conns+1 {
		t.Errorf("%d connections after the restart, want %d (the old one closed, one new)", got, conns+1)
	}
	if !r.up() {
		t.Errorf("link not up after the restart")
	}
}

func TestEchoLossReconnects(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	cfg := e.config(s.addr())
	cfg.EchoInterval, cfg.EchoTimeout = 50*time.Millisecond, 100*time.Millisecond
	r := e.start(cfg)
	waitFor(t, "link up", 5*time.Second, r.up)
	waitFor(t, "echoes answered", 5*time.Second, func() bool { return s.echoes.Load() >= 2 })
	if !r.up() || s.conns.Load() != 1 {
		t.Fatalf("answered echoes took the link down (up %v, %d connections)", r.up(), s.conns.Load())
	}

	s.ignoreEchoes.Store(true)
	waitFor(t, "link down after a lost echo", 5*time.Second, func() bool { return !r.up() })
	s.ignoreEchoes.Store(false)
	waitFor(t, "link up again", 5*time.Second, r.up)
	if n := s.conns.Load(); n < 2 {
		t.Errorf("%d connections, want a reconnect", n)
	}
	if n := s.signOns.Load(); n < 2 {
		t.Errorf("%d sign-ons, want one per connection", n)
	}
	if res := e.debit(r, e.stanNext(), testPIN); res.Code != "00" {
		t.Errorf("debit after reconnect: %+v", res)
	}
}

func TestConnectionCutReconnects(t *testing.T) {
	e := newEnv(t)
	s := newStandin(t, bank.DefaultDialect(), testPIN)
	r := e.start(e.config(s.addr()))
	waitFor(t, "link up", 5*time.Second, r.up)
	s.dropConns()
	waitFor(t, "second connection signed on", 5*time.Second, func() bool { return s.signOns.Load() >= 2 && r.up() })
}

func TestAdviceDialect(t *testing.T) {
	e := newEnv(t)
	d, err := DialectByName(DialectAdviceX919)
	if err != nil {
		t.Fatal(err)
	}
	s := newStandin(t, d, testPIN)
	cfg := e.config(s.addr())
	cfg.Dialect = DialectAdviceX919
	r := e.start(cfg)
	waitFor(t, "link up", 5*time.Second, r.up)
	if res := e.debit(r, e.stanNext(), testPIN); res.Code != "00" || !res.MACOK {
		t.Fatalf("X9.19 debit: %+v", res)
	}
	e.enqueue(r, e.stanNext())
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("0420 not answered")
	}
	for _, m := range s.messages() {
		if _, ok := m.(*bank.Reversal); ok {
			return // decoded by the stand-in under the 0420 dialect
		}
	}
	t.Error("no reversal seen")
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	if c.ResponseTimeout != 30*time.Second || c.EchoInterval != 60*time.Second || c.EchoTimeout != 10*time.Second ||
		c.ReconnectMin != time.Second || c.ReconnectMax != 30*time.Second || c.MaxInFlight != 256 || c.Dialect != "cups" {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("empty config validated: %v", err)
	}
	c = Config{BankCode: "B", Addr: "x:1", Terminal: "T", ZMKKey: "z", Dialect: "nope"}
	c.Defaults()
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown dialect validated: %v", err)
	}
}
