package platformlink

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/platform"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// syncBuffer is a log sink the actor's goroutines may write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type fixture struct {
	t      *testing.T
	sys    *actor.ActorSystem
	hsm    *hsm.Soft
	store  *persistence.Store
	board  *linkstatus.Board
	logs   *syncBuffer
	cfg    Config
	deps   Deps
	pid    *actor.PID
	parent *actor.PID
}

func newFixture(t *testing.T, addr string, tune func(*Config)) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := hsm.NewSoft(mustHex("F0E1D2C3B4A5968778695A4B3C2D1E0F"), log)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := InstallKeys(m, "platform/ltk", testLTK); err != nil {
		t.Fatal(err)
	}
	st, err := persistence.Open(t.TempDir(), persistence.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Addr: addr, AuthCode: testAuthCode, SignInKey: "platform/ltk",
		HeartbeatInterval: time.Second, HeartbeatTimeout: time.Second, RequestTimeout: 2 * time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	f := &fixture{t: t, sys: actor.NewActorSystem(), hsm: m, store: st, board: linkstatus.New(), logs: logs, cfg: cfg}
	f.deps = Deps{HSM: m, Store: st, Status: f.board, Logger: log}
	t.Cleanup(func() {
		if f.parent != nil {
			_ = f.sys.Root.StopFuture(f.parent).Wait()
		} else if f.pid != nil {
			_ = f.sys.Root.StopFuture(f.pid).Wait()
		}
		f.sys.Shutdown()
	})
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	if err := Check(f.cfg, f.deps); err != nil {
		f.t.Fatal(err)
	}
	f.pid = f.sys.Root.Spawn(Props(f.cfg, f.deps))
}

func (f *fixture) status() Status {
	f.t.Helper()
	r, err := f.sys.Root.RequestFuture(f.pid, StatusRequest{}, 2*time.Second).Result()
	if err != nil {
		f.t.Fatalf("status: %v", err)
	}
	return r.(Status)
}

// waitStatus polls until ok holds.
func (f *fixture) waitStatus(what string, within time.Duration, ok func(Status) bool) Status {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := f.status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within %v; last status %+v; logs:\n%s", what, within, s, f.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) waitUp() Status {
	f.t.Helper()
	return f.waitStatus("session up", 5*time.Second, func(s Status) bool { return s.Up })
}

// requester is the test's stand-in for a transaction actor: it sends with ctx.Request and
// hands every answer it gets to out.
type requester struct {
	target *actor.PID
	out    chan any
}

type ask struct{ msg any }

func (r *requester) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case ask:
		ctx.Request(r.target, m.msg)
	case messages.PlatformCheckResult, messages.PlatformBookResult, messages.PlatformConfirmResult,
		messages.PlatformPendingResult, messages.PlatformRewriteResult, messages.PlatformResolveResult, Status:
		r.out <- m
	}
}

func (f *fixture) requester() (*actor.PID, chan any) {
	out := make(chan any, 16)
	pid := f.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &requester{target: f.pid, out: out} }))
	return pid, out
}

func receive(t *testing.T, out chan any, within time.Duration) any {
	t.Helper()
	select {
	case m := <-out:
		return m
	case <-time.After(within):
		t.Fatalf("no answer within %v", within)
		return nil
	}
}

func check(trace string, serialLast byte) messages.PlatformCheck {
	return messages.PlatformCheck{ReqID: "KIOSK001" + trace + "/check", Terminal: "KIOSK001", KioskTrace: trace,
		Amount: 1000, BankCode: "0102000001",
		Card: messages.CardInit{AppSerial: [8]byte{0, 0, 0, 0, 0x12, 0x34, 0x56, serialLast}, CityCode: "2000",
			OldBalance: 5000, Serial: 5, KeyIndex: 1, KeyVersion: 1, Random: [4]byte{0x1A, 0x2B, 0x3C, 0x4D},
			MAC1: [4]byte{0x57, 0x85, 0x3F, 0x0D}, TermID: [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}}}
}

func TestSignInStatusUpAndSessionPersisted(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), nil)
	f.start()
	s := f.waitUp()
	if s.Batch != 701 || s.SignedInAt.IsZero() || s.InFlight != 0 {
		t.Fatalf("status %+v, want batch 701 (the stand-in's first), signed-in time, nothing in flight", s)
	}
	if !f.board.Up(linkstatus.Platform) {
		t.Fatal("board does not show the platform up")
	}
	b, err := f.store.Get(SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Batch != 701 {
		t.Fatalf("session record %s (%v), want batch 701", b, err)
	}
	// The dynamic key is in the module, under the long-term key, with the KCV the platform sent.
	dk, err := f.hsm.Info(DynamicKeyName("platform/ltk"))
	if err != nil || dk.Usage != hsm.UsageMAC {
		t.Fatalf("dynamic key %+v, %v", dk, err)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "dk_kcv="+dk.KCV) {
		t.Errorf("sign-in log does not name the dynamic key's KCV %s:\n%s", dk.KCV, logs)
	}
	for _, k := range p.issuedKeys() {
		if strings.Contains(strings.ToLower(logs), k) {
			t.Fatalf("the dynamic key %s is in the log", k)
		}
	}
	if strings.Contains(strings.ToLower(logs), strings.ToLower("404142434445464748494A4B4C4D4E4F")) {
		t.Fatal("the long-term key is in the log")
	}
	// The sign-in is sequence 1 with batch 0; the next request is sequence 2 of the batch.
	si := p.requests(platform.TypeSignIn)
	if len(si) != 1 || si[0].Seq != 1 || si[0].Batch != 0 {
		t.Fatalf("sign-ins %+v", si)
	}
}

func TestCardCheckRoutedBackWithRefAndBatch(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), nil)
	f.start()
	up := f.waitUp()
	req, out := f.requester()
	f.sys.Root.Send(req, ask{check("000017", 0x78)})
	f.sys.Root.Send(req, ask{&messages.PlatformBook{ReqID: "b1", Ref: "20240315000017000042", Amount: 1000,
		RRN: "240315123456", AuthCode: "A12345", SettleDate: "0315"}})
	f.sys.Root.Send(req, ask{check("000018", 0x01)}) // blocked card
	got := map[string]any{}
	for range 3 {
		switch m := receive(t, out, 3*time.Second).(type) {
		case messages.PlatformCheckResult:
			got[m.ReqID] = m
		case messages.PlatformBookResult:
			got[m.ReqID] = m
		default:
			t.Fatalf("unexpected %T %+v", m, m)
		}
	}
	ok := got["KIOSK001000017/check"].(messages.PlatformCheckResult)
	if ok.Ref != "20240315000017000042" || ok.Batch != up.Batch || ok.Err != "" || ok.Refused != "" {
		t.Fatalf("check answer %+v, want the reference and batch %d", ok, up.Batch)
	}
	blocked := got["KIOSK001000018/check"].(messages.PlatformCheckResult)
	if blocked.Refused != "01" || blocked.Ref != "" || blocked.Err != "" {
		t.Fatalf("blocked card answer %+v, want Refused 01", blocked)
	}
	book := got["b1"].(messages.PlatformBookResult)
	if book.MAC2 != [4]byte{0xD1, 0x4D, 0xBB, 0x02} || book.HostTime != "20240315143000" || book.Ref != "20240315000017000042" {
		t.Fatalf("book answer %+v", book)
	}
	p.mu.Lock()
	settle := p.books[0].SettleDate
	p.mu.Unlock()
	if len(settle) != 8 || !strings.HasSuffix(settle, "0315") {
		t.Fatalf("BOOK settlement date %q, want YYYY0315", settle)
	}
	if s := f.status(); s.InFlight != 0 {
		t.Fatalf("in flight after all answers: %d", s.InFlight)
	}
}

func TestRequestWhileDownFailsFast(t *testing.T) {
	p := newStandin(t)
	addr := p.addr()
	p.stop() // nothing listens there now
	f := newFixture(t, addr, func(c *Config) { c.RequestTimeout = 10 * time.Second })
	f.start()
	req, out := f.requester()
	start := time.Now()
	f.sys.Root.Send(req, ask{check("000019", 0x78)})
	m := receive(t, out, 2*time.Second).(messages.PlatformCheckResult)
	if m.Err == "" || !strings.Contains(m.Err, "down") || m.Ref != "" || m.Refused != "" {
		t.Fatalf("answer while down %+v, want Err (link down)", m)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("answer took %v: not fail-fast", d)
	}
	if s := f.status(); s.Up || s.InFlight != 0 {
		t.Fatalf("status %+v", s)
	}
	if f.board.Up(linkstatus.Platform) {
		t.Fatal("board shows the platform up")
	}
}

func TestHeartbeatLossReconnectsWithNewBatch(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), func(c *Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = 100*time.Millisecond, 150*time.Millisecond
		c.ReconnectMin = 300 * time.Millisecond
	})
	f.start()
	first := f.waitUp()
	f.waitStatus("a heartbeat answered", 2*time.Second, func(Status) bool { return len(p.requests(platform.TypeHeartbeat)) >= 2 })
	p.dropHeartbeats.Store(1)
	f.waitStatus("down after a lost heartbeat", 3*time.Second, func(s Status) bool { return !s.Up })
	second := f.waitUp()
	if second.Batch <= first.Batch {
		t.Fatalf("batch after reconnect %d, want a new one above %d", second.Batch, first.Batch)
	}
	if n := p.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (reconnected once)", n)
	}
	if n := p.signIns.Load(); n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}
	if !strings.Contains(f.logs.String(), "heartbeat not answered") {
		t.Fatal("the log does not say why the session went down")
	}
}

func TestStaleKeyReSignsInAndRetriesOnce(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), nil)
	f.start()
	first := f.waitUp()
	p.forget() // the platform lost the session: A1 with a zero MAC
	req, out := f.requester()
	f.sys.Root.Send(req, ask{check("000020", 0x78)})
	m := receive(t, out, 3*time.Second).(messages.PlatformCheckResult)
	if m.Err != "" || m.Ref == "" || m.Batch != first.Batch+1 {
		t.Fatalf("answer %+v, want the reference under the new batch %d", m, first.Batch+1)
	}
	checks := p.requests(platform.TypeCardCheck)
	if len(checks) != 2 || checks[0].Batch != first.Batch || checks[1].Batch != first.Batch+1 {
		t.Fatalf("card checks seen %+v, want one under %d then one under %d", checks, first.Batch, first.Batch+1)
	}
	if n := p.signIns.Load(); n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}
	if n := p.conns.Load(); n != 1 {
		t.Fatalf("%d connections: the re-sign-in should use the same one", n)
	}
	if s := f.waitUp(); s.Batch != first.Batch+1 {
		t.Fatalf("status batch %d", s.Batch)
	}
}

func TestRequestTimeoutThenLateAnswerDropped(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	f.start()
	f.waitUp()
	p.checkDelay.Store(int64(700 * time.Millisecond))
	req, out := f.requester()
	start := time.Now()
	f.sys.Root.Send(req, ask{check("000021", 0x78)})
	m := receive(t, out, 2*time.Second).(messages.PlatformCheckResult)
	if m.Err == "" || m.Ref != "" {
		t.Fatalf("answer %+v, want Err (timeout)", m)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 650*time.Millisecond {
		t.Fatalf("timed out after %v, want about 300ms", d)
	}
	f.waitStatus("late answer logged", 2*time.Second, func(Status) bool {
		return strings.Contains(f.logs.String(), "late answer dropped")
	})
	select {
	case m := <-out:
		t.Fatalf("the late answer reached the requester: %+v", m)
	case <-time.After(100 * time.Millisecond):
	}
	if s := f.status(); !s.Up || s.InFlight != 0 {
		t.Fatalf("status after the late answer %+v, want up and nothing in flight", s)
	}
}

// parent supervises the session and a sibling, one-for-one, as the FEP root does.
type parent struct {
	session  *actor.Props
	children chan [2]*actor.PID
}

func (p *parent) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		s := ctx.Spawn(p.session)
		sib := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &sibling{} }))
		p.children <- [2]*actor.PID{s, sib}
	}
}

var siblingStarts atomic.Int32

type sibling struct{}

func (*sibling) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		siblingStarts.Add(1)
	}
}

func TestRestartAfterPanicSignsInAgain(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), nil)
	siblingStarts.Store(0)
	children := make(chan [2]*actor.PID, 1)
	strategy := actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider)
	f.parent = f.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &parent{session: Props(f.cfg, f.deps), children: children}
	}, actor.WithSupervisor(strategy)))
	kids := <-children
	f.pid = kids[0]
	first := f.waitUp()

	// A request in flight when the actor crashes is answered Err, not left waiting.
	p.checkDelay.Store(int64(500 * time.Millisecond))
	req, out := f.requester()
	f.sys.Root.Send(req, ask{check("000022", 0x78)})
	f.waitStatus("request in flight", 2*time.Second, func(s Status) bool { return s.InFlight == 1 })
	f.sys.Root.Send(f.pid, panicForTest{})
	m := receive(t, out, 2*time.Second).(messages.PlatformCheckResult)
	if m.Err == "" || !strings.Contains(m.Err, "restarting") {
		t.Fatalf("in-flight answer at the crash %+v, want Err (restarting)", m)
	}
	p.checkDelay.Store(0)

	second := f.waitStatus("signed in again", 5*time.Second, func(s Status) bool { return s.Up && s.Batch > first.Batch })
	if n := p.signIns.Load(); n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}
	if n := p.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the old one closed with its incarnation)", n)
	}
	if n := siblingStarts.Load(); n != 1 {
		t.Fatalf("the sibling started %d times: the restart touched it", n)
	}
	// The new incarnation serves requests under the new batch.
	f.sys.Root.Send(req, ask{check("000023", 0x78)})
	r := receive(t, out, 3*time.Second).(messages.PlatformCheckResult)
	if r.Err != "" || r.Batch != second.Batch {
		t.Fatalf("answer after restart %+v, want batch %d", r, second.Batch)
	}
	if !strings.Contains(f.logs.String(), "last platform session") {
		t.Fatal("the new incarnation did not read the persisted session")
	}
}

func TestSignOutThenSignInNewBatch(t *testing.T) {
	p := newStandin(t)
	f := newFixture(t, p.addr(), nil)
	f.start()
	first := f.waitUp()
	r, err := f.sys.Root.RequestFuture(f.pid, SignOut{}, 3*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if s := r.(Status); s.Up {
		t.Fatalf("status after sign-out %+v", s)
	}
	if n := len(p.requests(platform.TypeSignOut)); n != 1 {
		t.Fatalf("%d SIGN-OUTs", n)
	}
	req, out := f.requester()
	f.sys.Root.Send(req, ask{check("000024", 0x78)})
	if m := receive(t, out, time.Second).(messages.PlatformCheckResult); m.Err == "" {
		t.Fatalf("request while signed out answered %+v, want Err", m)
	}
	time.Sleep(100 * time.Millisecond)
	if n := p.signIns.Load(); n != 1 {
		t.Fatalf("signed in again (%d) without SignIn", n)
	}
	r, err = f.sys.Root.RequestFuture(f.pid, SignIn{}, 3*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if s := r.(Status); !s.Up || s.Batch != first.Batch+1 {
		t.Fatalf("status after SignIn %+v, want up with batch %d", s, first.Batch+1)
	}
}

func TestSettleDateYear(t *testing.T) {
	now := time.Date(2024, 12, 31, 23, 0, 0, 0, cst)
	for in, want := range map[string]string{"1231": "20241231", "0101": "20250101", "0315": "20250315",
		"20240101": "20240101", "": "20241231"} {
		if got := settleDate(in, now); got != want {
			t.Errorf("settleDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckRefusesMissingKeys(t *testing.T) {
	f := newFixture(t, "127.0.0.1:1", nil)
	bad := f.cfg
	bad.SignInKey = "nothing"
	if err := Check(bad, f.deps); err == nil {
		t.Fatal("Check accepted a long-term key the module does not hold")
	}
	bad = f.cfg
	bad.AuthCode = "short"
	if err := Check(bad, f.deps); err == nil {
		t.Fatal("Check accepted a short auth code")
	}
	if err := Check(f.cfg, f.deps); err != nil {
		t.Fatal(err)
	}
}
