// Package kiosktest is a small FEP stand-in for tests of kiosk-side code (as net/http/httptest
// is for HTTP clients): it speaks the real kiosk link over TCP with io/kiosk and io/hsm,
// issues working keys at sign-in, checks every PSAM MAC, answers LOAD with a MAC2 it issues
// itself from the card master keys (no bank, no platform), verifies TACs on CONFIRM and keeps
// a ledger of loads with their write status, so tests can see what the kiosk reported.
//
// It is not the FEP: no persistence, no bank, no duplicate window, and a load approved
// without a CONFIRM counts as U at once (as if the FEP's confirm timeout had fired).
package kiosktest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
)

// Config is the stand-in's keys and rules.
type Config struct {
	TMK        []byte // every terminal's TMK (16 bytes)
	PSAMMaster []byte // PSAM MAC master key (16 bytes)
	MDLK, MTK  []byte // card master load and TAC keys (16 bytes each)
	PIN        string // the PIN every bank card has; "" accepts any PIN or none
	Logger     *slog.Logger
}

// Status of a load in the ledger: 'A' approved and waiting for its CONFIRM, then S, F or U.
const Approved byte = 'A'

// Load is one ledger entry.
type Load struct {
	Ref      string
	Terminal string
	Card     [8]byte
	Amount   int64
	Status   byte
	Rewrites int // MAC2s issued by RE-WRITE
	// The INIT the last MAC2 was issued for, and that MAC2.
	Serial     uint16
	OldBalance uint32
	TermID     [6]byte
	HostTime   kiosk.HostTime
	MAC2       [4]byte
	TAC        [4]byte // the verified TAC, when S
}

// FEP is the stand-in. Start it with Start; it stops when the test's context ends or Close.
type FEP struct {
	cfg Config
	hsm *hsm.Soft
	ln  net.Listener
	log *slog.Logger
	wg  sync.WaitGroup

	mu      sync.Mutex
	badKCV  bool
	batch   uint32
	seq     int
	loads   []*Load
	counts  map[kiosk.Kind]int
	macFail int
	conns   []net.Conn
}

// Start listens on 127.0.0.1 (a free port) and serves kiosks until Close.
func Start(cfg Config) (*FEP, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := hsm.NewSoft(make16(0x5A), cfg.Logger)
	if err != nil {
		return nil, err
	}
	for _, k := range []struct {
		name string
		u    hsm.Usage
		key  []byte
	}{{"psam", hsm.UsagePSAMMaster, cfg.PSAMMaster}, {"mdlk", hsm.UsageCardMaster, cfg.MDLK},
		{"mtk", hsm.UsageCardMaster, cfg.MTK}, {"tmk", hsm.UsageKEK, cfg.TMK}} {
		if _, err := m.ImportClear(k.name, k.u, k.key); err != nil {
			return nil, fmt.Errorf("kiosktest: key %s: %w", k.name, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &FEP{cfg: cfg, hsm: m, ln: ln, log: cfg.Logger, counts: map[kiosk.Kind]int{}, batch: 7}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func make16(b byte) []byte {
	k := make([]byte, 16)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// Addr is the address kiosks dial.
func (f *FEP) Addr() string { return f.ln.Addr().String() }

// Close stops listening and drops every connection.
func (f *FEP) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// SetBadKCV makes the next sign-ins deliver a PIK check value that does not match.
func (f *FEP) SetBadKCV(bad bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.badKCV = bad
}

// Count is how many requests of kind k the stand-in answered.
func (f *FEP) Count(k kiosk.Kind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[k]
}

// MACFailures is how many requests failed their PSAM MAC.
func (f *FEP) MACFailures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.macFail
}

// Loads returns a copy of the ledger, oldest first.
func (f *FEP) Loads() []Load {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Load, len(f.loads))
	for i, l := range f.loads {
		out[i] = *l
	}
	return out
}

// Lookup returns the ledger entry of ref.
func (f *FEP) Lookup(ref string) (Load, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.find(ref); l != nil {
		return *l, true
	}
	return Load{}, false
}

func (f *FEP) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *FEP) serve(c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	for {
		b, err := frame.Read(c, 4096)
		if err != nil {
			return
		}
		out, err := f.handle(b)
		if err != nil {
			f.log.Warn("kiosktest: request dropped", "err", err)
			continue
		}
		if err := frame.Write(c, out); err != nil {
			return
		}
	}
}

// psamMAC recomputes a kiosk's request MAC in the security module.
type psamMAC struct{ m *hsm.Soft }

func (p psamMAC) RequestMAC(no kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	return p.m.PSAMMAC("psam", [][]byte{no.Factor()}, mab)
}

// makMAC signs responses with the terminal's MAK.
type makMAC struct{ m *hsm.Soft }

func (p makMAC) ResponseMAC(term string, mab []byte) ([8]byte, error) {
	var out [8]byte
	b, err := p.m.MAC("mak-"+term, hsm.MACX919, mab)
	copy(out[:], b)
	return out, err
}

func (f *FEP) reply(req kiosk.Envelope) kiosk.Envelope {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	return kiosk.Envelope{Header: req.Header.Reply(), Trace: req.Trace, Date: now.Format("20060102"),
		Time: now.Format("150405"), Terminal: req.Terminal, PSAM: req.PSAM, Batch: f.batch}
}

func (f *FEP) handle(b []byte) ([]byte, error) {
	req, err := kiosk.ReadRequest(b, psamMAC{f.hsm})
	if errors.Is(err, kiosk.ErrMAC) {
		f.mu.Lock()
		f.macFail++
		f.mu.Unlock()
		env := requestEnvelope(req)
		if env == nil {
			return nil, err
		}
		e := f.reply(*env)
		e.Header.Require = 3
		return unsignedMACError(req, e)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.counts[req.Kind()]++
	f.mu.Unlock()
	signer := makMAC{f.hsm}
	switch m := req.(type) {
	case *kiosk.SignIn:
		return f.signIn(m)
	case *kiosk.Heartbeat:
		return (&kiosk.HeartbeatResponse{Envelope: f.reply(m.Envelope), Reply: kiosk.Reply{Result: kiosk.Approved}}).Pack(signer)
	case *kiosk.SignOut:
		return (&kiosk.SignOutResponse{Envelope: f.reply(m.Envelope), Reply: kiosk.Reply{Result: kiosk.Approved}}).Pack(signer)
	case *kiosk.PendingQuery:
		return (&kiosk.PendingResponse{Envelope: f.reply(m.Envelope), Reply: kiosk.Reply{Result: kiosk.Approved},
			Card: m.Card, Loads: f.pending(m.Card.AppSerial)}).Pack(signer)
	case *kiosk.Load:
		return f.load(m)
	case *kiosk.Confirm:
		return f.confirm(m)
	case *kiosk.Rewrite:
		return f.rewrite(m)
	case *kiosk.Resolve:
		return f.resolve(m)
	}
	return nil, fmt.Errorf("kiosktest: %s not handled", req.Kind())
}

func unsignedMACError(req kiosk.Request, e kiosk.Envelope) ([]byte, error) {
	r := kiosk.Reply{Result: kiosk.MACError}
	switch m := req.(type) {
	case *kiosk.SignIn:
		return (&kiosk.SignInResponse{Envelope: e, Reply: r}).Pack(nil)
	case *kiosk.Heartbeat:
		return (&kiosk.HeartbeatResponse{Envelope: e, Reply: r}).Pack(nil)
	case *kiosk.PendingQuery:
		return (&kiosk.PendingResponse{Envelope: e, Reply: r, Card: m.Card}).Pack(nil)
	case *kiosk.Load:
		return (&kiosk.LoadResponse{Envelope: e, Reply: r, Amount: m.Amount}).Pack(nil)
	case *kiosk.Confirm:
		return (&kiosk.ConfirmResponse{Envelope: e, Reply: r, Reference: m.Reference}).Pack(nil)
	case *kiosk.Rewrite:
		return (&kiosk.RewriteResponse{Envelope: e, Reply: r, Amount: m.Amount, Reference: m.Reference}).Pack(nil)
	case *kiosk.Resolve:
		return (&kiosk.ResolveResponse{Envelope: e, Reply: r, Reference: m.Reference}).Pack(nil)
	}
	return nil, fmt.Errorf("kiosktest: no MAC error answer for %s", req.Kind())
}

func requestEnvelope(r kiosk.Request) *kiosk.Envelope {
	return kiosk.EnvelopeOf(r)
}

func (f *FEP) signIn(m *kiosk.SignIn) ([]byte, error) {
	term := m.Terminal
	if _, err := f.hsm.Generate("pik-"+term, hsm.UsagePIN); err != nil {
		return nil, err
	}
	if _, err := f.hsm.Generate("mak-"+term, hsm.UsageMAC); err != nil {
		return nil, err
	}
	var keys kiosk.WorkingKeys
	for _, k := range []struct {
		name     string
		key, kcv []byte
	}{{"pik-" + term, keys.PIK[:], keys.PIKKCV[:]}, {"mak-" + term, keys.MAK[:], keys.MAKKCV[:]}} {
		w, kcv, err := f.hsm.Export(k.name, "tmk")
		if err != nil {
			return nil, err
		}
		copy(k.key, w)
		copy(k.kcv, kcv)
	}
	f.mu.Lock()
	f.batch++
	if f.badKCV {
		keys.PIKKCV[0] ^= 0xFF
	}
	f.mu.Unlock()
	return (&kiosk.SignInResponse{Envelope: f.reply(m.Envelope), Reply: kiosk.Reply{Result: kiosk.Approved}, Keys: &keys}).Pack(makMAC{f.hsm})
}

// pending lists the card's loads not known to be on it; an approved load without CONFIRM
// counts as U.
func (f *FEP) pending(cardNo [8]byte) []kiosk.Pending {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kiosk.Pending
	for _, l := range f.loads {
		if l.Card != cardNo || l.Status == 'S' {
			continue
		}
		st := kiosk.WriteStatus(l.Status)
		if l.Status == Approved {
			st = kiosk.Unknown
		}
		out = append(out, kiosk.Pending{Reference: l.Ref, Amount: uint32(l.Amount), Status: st, Serial: l.Serial,
			OldBalance: l.OldBalance, TermID: l.TermID, HostTime: l.HostTime, MAC2: l.MAC2})
	}
	return out
}

func (f *FEP) find(ref string) *Load {
	for _, l := range f.loads {
		if l.Ref == ref {
			return l
		}
	}
	return nil
}

func (f *FEP) issue(cardNo [8]byte, amount int64, psam kiosk.PSAMNo, in kiosk.InitData) (kiosk.HostTime, [4]byte, error) {
	ht := kiosk.HostTimeOf(time.Now())
	mac2, err := f.hsm.IssueMAC2(hsm.LoadRequest{MasterLoadKey: "mdlk", Factors: [][]byte{cardNo[:]},
		OldBalance: in.OldBalance, Amount: uint32(amount), Serial: in.Serial, Random: in.Random,
		TermID: [6]byte(psam), MAC1: in.MAC1}, ht)
	return ht, mac2, err
}

func (f *FEP) load(m *kiosk.Load) ([]byte, error) {
	resp := &kiosk.LoadResponse{Envelope: f.reply(m.Envelope), Amount: m.Amount}
	sign := func(c kiosk.Code) ([]byte, error) { resp.Result = c; return resp.Pack(makMAC{f.hsm}) }
	if len(f.pending(m.Card.AppSerial)) > 0 {
		return sign(kiosk.PendingFirst)
	}
	if f.cfg.PIN != "" {
		ok, err := f.hsm.PINMatches("pik-"+m.Terminal, m.PAN, m.PINBlock, f.cfg.PIN)
		if m.PINBlock == nil || err != nil || !ok {
			return sign(kiosk.WrongPIN)
		}
	}
	ht, mac2, err := f.issue(m.Card.AppSerial, m.Amount, m.PSAM, m.Init)
	if err != nil {
		return sign(kiosk.CardCheckFailed)
	}
	f.mu.Lock()
	f.seq++
	l := &Load{Ref: fmt.Sprintf("%s%012d", time.Now().Format("20060102"), f.seq), Terminal: m.Terminal,
		Card: m.Card.AppSerial, Amount: m.Amount, Status: Approved, Serial: m.Init.Serial,
		OldBalance: m.Init.OldBalance, TermID: [6]byte(m.PSAM), HostTime: ht, MAC2: mac2}
	f.loads = append(f.loads, l)
	seq := f.seq
	f.mu.Unlock()
	resp.Reference, resp.RRN, resp.AuthCode = l.Ref, fmt.Sprintf("%012d", seq), "A00001"
	resp.Credit = &kiosk.Credit{HostTime: ht, MAC2: mac2}
	return sign(kiosk.Approved)
}

func (f *FEP) confirm(m *kiosk.Confirm) ([]byte, error) {
	resp := &kiosk.ConfirmResponse{Envelope: f.reply(m.Envelope), Reference: m.Reference}
	f.mu.Lock()
	l := f.find(m.Reference)
	var cur Load
	if l != nil {
		cur = *l
	}
	f.mu.Unlock()
	code := kiosk.Approved
	status := byte(m.Write.Status)
	switch {
	case l == nil:
		code = kiosk.UnknownReference
	case cur.Status == 'S':
		// idempotent: already closed
	case m.Write.Status == kiosk.Written:
		err := f.hsm.VerifyTAC(hsm.TACInput{MasterTACKey: "mtk", Factors: [][]byte{cur.Card[:]},
			NewBalance: m.Write.NewBalance, Amount: uint32(cur.Amount), Serial: cur.Serial, TermID: cur.TermID,
			HostDateTime: cur.HostTime}, m.Write.TAC)
		if err != nil {
			code, status = kiosk.TACInvalid, 'U'
		}
	}
	if l != nil && cur.Status != 'S' {
		f.mu.Lock()
		l.Status = status
		if status == 'S' {
			l.TAC = m.Write.TAC
		}
		f.mu.Unlock()
	}
	resp.Result = code
	return resp.Pack(makMAC{f.hsm})
}

func (f *FEP) rewrite(m *kiosk.Rewrite) ([]byte, error) {
	resp := &kiosk.RewriteResponse{Envelope: f.reply(m.Envelope), Amount: m.Amount, Reference: m.Reference}
	sign := func(c kiosk.Code) ([]byte, error) { resp.Result = c; return resp.Pack(makMAC{f.hsm}) }
	f.mu.Lock()
	l := f.find(m.Reference)
	var cur Load
	if l != nil {
		cur = *l
	}
	f.mu.Unlock()
	switch {
	case l == nil || cur.Card != m.Card.AppSerial:
		return sign(kiosk.UnknownReference)
	case cur.Status == 'S' || cur.Amount != m.Amount:
		return sign(kiosk.InvalidTxn)
	case cur.Status != 'F' && m.Init.Serial != cur.Serial:
		return sign(kiosk.ResolveFirst)
	}
	ht, mac2, err := f.issue(cur.Card, cur.Amount, m.PSAM, m.Init)
	if err != nil {
		return sign(kiosk.CardCheckFailed)
	}
	f.mu.Lock()
	l.Serial, l.OldBalance, l.TermID, l.HostTime, l.MAC2 = m.Init.Serial, m.Init.OldBalance, [6]byte(m.PSAM), ht, mac2
	l.Rewrites++
	f.mu.Unlock()
	resp.Credit = &kiosk.Credit{HostTime: ht, MAC2: mac2}
	return sign(kiosk.Approved)
}

// resolve decides a U load from the card's evidence as the platform would (spec section 4).
func (f *FEP) resolve(m *kiosk.Resolve) ([]byte, error) {
	resp := &kiosk.ResolveResponse{Envelope: f.reply(m.Envelope), Reference: m.Reference}
	sign := func(c kiosk.Code) ([]byte, error) { resp.Result = c; return resp.Pack(makMAC{f.hsm}) }
	f.mu.Lock()
	l := f.find(m.Reference)
	var cur Load
	if l != nil {
		cur = *l
	}
	f.mu.Unlock()
	if l == nil || cur.Card != m.Card.AppSerial {
		return sign(kiosk.UnknownReference)
	}
	applied := false
	ev := m.Evidence
	switch ev.Method {
	case kiosk.ByProve:
		if ev.MAC2 == cur.MAC2 {
			err := f.hsm.VerifyTAC(hsm.TACInput{MasterTACKey: "mtk", Factors: [][]byte{cur.Card[:]},
				NewBalance: cur.OldBalance + uint32(cur.Amount), Amount: uint32(cur.Amount), Serial: cur.Serial,
				TermID: cur.TermID, HostDateTime: cur.HostTime}, ev.TAC)
			if err != nil {
				return sign(kiosk.TACInvalid)
			}
			applied = true
		}
	case kiosk.ByLog:
		r, err := card.ParseLogRecord(ev.Record[:])
		if err != nil {
			return sign(kiosk.FormatError)
		}
		applied = r.Serial == cur.Serial && r.Amount == uint32(cur.Amount) && r.TermID == cur.TermID &&
			slices.Equal(r.DateTime[:], cur.HostTime[:])
	default:
		return sign(kiosk.SystemError) // the ledger would decide; not modelled here
	}
	if !applied {
		return sign(kiosk.NotApplied)
	}
	f.mu.Lock()
	l.Status = 'S'
	l.TAC = ev.TAC
	f.mu.Unlock()
	return sign(kiosk.Approved)
}

// Serve is Start bound to ctx: the stand-in closes when ctx ends.
func Serve(ctx context.Context, cfg Config) (*FEP, error) {
	f, err := Start(cfg)
	if err != nil {
		return nil, err
	}
	go func() { <-ctx.Done(); f.Close() }()
	return f, nil
}
