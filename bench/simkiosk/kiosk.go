// Package simkiosk is the simulated load kiosk (圈存机): one Kiosk is one terminal with its
// PSAM, PIN pad and card slot, speaking the kiosk link of docs/protocols/kiosk.md to an FEP
// over TCP and running DESIGN section 4 (the load) and section 5 (the re-write) from the
// kiosk's side, card commands included. The demo and the bench drive it as a library;
// `quancun sim kiosk` runs it as its own process (docs/sim-kiosk.md).
//
// It is a faithful peer, not a fake: every request is MACed by the PSAM through APDUs, PINs
// are encrypted by the PIN pad under the PIK the FEP delivered, and response MACs and KCVs
// are checked. It never decides a load's outcome itself: an uncertain credit is reported as
// write status U and left to the FEP and platform (spec section 4). It never logs a PIN, a
// key or a full PAN.
package simkiosk

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
)

// Key names inside the kiosk's PIN pad.
const (
	keyTMK = "tmk"
	keyPIK = "pik"
	keyMAK = "mak"
)

// Defaults of Config.
const (
	// DefaultMACKeyUsage and DefaultMACKeyIndex address the PSAM MAC master key in 801A; they
	// are agreed when the PSAM is issued (kiosk.md 6.1) and are those of the demo PSAM file.
	DefaultMACKeyUsage byte = 0x27
	DefaultMACKeyIndex byte = 0x01
	// DefaultLoadKeyIndex is the DLK index sent in INITIALIZE FOR LOAD (spec 2.1).
	DefaultLoadKeyIndex byte = 0x01
	// DefaultHeartbeat is the idle time after which the kiosk sends a HEARTBEAT (kiosk.md 4).
	DefaultHeartbeat = 60 * time.Second
	// DefaultConfirmTries is how often the same CONFIRM bytes are sent before the confirm is
	// kept for after the next sign-in (kiosk.md 9).
	DefaultConfirmTries = 5
)

// TPDU network addresses of the kiosk link (kiosk.md 2), assigned at installation.
const (
	DefaultFEPNII   uint16 = 0x0001
	DefaultKioskNII uint16 = 0x0123
)

var (
	// ErrConfig reports a Config the kiosk cannot run with.
	ErrConfig = errors.New("simkiosk: bad config")
	// ErrNotConnected reports a request while the kiosk has no link (Dial first).
	ErrNotConnected = errors.New("simkiosk: not connected")
	// ErrNoResponse reports a request whose response did not arrive (or whose MAC failed,
	// which kiosk.md 6.3 says to treat the same) within its timeout.
	ErrNoResponse = errors.New("simkiosk: no response")
	// ErrSignIn reports a refused sign-in or working keys that failed their checks; the
	// kiosk keeps no key from it.
	ErrSignIn = errors.New("simkiosk: sign-in failed")
)

// Timeouts are the kiosk's waits of kiosk.md section 9. Zero fields take the defaults.
type Timeouts struct {
	Connect   time.Duration // 10s
	SignIn    time.Duration // 15s
	Heartbeat time.Duration // 10s
	Pending   time.Duration // 15s
	Load      time.Duration // 75s
	Rewrite   time.Duration // 30s
	Resolve   time.Duration // 30s
	Confirm   time.Duration // 15s
	Credit    time.Duration // 5s: CREDIT FOR LOAD on the card
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 10*time.Second)
	def(&t.SignIn, 15*time.Second)
	def(&t.Heartbeat, 10*time.Second)
	def(&t.Pending, 15*time.Second)
	def(&t.Load, 75*time.Second)
	def(&t.Rewrite, 30*time.Second)
	def(&t.Resolve, 30*time.Second)
	def(&t.Confirm, 15*time.Second)
	def(&t.Credit, 5*time.Second)
	return t
}

// Config describes one kiosk.
type Config struct {
	Terminal string      // F41, exactly 8 characters, registered at the FEP with the PSAM number
	TMK      []byte      // terminal master key, 16 bytes, shared with the FEP; only carries PIK/MAK
	PSAM     card.Reader // the PSAM slot: card.NewInProcessReader(vcard PSAM) or a PC/SC reader

	MACKeyUsage  byte // 801A P1 of the request-MAC master; 0 = DefaultMACKeyUsage
	MACKeyIndex  byte // 801A P2; 0 = DefaultMACKeyIndex
	LoadKeyIndex byte // DLK index for INITIALIZE FOR LOAD; 0 = DefaultLoadKeyIndex

	FEPNII, KioskNII uint16        // TPDU addresses; 0 = defaults
	Heartbeat        time.Duration // idle time before a HEARTBEAT; 0 = DefaultHeartbeat, <0 = never
	ConfirmTries     int           // 0 = DefaultConfirmTries
	Timeouts         Timeouts
	Clock            func() time.Time // the kiosk's clock (F12/F13); nil = time.Now
	Logger           *slog.Logger     // nil = slog.Default()
}

// Kiosk is one simulated terminal. Its methods are safe for concurrent use; loads run one at
// a time (a kiosk has one card slot), while the heartbeat runs in the background between
// the load's messages. Many Kiosks run concurrently, each on its own connection.
type Kiosk struct {
	cfg  Config
	to   Timeouts
	log  *slog.Logger
	psam *card.PSAM
	no   kiosk.PSAMNo

	loadMu sync.Mutex // one load at a time

	mu         sync.Mutex // guards everything below; held for one request/response
	addr       string
	conn       net.Conn
	pad        *hsm.Soft // PIN pad after a good sign-in; nil before
	batch      uint32
	trace      int
	mustSignIn bool
	lastSent   time.Time
	misses     int      // heartbeats without answer in a row
	outbox     [][]byte // CONFIRMs that got no answer, re-sent after the next sign-in
	hbStop     context.CancelFunc
	hbDone     chan struct{}
}

// New reads the PSAM number from the PSAM (file 0016) and returns a kiosk that is not yet
// connected.
func New(ctx context.Context, cfg Config) (*Kiosk, error) {
	if len(cfg.Terminal) != 8 {
		return nil, fmt.Errorf("%w: terminal id %q must be 8 characters", ErrConfig, cfg.Terminal)
	}
	if len(cfg.TMK) != 16 {
		return nil, fmt.Errorf("%w: TMK must be 16 bytes, got %d", ErrConfig, len(cfg.TMK))
	}
	if cfg.PSAM == nil {
		return nil, fmt.Errorf("%w: no PSAM reader", ErrConfig)
	}
	if cfg.MACKeyUsage == 0 {
		cfg.MACKeyUsage = DefaultMACKeyUsage
	}
	if cfg.MACKeyIndex == 0 {
		cfg.MACKeyIndex = DefaultMACKeyIndex
	}
	if cfg.LoadKeyIndex == 0 {
		cfg.LoadKeyIndex = DefaultLoadKeyIndex
	}
	if cfg.FEPNII == 0 {
		cfg.FEPNII = DefaultFEPNII
	}
	if cfg.KioskNII == 0 {
		cfg.KioskNII = DefaultKioskNII
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.ConfirmTries <= 0 {
		cfg.ConfirmTries = DefaultConfirmTries
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.TMK = append([]byte(nil), cfg.TMK...)
	k := &Kiosk{cfg: cfg, to: cfg.Timeouts.withDefaults(), psam: card.NewPSAM(cfg.PSAM)}
	k.log = cfg.Logger.With("terminal", cfg.Terminal)
	id, err := k.psam.ReadTerminalID(ctx)
	if err != nil {
		return nil, fmt.Errorf("simkiosk: read PSAM number: %w", err)
	}
	k.no = kiosk.PSAMNo(id)
	k.log = k.log.With("psam", k.no.String())
	return k, nil
}

// Terminal is the kiosk's terminal id (F41).
func (k *Kiosk) Terminal() string { return k.cfg.Terminal }

// PSAMNo is the PSAM's terminal number: F42 and the terminal id in the card's MACs.
func (k *Kiosk) PSAMNo() kiosk.PSAMNo { return k.no }

// Batch is the batch number of the last sign-in (0 before the first).
func (k *Kiosk) Batch() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.batch
}

// Dial connects to the FEP at addr. It does not sign in; call SignIn. A kiosk that loses the
// link redials addr and signs in again before its next load.
func (k *Kiosk) Dial(ctx context.Context, addr string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.addr = addr
	return k.dialLocked(ctx)
}

func (k *Kiosk) dialLocked(ctx context.Context) error {
	if k.conn != nil {
		k.conn.Close()
		k.conn = nil
	}
	if k.addr == "" {
		return ErrNotConnected
	}
	d := net.Dialer{Timeout: k.to.Connect}
	c, err := d.DialContext(ctx, "tcp", k.addr)
	if err != nil {
		return fmt.Errorf("simkiosk: connect %s: %w", k.addr, err)
	}
	k.conn = c
	k.mustSignIn = true
	k.log.Info("kiosk connected", "fep", k.addr)
	return nil
}

// Close stops the heartbeat and closes the link. The kiosk's readers stay open: the caller
// owns them.
func (k *Kiosk) Close() error {
	k.mu.Lock()
	stop, done := k.hbStop, k.hbDone
	k.hbStop, k.hbDone = nil, nil
	k.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn == nil {
		return nil
	}
	err := k.conn.Close()
	k.conn = nil
	return err
}

// SignIn sends SIGN-IN (0800/003) and installs the working keys of the answer: PIK and MAK
// are unwrapped under the TMK inside a fresh PIN pad, each checked against its KCV, and the
// response MAC is verified with the new MAK. Any failure discards the new keys and returns an
// error wrapping ErrSignIn (and hsm.ErrKCVMismatch for a bad KCV). A good sign-in starts the
// background heartbeat.
func (k *Kiosk) SignIn(ctx context.Context) error {
	k.mu.Lock()
	err := k.signInLocked(ctx)
	k.mu.Unlock()
	if err == nil {
		k.startHeartbeat()
	}
	return err
}

func (k *Kiosk) signInLocked(ctx context.Context) error {
	if k.conn == nil {
		if err := k.dialLocked(ctx); err != nil {
			return err
		}
	}
	req := &kiosk.SignIn{Envelope: k.envelopeLocked()}
	raw, err := k.exchangeLocked(ctx, req, req.Envelope, k.to.SignIn, func(b []byte) (kiosk.Response, error) {
		var m kiosk.SignInResponse
		if err := m.Unpack(b); err != nil {
			return nil, err
		}
		return &m, nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSignIn, err)
	}
	resp := raw.resp.(*kiosk.SignInResponse)
	if resp.Result != kiosk.Approved {
		return fmt.Errorf("%w: FEP answered %s (%s)", ErrSignIn, resp.Result, describeCode(resp.Result))
	}
	pad, err := k.newPad(resp.Keys)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSignIn, err)
	}
	if err := kiosk.VerifyResponse(raw.bytes, padMACer{pad}); err != nil {
		return fmt.Errorf("%w: response MAC under the new MAK: %w", ErrSignIn, err)
	}
	k.pad, k.batch, k.mustSignIn, k.misses = pad, resp.Batch, false, 0
	pik, _ := pad.Info(keyPIK)
	mak, _ := pad.Info(keyMAK)
	k.log.Info("kiosk signed in", "batch", resp.Batch, "pik_kcv", pik.KCV, "mak_kcv", mak.KCV)
	return nil
}

// newPad builds a PIN pad holding the TMK and the PIK and MAK of keys, KCV-checked.
func (k *Kiosk) newPad(keys *kiosk.WorkingKeys) (*hsm.Soft, error) {
	if keys == nil {
		return nil, errors.New("approved sign-in without keys")
	}
	master := make([]byte, 16)
	if _, err := rand.Read(master); err != nil {
		return nil, fmt.Errorf("PIN pad master key: %w", err)
	}
	pad, err := hsm.NewSoft(master, k.log)
	clear(master)
	if err != nil {
		return nil, err
	}
	if _, err := pad.ImportClear(keyTMK, hsm.UsageKEK, k.cfg.TMK); err != nil {
		return nil, fmt.Errorf("TMK: %w", err)
	}
	if _, err := pad.Import(keyPIK, hsm.UsagePIN, keyTMK, keys.PIK[:], keys.PIKKCV[:]); err != nil {
		return nil, fmt.Errorf("PIK: %w", err)
	}
	if _, err := pad.Import(keyMAK, hsm.UsageMAC, keyTMK, keys.MAK[:], keys.MAKKCV[:]); err != nil {
		return nil, fmt.Errorf("MAK: %w", err)
	}
	return pad, nil
}

// envelopeLocked fills the fields every request carries and takes the next trace number
// (000001..999999, wrapping to 000001).
func (k *Kiosk) envelopeLocked() kiosk.Envelope {
	k.trace = k.trace%999999 + 1
	now := k.cfg.Clock()
	return kiosk.Envelope{
		Header:   kiosk.Header{Dest: k.cfg.FEPNII, Src: k.cfg.KioskNII},
		Trace:    fmt.Sprintf("%06d", k.trace),
		Date:     now.Format("20060102"),
		Time:     now.Format("150405"),
		Terminal: k.cfg.Terminal,
		PSAM:     k.no,
		Batch:    k.batch,
	}
}

// exchanged is a response with the bytes it came in.
type exchanged struct {
	resp  kiosk.Response
	bytes []byte
}

// call builds a request with the next envelope, sends it PSAM-MACed and waits for its
// verified response. Building under the lock keeps trace numbers in the order they are sent.
func (k *Kiosk) call(ctx context.Context, timeout time.Duration, build func(kiosk.Envelope) kiosk.Request) (kiosk.Response, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn == nil || k.pad == nil {
		return nil, fmt.Errorf("%w: not signed in", ErrNotConnected)
	}
	env := k.envelopeLocked()
	x, err := k.exchangeLocked(ctx, build(env), env, timeout, k.readVerified)
	if err != nil {
		return nil, err
	}
	return x.resp, nil
}

func (k *Kiosk) readVerified(b []byte) (kiosk.Response, error) {
	return kiosk.ReadResponse(b, padMACer{k.pad})
}

// exchangeLocked sends one request and reads until its response arrives: matched by kind,
// F11 and F41; anything else (a late answer to an earlier request) is dropped, and so is a
// response whose MAC fails (kiosk.md 6.3: as if it never came).
func (k *Kiosk) exchangeLocked(ctx context.Context, req kiosk.Request, env kiosk.Envelope, timeout time.Duration,
	read func([]byte) (kiosk.Response, error)) (exchanged, error) {
	b, err := req.Pack(psamMACer{ctx: ctx, k: k})
	if err != nil {
		return exchanged{}, fmt.Errorf("simkiosk: %s: %w", req.Kind(), err)
	}
	return k.sendLocked(ctx, req.Kind(), env, b, timeout, read)
}

// sendLocked sends already packed bytes (a CONFIRM is re-sent byte for byte).
func (k *Kiosk) sendLocked(ctx context.Context, kind kiosk.Kind, env kiosk.Envelope, b []byte, timeout time.Duration,
	read func([]byte) (kiosk.Response, error)) (exchanged, error) {
	if k.conn == nil {
		return exchanged{}, ErrNotConnected
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := k.conn.SetDeadline(deadline); err != nil {
		return exchanged{}, k.linkDownLocked(err)
	}
	if err := frame.Write(k.conn, b); err != nil {
		return exchanged{}, k.linkDownLocked(fmt.Errorf("send %s: %w", kind, err))
	}
	k.lastSent = time.Now()
	for {
		in, err := frame.Read(k.conn, 4096)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return exchanged{}, fmt.Errorf("%w: %s trace %s within %v", ErrNoResponse, kind, env.Trace, timeout)
			}
			return exchanged{}, k.linkDownLocked(fmt.Errorf("read %s response: %w", kind, err))
		}
		got, err := kiosk.Identify(in)
		if err != nil || got != kind+1 {
			k.log.Warn("kiosk dropped a message", "want", (kind + 1).String(), "got", got.String(), "err", err)
			continue
		}
		resp, err := read(in)
		if resp == nil {
			k.log.Warn("kiosk dropped an unreadable response", "kind", got.String(), "err", err)
			continue
		}
		re := envelopeOf(resp)
		if re == nil || re.Trace != env.Trace || re.Terminal != env.Terminal {
			k.log.Warn("kiosk dropped a response for another request", "kind", got.String(), "trace", env.Trace)
			continue
		}
		if err != nil {
			k.log.Warn("kiosk dropped a response whose MAC failed", "kind", got.String(), "trace", env.Trace, "err", err)
			continue
		}
		if re.Header.Require == 3 {
			k.mustSignIn = true
		}
		if c := replyOf(resp); c == kiosk.MACError || c == kiosk.SignInAgain {
			k.mustSignIn = true
		}
		return exchanged{resp: resp, bytes: in}, nil
	}
}

// linkDownLocked closes a broken link; the next load redials and signs in (kiosk.md 1).
func (k *Kiosk) linkDownLocked(err error) error {
	if k.conn != nil {
		k.conn.Close()
		k.conn = nil
	}
	k.mustSignIn = true
	k.log.Warn("kiosk link down", "err", err)
	return fmt.Errorf("%w: %w", ErrNotConnected, err)
}

// ensureReady reconnects and signs in when the link or the FEP asked for it, then sends the
// CONFIRMs still waiting for an answer: they go before any new load (kiosk.md 9).
func (k *Kiosk) ensureReady(ctx context.Context) error {
	k.mu.Lock()
	need := k.conn == nil || k.mustSignIn || k.pad == nil
	var err error
	if need {
		if k.conn == nil {
			err = k.dialLocked(ctx)
		}
		if err == nil {
			err = k.signInLocked(ctx)
		}
	}
	k.mu.Unlock()
	if err != nil {
		return err
	}
	if need {
		k.startHeartbeat()
	}
	return k.flushOutbox(ctx)
}

func (k *Kiosk) flushOutbox(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for len(k.outbox) > 0 {
		b := k.outbox[0]
		var c kiosk.Confirm
		if err := c.Unpack(b); err != nil {
			k.outbox = k.outbox[1:]
			continue
		}
		x, err := k.sendLocked(ctx, kiosk.KindConfirm, c.Envelope, b, k.to.Confirm, k.readVerified)
		if err != nil {
			return fmt.Errorf("simkiosk: re-send CONFIRM of %s: %w", c.Reference, err)
		}
		k.log.Info("kiosk re-sent a kept CONFIRM", "ref", c.Reference, "status", string(rune(c.Write.Status)),
			"code", string(replyOf(x.resp)))
		k.outbox = k.outbox[1:]
	}
	return nil
}

// startHeartbeat runs the background heartbeat once per kiosk.
func (k *Kiosk) startHeartbeat() {
	if k.cfg.Heartbeat < 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hbStop != nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	k.hbStop, k.hbDone = stop, make(chan struct{})
	go k.heartbeat(ctx, k.hbDone)
}

// heartbeat sends HEARTBEAT after every Heartbeat of idleness; three misses in a row close
// the link, so the next load reconnects and signs in (kiosk.md 9).
func (k *Kiosk) heartbeat(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := min(k.cfg.Heartbeat/4+time.Millisecond, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.mu.Lock()
		if k.conn != nil && k.pad != nil && time.Since(k.lastSent) >= k.cfg.Heartbeat {
			req := &kiosk.Heartbeat{Envelope: k.envelopeLocked()}
			x, err := k.exchangeLocked(ctx, req, req.Envelope, k.to.Heartbeat, k.readVerified)
			switch {
			case err != nil:
				k.misses++
				k.log.Warn("kiosk heartbeat missed", "misses", k.misses, "err", err)
				if k.misses >= 3 && k.conn != nil {
					k.linkDownLocked(errors.New("3 heartbeats missed"))
				}
			default:
				k.misses = 0
				if c := replyOf(x.resp); c != kiosk.Approved {
					k.mustSignIn = true
					k.log.Warn("kiosk heartbeat refused", "code", string(c))
				}
			}
		}
		k.mu.Unlock()
	}
}

// psamMACer computes request MACs with the PSAM: 801A with the factor 00 00 || PSAM number,
// then 80FA over the MAB (kiosk.md 6.2). It runs under k.mu, which serialises the PSAM.
type psamMACer struct {
	ctx context.Context
	k   *Kiosk
}

func (p psamMACer) RequestMAC(no kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	if err := p.k.psam.InitDES(p.ctx, p.k.cfg.MACKeyUsage, p.k.cfg.MACKeyIndex, no.Factor()); err != nil {
		return [4]byte{}, fmt.Errorf("PSAM 801A: %w", err)
	}
	mac, err := p.k.psam.MAC(p.ctx, mab, nil)
	if err != nil {
		return [4]byte{}, fmt.Errorf("PSAM 80FA: %w", err)
	}
	return mac, nil
}

// padMACer checks response MACs (X9.19 under the MAK) inside the PIN pad.
type padMACer struct{ pad *hsm.Soft }

func (p padMACer) ResponseMAC(_ string, mab []byte) ([8]byte, error) {
	var out [8]byte
	if p.pad == nil {
		return out, errors.New("no MAK: not signed in")
	}
	m, err := p.pad.MAC(keyMAK, hsm.MACX919, mab)
	copy(out[:], m)
	return out, err
}

// envelopeOf and replyOf reach the common parts of a typed response.
func envelopeOf(r kiosk.Response) *kiosk.Envelope {
	return kiosk.EnvelopeOf(r)
}

func replyOf(r kiosk.Response) kiosk.Code {
	switch m := r.(type) {
	case *kiosk.SignInResponse:
		return m.Result
	case *kiosk.SignOutResponse:
		return m.Result
	case *kiosk.HeartbeatResponse:
		return m.Result
	case *kiosk.LoadResponse:
		return m.Result
	case *kiosk.ConfirmResponse:
		return m.Result
	case *kiosk.PendingResponse:
		return m.Result
	case *kiosk.RewriteResponse:
		return m.Result
	case *kiosk.ResolveResponse:
		return m.Result
	}
	return ""
}

// describeCode is the English screen text of c, or that of 96 for a code the kiosk does not
// know (kiosk.md 7).
func describeCode(c kiosk.Code) string {
	if i, ok := c.Info(); ok {
		return i.English
	}
	i, _ := kiosk.SystemError.Info()
	return i.English
}
