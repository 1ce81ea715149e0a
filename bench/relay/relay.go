// Package relay is the bench's baseline: a stateless switch that speaks the same three links
// as the FEP (kiosks, bank hosts, the one-card platform) and forwards a load straight
// through — PSAM MAC check, working keys at kiosk sign-in, PIN translation, bank MAC,
// platform MAC — with no actors, no persistence, no reversal and no duplicate detection.
// It reads the FEP's own config file, so it holds the same keys and dials the same peers.
//
// It exists to be measured next to the FEP (docs/performance.md): whatever it cannot do is
// what the FEP is for. It must never be deployed: a lost bank answer leaves a debit that
// nobody reverses.
package relay

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quancun/quancun/actors/banklink"
	"github.com/quancun/quancun/actors/fep"
	"github.com/quancun/quancun/actors/platformlink"
	"github.com/quancun/quancun/actors/terminal"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/io/platform"
)

const (
	ltkName  = "platform/ltk"
	psamName = "psam/master"
	timeout  = 10 * time.Second
)

var cst = time.FixedZone("CST", 8*3600)

// Relay is one running relay.
type Relay struct {
	cfg   fep.Config
	log   *slog.Logger
	hsm   *hsm.Soft
	plat  *platformClient
	banks map[string]*bankClient
	terms map[string]kiosk.PSAMNo
	batch atomic.Uint32
	ln    net.Listener
}

// Start loads the keys of the FEP config at path, signs in to the platform and on to every
// bank, and listens for kiosks on listen.
// firstSTAN is where the relay's STANs start: it keeps no counter, so every start must take
// numbers no earlier start (nor the FEP) used today, or the bank answers a repeat with the
// first debit's answer and one debit is booked twice.
func Start(ctx context.Context, path, listen string, firstSTAN uint32, log *slog.Logger) (*Relay, error) {
	cfg, err := fep.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	master, _, err := cfg.Master()
	if err != nil {
		return nil, err
	}
	h, err := hsm.NewSoft(master, log)
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, log: log, hsm: h, banks: map[string]*bankClient{}, terms: map[string]kiosk.PSAMNo{}}
	psam, err := hex.DecodeString(cfg.PSAM.MACMaster)
	if err != nil {
		return nil, fmt.Errorf("relay: psam key: %w", err)
	}
	if _, err := h.ImportClear(psamName, hsm.UsagePSAMMaster, psam); err != nil {
		return nil, err
	}
	for i, k := range cfg.Kiosks {
		tmk, err := cfg.TMK(i)
		if err != nil {
			return nil, err
		}
		if _, err := h.ImportClear(terminal.TMKName(k.Terminal), hsm.UsageKEK, tmk); err != nil {
			return nil, err
		}
		no, err := hex.DecodeString(k.PSAM)
		if err != nil || len(no) != 6 {
			return nil, fmt.Errorf("relay: kiosk %s psam %q", k.Terminal, k.PSAM)
		}
		r.terms[k.Terminal] = kiosk.PSAMNo(no)
	}
	ltk, _ := hex.DecodeString(cfg.Platform.LTK)
	if _, _, err := platformlink.InstallKeys(h, ltkName, ltk); err != nil {
		return nil, err
	}
	if r.plat, err = dialPlatform(ctx, cfg.Platform, h, log); err != nil {
		return nil, err
	}
	for _, b := range cfg.Banks {
		zmk, err := hex.DecodeString(b.ZMK)
		if err != nil {
			return nil, fmt.Errorf("relay: bank %s zmk: %w", b.Code, err)
		}
		if _, err := h.ImportClear(fep.ZMKName(b.Code), hsm.UsageKEK, zmk); err != nil {
			return nil, err
		}
		merchant := b.Merchant
		if merchant == "" {
			merchant = cfg.FEP.Merchant
		}
		bc, err := dialBank(ctx, b, merchant, firstSTAN, h, log)
		if err != nil {
			return nil, err
		}
		r.banks[b.Code] = bc
	}
	r.batch.Store(uint32(time.Now().Unix() % 900000))
	if r.ln, err = net.Listen("tcp", listen); err != nil {
		return nil, err
	}
	return r, nil
}

// Addr is where kiosks connect.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Serve accepts kiosks until ctx ends.
func (r *Relay) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		r.ln.Close()
		r.plat.close()
		for _, b := range r.banks {
			b.close()
		}
	}()
	go r.plat.keepAlive(ctx)
	for _, b := range r.banks {
		go b.keepAlive(ctx)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.serveKiosk(ctx, c) }()
	}
}

type psamMAC struct{ h *hsm.Soft }

func (m psamMAC) RequestMAC(no kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	return m.h.PSAMMAC(psamName, [][]byte{no.Factor()}, mab)
}

type makMAC struct {
	h    *hsm.Soft
	name string
}

func (m makMAC) ResponseMAC(_ string, mab []byte) ([8]byte, error) {
	var out [8]byte
	b, err := m.h.MAC(m.name, hsm.MACX919, mab)
	copy(out[:], b)
	return out, err
}

func (r *Relay) serveKiosk(ctx context.Context, c net.Conn) {
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	for {
		b, err := frame.Read(c, 4096)
		if err != nil {
			return
		}
		req, err := kiosk.ReadRequest(b, psamMAC{r.hsm})
		if req == nil {
			r.log.Warn("relay: undecodable kiosk message", "err", err)
			return
		}
		out := r.handle(ctx, req, err)
		if out == nil {
			continue
		}
		if err := frame.Write(c, out); err != nil {
			return
		}
	}
}

func envOf(r kiosk.Request) *kiosk.Envelope {
	if e := kiosk.EnvelopeOf(r); e != nil {
		return e
	}
	return &kiosk.Envelope{}
}

func (r *Relay) reply(e *kiosk.Envelope) kiosk.Envelope {
	now := time.Now()
	return kiosk.Envelope{Header: e.Header.Reply(), Trace: e.Trace, Date: now.Format("20060102"),
		Time: now.Format("150405"), Terminal: e.Terminal, PSAM: e.PSAM, Batch: r.batch.Load()}
}

// handle answers one kiosk request (the packed response, or nil for none).
func (r *Relay) handle(ctx context.Context, req kiosk.Request, macErr error) []byte {
	e := envOf(req)
	env := r.reply(e)
	signer := makMAC{r.hsm, terminal.MAKName(e.Terminal)}
	refuse := func(code kiosk.Code) []byte {
		if code == kiosk.MACError || code == kiosk.SignInAgain {
			env.Header.Require = 3
		}
		var resp kiosk.Response
		rep := kiosk.Reply{Result: code}
		switch m := req.(type) {
		case *kiosk.SignIn:
			resp = &kiosk.SignInResponse{Envelope: env, Reply: rep}
		case *kiosk.Load:
			resp = &kiosk.LoadResponse{Envelope: env, Reply: rep, Amount: m.Amount}
		case *kiosk.Confirm:
			resp = &kiosk.ConfirmResponse{Envelope: env, Reply: rep, Reference: m.Reference}
		case *kiosk.PendingQuery:
			resp = &kiosk.PendingResponse{Envelope: env, Reply: rep, Card: m.Card}
		case *kiosk.Rewrite:
			resp = &kiosk.RewriteResponse{Envelope: env, Reply: rep, Amount: m.Amount, Reference: m.Reference}
		case *kiosk.Resolve:
			resp = &kiosk.ResolveResponse{Envelope: env, Reply: rep, Reference: m.Reference}
		case *kiosk.SignOut:
			resp = &kiosk.SignOutResponse{Envelope: env, Reply: rep}
		default:
			resp = &kiosk.HeartbeatResponse{Envelope: env, Reply: rep}
		}
		var s kiosk.ResponseMACer = signer
		if info, ok := code.Info(); ok && info.Unsigned {
			s = nil
		}
		b, err := resp.Pack(s)
		if err != nil {
			r.log.Warn("relay: pack response", "err", err)
			return nil
		}
		return b
	}
	psam, ok := r.terms[e.Terminal]
	switch {
	case !ok || psam != e.PSAM:
		return refuse(kiosk.NotRegistered)
	case macErr != nil:
		return refuse(kiosk.MACError)
	}
	switch m := req.(type) {
	case *kiosk.SignIn:
		return r.signIn(m, env, signer)
	case *kiosk.Heartbeat, *kiosk.SignOut:
		return refuse(kiosk.Approved)
	case *kiosk.PendingQuery:
		h, resp, err := r.plat.call(ctx, &platform.PendingQuery{AppSerial: m.Card.AppSerial})
		if err != nil || h.Result != platform.OK {
			return refuse(kiosk.PlatformDown)
		}
		pr := resp.(*platform.PendingResponse)
		out := &kiosk.PendingResponse{Envelope: env, Reply: kiosk.Reply{Result: kiosk.Approved}, Card: m.Card}
		for _, p := range pr.Loads {
			if len(out.Loads) == kiosk.MaxPending {
				break
			}
			out.Loads = append(out.Loads, kiosk.Pending{Reference: p.Reference, Amount: p.Amount,
				Status: kiosk.WriteStatus(p.Status), Serial: p.Serial, OldBalance: p.OldBalance, TermID: p.TermID,
				HostTime: kiosk.HostTime(p.HostTime), MAC2: p.MAC2})
		}
		return pack(out, signer, r.log)
	case *kiosk.Load:
		return r.load(ctx, m, env, signer, refuse)
	case *kiosk.Confirm:
		h, _, err := r.plat.call(ctx, &platform.Confirm{Reference: m.Reference, Status: platform.WriteStatus(m.Write.Status), TAC: m.Write.TAC})
		if err != nil {
			return refuse(kiosk.PlatformDown)
		}
		code := kiosk.Approved
		if h.Result != platform.OK {
			code = platformCode(h.Result)
		}
		return pack(&kiosk.ConfirmResponse{Envelope: env, Reply: kiosk.Reply{Result: code}, Reference: m.Reference}, signer, r.log)
	default:
		// Re-writes and U resolutions need the FEP; the bench's loads never leave one.
		return refuse(kiosk.SystemError)
	}
}

func pack(m kiosk.Response, s kiosk.ResponseMACer, log *slog.Logger) []byte {
	b, err := m.Pack(s)
	if err != nil {
		log.Warn("relay: pack response", "err", err)
		return nil
	}
	return b
}

func platformCode(c platform.Code) kiosk.Code {
	if info, ok := c.Info(); ok {
		return kiosk.Code(info.Kiosk)
	}
	return kiosk.PlatformDown
}

func (r *Relay) signIn(m *kiosk.SignIn, env kiosk.Envelope, signer makMAC) []byte {
	id := m.Terminal
	keys := &kiosk.WorkingKeys{}
	err := func() error {
		if _, err := r.hsm.Generate(terminal.PIKName(id), hsm.UsagePIN); err != nil {
			return err
		}
		if _, err := r.hsm.Generate(terminal.MAKName(id), hsm.UsageMAC); err != nil {
			return err
		}
		wp, kp, err := r.hsm.Export(terminal.PIKName(id), terminal.TMKName(id))
		if err != nil {
			return err
		}
		wm, km, err := r.hsm.Export(terminal.MAKName(id), terminal.TMKName(id))
		if err != nil {
			return err
		}
		copy(keys.PIK[:], wp)
		copy(keys.PIKKCV[:], kp)
		copy(keys.MAK[:], wm)
		copy(keys.MAKKCV[:], km)
		return nil
	}()
	if err != nil {
		r.log.Error("relay: kiosk sign-in", "terminal", id, "err", err)
		return nil
	}
	return pack(&kiosk.SignInResponse{Envelope: env, Reply: kiosk.Reply{Result: kiosk.Approved}, Keys: keys}, signer, r.log)
}

// load is DESIGN section 4 steps 4 to 7 with nothing written down: CARD CHECK, 0200, BOOK.
func (r *Relay) load(ctx context.Context, m *kiosk.Load, env kiosk.Envelope, signer makMAC, refuse func(kiosk.Code) []byte) []byte {
	bc := r.banks[m.BankCode]
	if bc == nil {
		return refuse(kiosk.InvalidBankCard)
	}
	now := time.Now().In(cst)
	ci := platform.CardInit{AppSerial: m.Card.AppSerial, City: m.Card.City, CardType: m.Card.CardType,
		KeyIndex: m.Init.KeyIndex, OldBalance: m.Init.OldBalance, Serial: m.Init.Serial, KeyVersion: m.Init.KeyVersion,
		AlgID: m.Init.AlgID, Random: m.Init.Random, MAC1: m.Init.MAC1, Amount: uint32(m.Amount), TermID: [6]byte(m.PSAM)}
	h, resp, err := r.plat.call(ctx, &platform.CardCheck{Card: ci, BankCode: m.BankCode,
		Kiosk: platform.KioskRef{Terminal: m.Terminal, Trace: m.Trace, Date: now.Format("20060102")}})
	if err != nil {
		return refuse(kiosk.PlatformDown)
	}
	if h.Result != platform.OK {
		return refuse(platformCode(h.Result))
	}
	ref := resp.(*platform.CardCheckResponse).Reference
	d := &bank.Debit{PAN: m.PAN, ProcCode: "000000", Amount: m.Amount, Expiry: m.Expiry, EntryMode: m.EntryMode,
		CardSeq: m.CardSeq, Condition: "00", Track2: m.Track2, Currency: "156", Private: ref}
	if len(m.PINBlock) > 0 {
		blk, err := r.hsm.TranslatePIN(terminal.PIKName(m.Terminal), banklink.ZPKName(m.BankCode), m.PAN, m.PINBlock)
		if err != nil {
			return refuse(kiosk.SystemError)
		}
		d.PINBlock, d.PINCapture, d.SecurityCtl = blk, "12", "2600000000000000"
	}
	if d.EntryMode == "" {
		d.EntryMode = "022"
		if d.PINBlock != nil {
			d.EntryMode = "021"
		}
	}
	dr, err := bc.debit(ctx, d)
	if err != nil {
		// No reversal here: the relay is a baseline, not a switch (package doc).
		r.log.Error("relay: debit without answer", "ref", ref, "err", err)
		return refuse(kiosk.BankTimeout)
	}
	if dr.Code != "00" {
		lr := &kiosk.LoadResponse{Envelope: env, Reply: kiosk.Reply{Result: bankCode(dr.Code)}, Amount: m.Amount, Reference: ref}
		return pack(lr, signer, r.log)
	}
	settle := dr.SettleDate
	if len(settle) == 4 {
		settle = now.Format("2006") + settle
	} else {
		settle = now.Format("20060102")
	}
	h, resp, err = r.plat.call(ctx, &platform.Book{Reference: ref, Amount: uint32(m.Amount), BankRRN: dr.RRN,
		BankAuth: dr.AuthCode, SettleDate: settle})
	if err != nil || h.Result != platform.OK {
		r.log.Error("relay: booking failed", "ref", ref, "err", err, "code", string(h.Result))
		return refuse(kiosk.PlatformDown)
	}
	br := resp.(*platform.BookResponse)
	lr := &kiosk.LoadResponse{Envelope: env, Reply: kiosk.Reply{Result: kiosk.Approved}, Amount: m.Amount,
		Reference: ref, RRN: dr.RRN, AuthCode: dr.AuthCode}
	if br.Issued != nil {
		lr.Credit = &kiosk.Credit{HostTime: kiosk.HostTime(br.Issued.HostTime), MAC2: br.Issued.MAC2}
	}
	if len(lr.AuthCode) != 6 {
		lr.AuthCode = ""
	}
	return pack(lr, signer, r.log)
}

func bankCode(code string) kiosk.Code {
	switch kiosk.Code(code) {
	case kiosk.BankDeclined, kiosk.InvalidAmount, kiosk.InvalidBankCard, kiosk.InsufficientFunds,
		kiosk.CardExpired, kiosk.WrongPIN, kiosk.OverAmountLimit, kiosk.PINTriesExceeded:
		return kiosk.Code(code)
	}
	return kiosk.BankDeclined
}

// ---- platform ----

type hsmMAC struct {
	h    *hsm.Soft
	name string
}

func (k hsmMAC) MAC(data []byte) ([8]byte, error) {
	var out [8]byte
	b, err := k.h.MAC(k.name, hsm.MACX919, data)
	copy(out[:], b)
	return out, err
}

type platResult struct {
	h   platform.Header
	m   platform.Message
	err error
}

type platformClient struct {
	conn    net.Conn
	log     *slog.Logger
	signK   hsmMAC
	dynK    hsmMAC
	wmu     sync.Mutex
	mu      sync.Mutex
	seq     uint32
	batch   uint32
	waiting map[uint32]chan platResult
}

func dialPlatform(ctx context.Context, pc fep.PlatformConfig, h *hsm.Soft, log *slog.Logger) (*platformClient, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", pc.Addr)
	if err != nil {
		return nil, fmt.Errorf("relay: platform: %w", err)
	}
	p := &platformClient{conn: c, log: log, signK: hsmMAC{h, platformlink.SignInMACKeyName(ltkName)},
		dynK: hsmMAC{h, platformlink.DynamicKeyName(ltkName)}, waiting: map[uint32]chan platResult{}}
	go p.read()
	hd, m, err := p.send(ctx, &platform.SignIn{AuthCode: pc.AuthCode}, p.signK)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("relay: platform sign-in: %w", err)
	}
	sr, ok := m.(*platform.SignInResponse)
	if hd.Result != platform.OK || !ok || sr.Key == nil {
		c.Close()
		return nil, fmt.Errorf("relay: platform sign-in refused: %s", hd.Result)
	}
	if _, err := h.Import(platformlink.DynamicKeyName(ltkName), hsm.UsageMAC, ltkName, sr.Key.Block[:], sr.Key.KCV[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("relay: dynamic key: %w", err)
	}
	p.mu.Lock()
	p.batch = hd.Batch
	p.mu.Unlock()
	return p, nil
}

func (p *platformClient) close() { p.conn.Close() }

func (p *platformClient) read() {
	for {
		b, err := frame.Read(p.conn, 0)
		if err != nil {
			p.mu.Lock()
			for s, ch := range p.waiting {
				ch <- platResult{err: err}
				delete(p.waiting, s)
			}
			p.mu.Unlock()
			return
		}
		h, err := platform.PeekHeader(b)
		if err != nil {
			continue
		}
		k := p.dynK
		if h.Type == platform.TypeSignInResp {
			k = p.signK
		}
		h, m, err := platform.Unpack(b, k)
		p.mu.Lock()
		ch := p.waiting[h.Seq]
		delete(p.waiting, h.Seq)
		p.mu.Unlock()
		if ch != nil {
			ch <- platResult{h: h, m: m, err: err}
		}
	}
}

func (p *platformClient) send(ctx context.Context, m platform.Message, k platform.MACer) (platform.Header, platform.Message, error) {
	ch := make(chan platResult, 1)
	p.mu.Lock()
	p.seq++
	h := platform.Header{Seq: p.seq, Batch: p.batch, Time: platform.HostTimeOf(time.Now().In(cst))}
	p.waiting[h.Seq] = ch
	p.mu.Unlock()
	b, err := platform.Pack(h, m, k)
	if err == nil {
		p.wmu.Lock()
		err = frame.Write(p.conn, b)
		p.wmu.Unlock()
	}
	if err != nil {
		p.mu.Lock()
		delete(p.waiting, h.Seq)
		p.mu.Unlock()
		return platform.Header{}, nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.h, r.m, r.err
	case <-t.C:
		p.mu.Lock()
		delete(p.waiting, h.Seq)
		p.mu.Unlock()
		return platform.Header{}, nil, errors.New("platform: no answer")
	case <-ctx.Done():
		return platform.Header{}, nil, ctx.Err()
	}
}

func (p *platformClient) call(ctx context.Context, m platform.Message) (platform.Header, platform.Message, error) {
	return p.send(ctx, m, p.dynK)
}

func (p *platformClient) keepAlive(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, _, err := p.call(ctx, &platform.Heartbeat{}); err != nil && ctx.Err() == nil {
				p.log.Warn("relay: platform heartbeat", "err", err)
			}
		}
	}
}

// ---- bank ----

type bankClient struct {
	conn    net.Conn
	log     *slog.Logger
	d       bank.Dialect
	code    string
	term    bank.Terminal
	h       *hsm.Soft
	wmu     sync.Mutex
	mu      sync.Mutex
	stan    uint32
	batch   uint32
	waiting map[string]chan *bank.Frame
}

func dialBank(ctx context.Context, be fep.BankEntry, merchant string, firstSTAN uint32, h *hsm.Soft, log *slog.Logger) (*bankClient, error) {
	d, err := banklink.DialectByName(be.Dialect)
	if err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: timeout}
	c, err := nd.DialContext(ctx, "tcp", be.Addr)
	if err != nil {
		return nil, fmt.Errorf("relay: bank %s: %w", be.Code, err)
	}
	b := &bankClient{conn: c, log: log, d: d, code: be.Code, term: bank.Terminal{ID: be.Terminal, Merchant: merchant},
		h: h, stan: firstSTAN, waiting: map[string]chan *bank.Frame{}}
	go b.read()
	stan := b.nextSTAN()
	fr, err := b.roundTrip(ctx, &bank.SignOn{STAN: stan, Terminal: b.term, Operator: "001"}, stan, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("relay: bank %s sign-on: %w", be.Code, err)
	}
	so, ok := fr.Msg.(*bank.SignOnResponse)
	if !ok || so.Code != "00" {
		c.Close()
		return nil, fmt.Errorf("relay: bank %s sign-on refused", be.Code)
	}
	zmk := fep.ZMKName(be.Code)
	if _, err := h.Import(banklink.ZPKName(be.Code), hsm.UsagePIN, zmk, so.Keys.PIK, so.Keys.PIKKCV); err != nil {
		return nil, err
	}
	if _, err := h.Import(banklink.MAKName(be.Code), hsm.UsageMAC, zmk, so.Keys.MAK, so.Keys.MAKKCV); err != nil {
		return nil, err
	}
	b.batch = so.Batch
	return b, nil
}

func (b *bankClient) close() { b.conn.Close() }

func (b *bankClient) nextSTAN() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stan = b.stan%999999 + 1
	return b.stan
}

func (b *bankClient) macAlg() hsm.MACAlg {
	switch b.d.MAC {
	case bank.MACX919:
		return hsm.MACX919
	case bank.MACX99:
		return hsm.MACX99
	}
	return hsm.MACCUPS
}

func (b *bankClient) read() {
	for {
		p, err := frame.Read(b.conn, 0)
		if err != nil {
			b.mu.Lock()
			for k, ch := range b.waiting {
				close(ch)
				delete(b.waiting, k)
			}
			b.mu.Unlock()
			return
		}
		fr, err := b.d.Decode(p)
		if err != nil {
			b.log.Warn("relay: bank message not understood", "err", err)
			continue
		}
		key := strings.TrimLeft(fr.Fields.Get(11), "0")
		b.mu.Lock()
		ch := b.waiting[key]
		delete(b.waiting, key)
		b.mu.Unlock()
		if ch != nil {
			ch <- fr
		}
	}
}

func (b *bankClient) roundTrip(ctx context.Context, m bank.Message, stan uint32, mac bank.MACer) (*bank.Frame, error) {
	var p []byte
	var err error
	if mac != nil {
		p, err = b.d.PackMACed(m, mac)
	} else {
		p, err = b.d.Pack(m)
	}
	if err != nil {
		return nil, err
	}
	key := strconv.FormatUint(uint64(stan), 10)
	ch := make(chan *bank.Frame, 1)
	b.mu.Lock()
	b.waiting[key] = ch
	b.mu.Unlock()
	b.wmu.Lock()
	err = frame.Write(b.conn, p)
	b.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case fr, ok := <-ch:
		if !ok {
			return nil, errors.New("bank link closed")
		}
		return fr, nil
	case <-t.C:
		b.mu.Lock()
		delete(b.waiting, key)
		b.mu.Unlock()
		return nil, errors.New("bank: no answer")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *bankClient) debit(ctx context.Context, d *bank.Debit) (*bank.DebitResponse, error) {
	d.STAN = b.nextSTAN()
	d.Terminal = b.term
	d.F60 = bank.F60{Type: "22", Batch: b.batch, Code: "000"}
	alg, name := b.macAlg(), banklink.MAKName(b.code)
	fr, err := b.roundTrip(ctx, d, d.STAN, bank.MACFunc(func(mab []byte) ([]byte, error) { return b.h.MAC(name, alg, mab) }))
	if err != nil {
		return nil, err
	}
	if err := fr.VerifyMAC(verifier{b.h, name, alg}); err != nil {
		return nil, err
	}
	dr, ok := fr.Msg.(*bank.DebitResponse)
	if !ok {
		return nil, fmt.Errorf("bank answered %s to a 0200", fr.Fields.MTI)
	}
	return dr, nil
}

type verifier struct {
	h    *hsm.Soft
	name string
	alg  hsm.MACAlg
}

func (v verifier) VerifyMAC(mab, mac []byte) error { return v.h.VerifyMAC(v.name, v.alg, mab, mac) }

func (b *bankClient) keepAlive(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			stan := b.nextSTAN()
			if _, err := b.roundTrip(ctx, &bank.Echo{NetRequest: bank.NetRequest{STAN: stan, Terminal: b.term, Batch: b.batch}}, stan, nil); err != nil && ctx.Err() == nil {
				b.log.Warn("relay: bank echo", "err", err)
			}
		}
	}
}
