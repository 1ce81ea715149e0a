package terminal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/io/crypt"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/messages"
)

var (
	fepMaster  = []byte("0123456789abcdefFEDCBA9876543210")[:16]
	psamMaster = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}
	tmkA       = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF}
	tmkB       = []byte{0x10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0}
	psamA      = kiosk.PSAMNo{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	psamB      = kiosk.PSAMNo{0x11, 0x22, 0x33, 0x44, 0x55, 0x77}
)

const (
	termA = "KIOSK001"
	termB = "KIOSK002"
	bankC = "0102000001"
	ref   = "20240315000000000042"
)

// health is a switchable store health.
type health struct{ err atomic.Pointer[error] }

func (h *health) Healthy() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

type seq struct {
	mu sync.Mutex
	n  uint64
}

func (s *seq) Next() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.n, nil
}

// fakeLoads stands in for the loads supervisor: it records StartLoads and answers
// confirms with 00; the test answers loads itself through Kiosks.PID.
type fakeLoads struct {
	starts   chan *messages.StartLoad
	confirms chan *messages.KioskConfirm
}

func (f *fakeLoads) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.StartLoad:
		f.starts <- m
	case *messages.KioskConfirm:
		f.confirms <- m
		ctx.Respond(&messages.KioskConfirmReply{Terminal: m.Terminal, KioskTrace: m.KioskTrace, Ref: m.Ref, Code: "00"})
	}
}

// fakePlatform answers pending queries with one U load.
type fakePlatform struct{}

func (fakePlatform) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.PlatformPendingQuery:
		ctx.Respond(&messages.PlatformPendingResult{ReqID: m.ReqID, Loads: []messages.PendingLoad{{
			Ref: ref, Amount: 1000, Serial: 5, OldBalance: 5000, TermID: psamA, HostTime: "20240315143000",
			MAC2: [4]byte{0xD1, 0x4D, 0xBB, 0x02}, Write: 'U'}}})
	}
}

type fixture struct {
	t      *testing.T
	sys    *actor.ActorSystem
	k      *Kiosks
	board  *linkstatus.Board
	store  *health
	loads  *fakeLoads
	addr   string
	fepHSM *hsm.Soft
}

func newFixture(t *testing.T, tweak func(*Config, *Kiosks)) *fixture {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h, err := hsm.NewSoft(fepMaster, log)
	if err != nil {
		t.Fatal(err)
	}
	mustKey := func(_ hsm.KeyInfo, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustKey(h.ImportClear(DefaultPSAMMaster, hsm.UsagePSAMMaster, psamMaster))
	mustKey(h.ImportClear(TMKName(termA), hsm.UsageKEK, tmkA))
	mustKey(h.ImportClear(TMKName(termB), hsm.UsageKEK, tmkB))

	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	t.Cleanup(sys.Shutdown)
	board := linkstatus.New()
	board.Set(linkstatus.Platform, true, "test", time.Now())
	board.Set(linkstatus.Bank(bankC), true, "test", time.Now())
	loads := &fakeLoads{starts: make(chan *messages.StartLoad, 10), confirms: make(chan *messages.KioskConfirm, 10)}
	lpid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return loads }))
	ppid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return fakePlatform{} }))
	cfg := Config{Addr: "127.0.0.1:0", Banks: []string{bankC},
		Terminals: []Terminal{{ID: termA, PSAM: psamA}, {ID: termB, PSAM: psamB}}}
	st := &health{}
	var k *Kiosks
	if tweak != nil {
		tweak(&cfg, nil)
	}
	k, err = New(cfg, Deps{System: sys, Path: "kiosks", HSM: h, Store: st, Batch: &seq{}, Status: board,
		Loads: lpid, Platform: ppid, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(nil, k)
	}
	if _, err := sys.Root.SpawnNamed(k.Props(), "kiosks"); err != nil {
		t.Fatal(err)
	}
	res, err := sys.Root.RequestFuture(sys.NewLocalPID("kiosks"), Ready{}, 5*time.Second).Result()
	if err != nil || res.(Ready).Terminals != 2 {
		t.Fatalf("kiosks not ready: %v %v", res, err)
	}
	if err := k.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return &fixture{t: t, sys: sys, k: k, board: board, store: st, loads: loads, addr: k.Addr().String(), fepHSM: h}
}

// kioskClient is a kiosk built from io/kiosk and a kiosk-side security module holding the
// PSAM master (standing in for the PSAM) and the TMK (standing in for the PIN pad).
type kioskClient struct {
	t     *testing.T
	nc    net.Conn
	term  string
	psam  kiosk.PSAMNo
	h     *hsm.Soft
	trace int
	batch uint32
}

type psamMACer struct{ h *hsm.Soft }

func (p psamMACer) RequestMAC(psam kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	return p.h.PSAMMAC("psam", [][]byte{psam.Factor()}, mab)
}

type padMACer struct{ h *hsm.Soft }

func (p padMACer) ResponseMAC(_ string, mab []byte) ([8]byte, error) {
	var out [8]byte
	m, err := p.h.MAC("mak", hsm.MACX919, mab)
	copy(out[:], m)
	return out, err
}

func (f *fixture) dial(term string, psam kiosk.PSAMNo, tmk, master []byte) *kioskClient {
	f.t.Helper()
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { nc.Close() })
	h, _ := hsm.NewSoft([]byte("kiosk-side-mast!"), nil)
	if _, err := h.ImportClear("psam", hsm.UsagePSAMMaster, master); err != nil {
		f.t.Fatal(err)
	}
	if _, err := h.ImportClear("tmk", hsm.UsageKEK, tmk); err != nil {
		f.t.Fatal(err)
	}
	return &kioskClient{t: f.t, nc: nc, term: term, psam: psam, h: h}
}

func (c *kioskClient) env() kiosk.Envelope {
	c.trace++
	now := time.Now()
	return kiosk.Envelope{Header: kiosk.Header{Dest: 1, Src: 0x0123}, Trace: fmt.Sprintf("%06d", c.trace),
		Date: now.Format("20060102"), Time: now.Format("150405"), Terminal: c.term, PSAM: c.psam, Batch: c.batch}
}

func (c *kioskClient) sendRaw(b []byte) {
	c.t.Helper()
	if err := frame.Write(c.nc, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *kioskClient) send(r kiosk.Request) []byte {
	c.t.Helper()
	b, err := r.Pack(psamMACer{c.h})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
	return b
}

func (c *kioskClient) readRaw(wait time.Duration) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(wait))
	return frame.Read(c.nc, 4096)
}

// read reads one response and verifies its MAC under the kiosk's MAK (unsigned codes pass).
func (c *kioskClient) read() kiosk.Response {
	c.t.Helper()
	b, err := c.readRaw(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	r, err := kiosk.ReadResponse(b, padMACer{c.h})
	if err != nil {
		c.t.Fatalf("response: %v", err)
	}
	return r
}

func (c *kioskClient) do(r kiosk.Request) kiosk.Response {
	c.t.Helper()
	c.send(r)
	return c.read()
}

// signIn signs in as a kiosk does: import PIK and MAK under the TMK with their KCVs,
// then verify the response's MAC with the new MAK.
func (c *kioskClient) signIn() *kiosk.SignInResponse {
	c.t.Helper()
	c.send(&kiosk.SignIn{Envelope: c.env()})
	b, err := c.readRaw(5 * time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	var r kiosk.SignInResponse
	if err := r.Unpack(b); err != nil {
		c.t.Fatal(err)
	}
	if r.Result != kiosk.Approved || r.Keys == nil {
		c.t.Fatalf("sign-in: %s", r.String())
	}
	if _, err := c.h.Import("pik", hsm.UsagePIN, "tmk", r.Keys.PIK[:], r.Keys.PIKKCV[:]); err != nil {
		c.t.Fatalf("PIK import: %v", err)
	}
	if _, err := c.h.Import("mak", hsm.UsageMAC, "tmk", r.Keys.MAK[:], r.Keys.MAKKCV[:]); err != nil {
		c.t.Fatalf("MAK import: %v", err)
	}
	if err := kiosk.VerifyResponse(b, padMACer{c.h}); err != nil {
		c.t.Fatalf("sign-in MAC: %v", err)
	}
	c.batch = r.Batch
	return &r
}

func (c *kioskClient) load(amount int64) *kiosk.Load {
	pin, err := c.h.EncryptPIN("pik", "123456", "6222021234567890123")
	if err != nil {
		c.t.Fatal(err)
	}
	return &kiosk.Load{Envelope: c.env(), Amount: amount,
		Card:     kiosk.CardID{AppSerial: [8]byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78}, City: [2]byte{0x20, 0x00}, CardType: 1},
		Init:     kiosk.InitData{KeyIndex: 1, OldBalance: 5000, Serial: 5, KeyVersion: 1, Random: [4]byte{1, 2, 3, 4}, MAC1: [4]byte{5, 6, 7, 8}},
		BankCode: bankC, PAN: "6222021234567890123", EntryMode: "021", PINBlock: pin}
}

func (f *fixture) approve(s *messages.StartLoad) {
	f.sys.Root.Send(f.k.PID(s.Terminal), &messages.LoadReply{TxnID: s.TxnID, Terminal: s.Terminal,
		KioskTrace: s.KioskTrace, Result: string(txn.KioskApproved), Code: "00", Ref: ref,
		MAC2: [4]byte{0xD1, 0x4D, 0xBB, 0x02}, HostTime: "20240315143000", RRN: "240315123456", AuthCode: "A12345"})
}

func (f *fixture) nextStart() *messages.StartLoad {
	f.t.Helper()
	select {
	case s := <-f.loads.starts:
		return s
	case <-time.After(5 * time.Second):
		f.t.Fatal("no StartLoad")
	}
	return nil
}

func (f *fixture) noStart() {
	f.t.Helper()
	select {
	case s := <-f.loads.starts:
		f.t.Fatalf("unexpected StartLoad %s", s.TxnID)
	case <-time.After(100 * time.Millisecond):
	}
}

func code(r kiosk.Response) kiosk.Code {
	switch m := r.(type) {
	case *kiosk.LoadResponse:
		return m.Result
	case *kiosk.HeartbeatResponse:
		return m.Result
	case *kiosk.ConfirmResponse:
		return m.Result
	case *kiosk.PendingResponse:
		return m.Result
	case *kiosk.SignInResponse:
		return m.Result
	}
	return "??"
}

func TestSignInKeysAndHeartbeat(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)

	// Before sign-in: A1, unsigned, requirement 3.
	r := c.do(&kiosk.Heartbeat{Envelope: c.env()}).(*kiosk.HeartbeatResponse)
	if r.Result != kiosk.SignInAgain || r.Header.Require != 3 {
		t.Fatalf("heartbeat before sign-in: %s require %d", r.String(), r.Header.Require)
	}
	s := c.signIn()
	if s.Batch == 0 {
		t.Fatal("no batch")
	}
	// The kiosk's KCVs match the FEP's keys: same key material on both sides.
	for _, n := range []string{"pik", "mak"} {
		kin, _ := c.h.Info(n)
		fin, err := f.fepHSM.Info("kiosk/" + termA + "/" + n)
		if err != nil || kin.KCV != fin.KCV {
			t.Fatalf("%s KCV kiosk %s FEP %s (%v)", n, kin.KCV, fin.KCV, err)
		}
	}
	// A heartbeat is answered 00 and MACed under the new MAK (read verifies it).
	if got := code(c.do(&kiosk.Heartbeat{Envelope: c.env()})); got != kiosk.Approved {
		t.Fatalf("heartbeat: %s", got)
	}
	// A stale batch is A1.
	e := c.env()
	e.Batch++
	if got := code(c.do(&kiosk.Heartbeat{Envelope: e})); got != kiosk.SignInAgain {
		t.Fatalf("stale batch: %s", got)
	}
}

func TestUnregisteredPSAMAndTerminal(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamB, tmkA, psamMaster) // PSAM of KIOSK002
	r := c.do(&kiosk.SignIn{Envelope: c.env()}).(*kiosk.SignInResponse)
	if r.Result != kiosk.NotRegistered || r.Keys != nil {
		t.Fatalf("wrong PSAM: %s", r.String())
	}
	u := f.dial("KIOSK999", psamA, tmkA, psamMaster)
	if got := code(u.do(&kiosk.SignIn{Envelope: u.env()})); got != kiosk.NotRegistered {
		t.Fatalf("unknown terminal: %s", got)
	}
}

func TestLoadForwardedAndAnsweredMACed(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	req := c.load(1000)
	c.send(req)
	s := f.nextStart()
	if s.TxnID != termA+req.Date+req.Trace || s.Amount != 1000 || s.BankCode != bankC ||
		s.Payer.PINKey != PIKName(termA) || s.Card.TermID != [6]byte(psamA) || s.Card.MAC1 != req.Init.MAC1 ||
		!bytes.Equal(s.Payer.PINBlock, req.PINBlock) {
		t.Fatalf("StartLoad %+v", s)
	}
	// The FEP's security module can read the PIN under the kiosk's PIK: the keys match.
	if ok, err := f.fepHSM.PINMatches(s.Payer.PINKey, s.Payer.PAN, s.Payer.PINBlock, "123456"); err != nil || !ok {
		t.Fatalf("PIN under the issued PIK: %v %v", ok, err)
	}
	f.approve(s)
	r := c.read().(*kiosk.LoadResponse) // MAC verified under the kiosk's MAK
	if r.Result != kiosk.Approved || r.Reference != ref || r.Credit == nil ||
		r.Credit.MAC2 != [4]byte{0xD1, 0x4D, 0xBB, 0x02} || r.Credit.HostTime.String() != "20240315143000" ||
		r.Trace != req.Trace || r.RRN != "240315123456" || r.Amount != 1000 {
		t.Fatalf("load response %s %+v", r.String(), r)
	}
	// CONFIRM goes to the loads supervisor and its answer back.
	cr := c.do(&kiosk.Confirm{Envelope: c.env(), Amount: 1000, Reference: ref,
		Write: kiosk.WriteResult{Status: kiosk.Written, SW: 0x9000, TAC: [4]byte{1, 2, 3, 4}, NewBalance: 6000}})
	if code(cr) != kiosk.Approved {
		t.Fatalf("confirm: %v", code(cr))
	}
	if kc := <-f.loads.confirms; kc.Ref != ref || kc.Status != 'S' || kc.TAC != [4]byte{1, 2, 3, 4} {
		t.Fatalf("KioskConfirm %+v", kc)
	}
}

func TestBadPSAMMACRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	// Same kiosk, but its requests MACed under another PSAM master.
	bad := append([]byte(nil), psamMaster...)
	bad[0] ^= 0xFF
	if _, err := c.h.ImportClear("psam", hsm.UsagePSAMMaster, bad); err != nil {
		t.Fatal(err)
	}
	r := c.do(c.load(1000)).(*kiosk.LoadResponse)
	if r.Result != kiosk.MACError || r.Header.Require != 3 {
		t.Fatalf("bad MAC: %s require %d", r.String(), r.Header.Require)
	}
	f.noStart()
	// And the kiosk must sign in again: with the right MAC but no new sign-in, A1.
	if _, err := c.h.ImportClear("psam", hsm.UsagePSAMMaster, psamMaster); err != nil {
		t.Fatal(err)
	}
	if got := code(c.do(&kiosk.Heartbeat{Envelope: c.env()})); got != kiosk.SignInAgain {
		t.Fatalf("after A0: %s", got)
	}
}

func TestDuplicateTraceAnsweredFromMemory(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	raw := c.send(c.load(1000))
	f.approve(f.nextStart())
	first := c.read().(*kiosk.LoadResponse)
	c.sendRaw(raw) // the very same LOAD REQUEST again
	again := c.read().(*kiosk.LoadResponse)
	f.noStart()
	if again.Result != first.Result || again.Reference != first.Reference || again.Credit == nil ||
		*again.Credit != *first.Credit || again.Trace != first.Trace {
		t.Fatalf("repeat answered %s, first %s", again.String(), first.String())
	}
	// While in flight, a repeat is not a second load either.
	raw = c.send(c.load(500))
	s := f.nextStart()
	c.sendRaw(raw)
	f.noStart()
	f.approve(s)
	if r := c.read().(*kiosk.LoadResponse); r.Result != kiosk.Approved {
		t.Fatalf("in-flight load: %s", r.String())
	}
	if _, err := c.readRaw(200 * time.Millisecond); err == nil {
		t.Fatal("a second answer to the in-flight repeat")
	}
}

func TestBusyWhileOneInFlight(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	c.send(c.load(1000))
	s := f.nextStart()
	second := c.load(2000)
	r := c.do(second).(*kiosk.LoadResponse)
	if r.Result != kiosk.InvalidTxn || r.Trace != second.Trace {
		t.Fatalf("second load: %s", r.String())
	}
	f.noStart()
	f.approve(s)
	if r := c.read().(*kiosk.LoadResponse); r.Result != kiosk.Approved || r.Trace != s.KioskTrace {
		t.Fatalf("first load: %s", r.String())
	}
}

func TestRefusedFastWhenALinkIsDown(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	check := func(want kiosk.Code) {
		t.Helper()
		start := time.Now()
		r := c.do(c.load(1000)).(*kiosk.LoadResponse)
		if r.Result != want || time.Since(start) > time.Second {
			t.Fatalf("want %s, got %s in %v", want, r.Result, time.Since(start))
		}
		f.noStart()
	}
	f.board.Set(linkstatus.Platform, false, "test", time.Now())
	check(kiosk.PlatformDown)
	if got := code(c.do(&kiosk.PendingQuery{Envelope: c.env()})); got != kiosk.PlatformDown {
		t.Fatalf("pending query with the platform down: %s", got)
	}
	f.board.Set(linkstatus.Platform, true, "test", time.Now())
	f.board.Set(linkstatus.Bank(bankC), false, "test", time.Now())
	check(kiosk.BankUnavailable)
	f.board.Set(linkstatus.Bank(bankC), true, "test", time.Now())
	down := errors.New("disk gone")
	f.store.err.Store(&down)
	check(kiosk.SystemError)
	f.store.err.Store(nil)
	c.send(c.load(1000))
	f.nextStart()
}

func TestPendingQueryThroughPlatform(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	r := c.do(&kiosk.PendingQuery{Envelope: c.env(), Card: kiosk.CardID{AppSerial: [8]byte{1}}}).(*kiosk.PendingResponse)
	if r.Result != kiosk.Approved || len(r.Loads) != 1 || r.Loads[0].Reference != ref || r.Loads[0].Status != kiosk.Unknown ||
		r.Loads[0].HostTime.String() != "20240315143000" || r.Card.AppSerial != [8]byte{1} {
		t.Fatalf("pending: %s %+v", r.String(), r.Loads)
	}
}

func TestHeartbeatTimeoutClosesConnection(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Kiosks) {
		if c != nil {
			c.HeartbeatTimeout = 300 * time.Millisecond
		}
	})
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	start := time.Now()
	_, err := c.readRaw(3 * time.Second)
	if !errors.Is(err, io.EOF) || time.Since(start) > 2*time.Second {
		t.Fatalf("want EOF after the heartbeat timeout, got %v after %v", err, time.Since(start))
	}
	// The kiosk reconnects and carries on with its keys (sign-in not lost).
	c2 := f.dial(termA, psamA, tmkA, psamMaster)
	c2.h, c2.batch, c2.trace = c.h, c.batch, c.trace
	if got := code(c2.do(&kiosk.Heartbeat{Envelope: c2.env()})); got != kiosk.Approved {
		t.Fatalf("after reconnect: %s", got)
	}
}

func TestNewConnectionReplacesOld(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(termA, psamA, tmkA, psamMaster)
	c.signIn()
	c2 := f.dial(termA, psamA, tmkA, psamMaster)
	c2.h, c2.batch, c2.trace = c.h, c.batch, c.trace
	if got := code(c2.do(&kiosk.Heartbeat{Envelope: c2.env()})); got != kiosk.Approved {
		t.Fatalf("new connection: %s", got)
	}
	if _, err := c.readRaw(2 * time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("old connection still open: %v", err)
	}
}

func TestPanicRestartsOnlyThatTerminal(t *testing.T) {
	var armed atomic.Bool
	f := newFixture(t, func(_ *Config, k *Kiosks) {
		if k != nil {
			k.testPanic = func(term string, msg any) {
				if in, ok := msg.(inbound); ok && term == termA && armed.Load() {
					if _, hb := in.req.(*kiosk.Heartbeat); hb {
						armed.Store(false)
						panic("injected")
					}
				}
			}
		}
	})
	a := f.dial(termA, psamA, tmkA, psamMaster)
	b := f.dial(termB, psamB, tmkB, psamMaster)
	a.signIn()
	b.signIn()
	armed.Store(true)
	a.send(&kiosk.Heartbeat{Envelope: a.env()})
	if _, err := a.readRaw(300 * time.Millisecond); err == nil {
		t.Fatal("the panicking heartbeat was answered")
	}
	if got := code(b.do(&kiosk.Heartbeat{Envelope: b.env()})); got != kiosk.Approved {
		t.Fatalf("other terminal during the restart: %s", got)
	}
	// Terminal A is back, still signed in, on the same connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.send(&kiosk.Heartbeat{Envelope: a.env()})
		bs, err := a.readRaw(500 * time.Millisecond)
		if err == nil {
			r, err := kiosk.ReadResponse(bs, padMACer{a.h})
			if err != nil || code(r) != kiosk.Approved {
				t.Fatalf("after restart: %v %v", r, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("terminal A did not come back")
		}
	}
}

// Compile-time check that the soft module is enough for the kiosk side.
var _ Security = (*hsm.Soft)(nil)

func TestKCVHelpersAgree(t *testing.T) {
	// io/crypt and the security module agree on what a KCV is (the kiosk uses crypt).
	k, _ := crypt.KCV(tmkA)
	h, _ := hsm.NewSoft(fepMaster, nil)
	info, _ := h.ImportClear("x", hsm.UsageKEK, tmkA)
	if fmt.Sprintf("%X", k[:4]) != info.KCV {
		t.Fatalf("%X vs %s", k, info.KCV)
	}
}
