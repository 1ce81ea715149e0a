package simbank

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
)

// zmkName is the ZMK's name in the bank's security module.
const zmkName = "zmk"

// Option changes how New builds a server.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithClock replaces time.Now, for tests that need a given date.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Server is the bank host: it listens, answers the FEP's messages and keeps its books in the
// journal. Each connection has one reading goroutine that decides every request in arrival
// order; answers are written one at a time per connection (delayed ones from their own
// goroutine). All money decisions go through one lock, so the books are serial.
type Server struct {
	cfg     Config
	dialect bank.Dialect
	rule    settleRule
	hsm     *hsm.Soft
	log     *slog.Logger
	now     func() time.Time
	ln      net.Listener
	pins    map[string]string // PAN -> PIN, from the config only
	noReply map[string]bool   // faults.timeout_pans

	mu       sync.Mutex // everything below
	led      *Ledger
	j        *journal
	rng      *mrand.Rand
	sessions map[string]*session // by the terminal id of the sign-on
	latest   *session
	batch    uint32

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed sync.Once
}

// session is one sign-on's working keys: names in the bank's security module.
type session struct {
	pik, mak string
	batch    uint32
}

// New opens (or creates) the data dir, replays the journal, opens the configured accounts
// the journal does not know yet, and binds the listen address (Addr tells the port when it
// was 0). Run serves.
func New(cfg Config, opts ...Option) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, _ := DialectByName(cfg.Dialect)
	if d.Keys.KeyLen != 16 || d.Keys.TDK {
		return nil, fmt.Errorf("%w: dialect %s: only double-length PIK+MAK key blocks are simulated", ErrConfig, d.Name)
	}
	rule, _ := parseSettleRule(cfg.SettleDate)
	s := &Server{cfg: cfg, dialect: d, rule: rule, log: slog.New(slog.DiscardHandler), now: time.Now,
		pins: map[string]string{}, noReply: map[string]bool{}, sessions: map[string]*session{},
		conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("bank", cfg.BankCode)
	seed := uint64(cfg.Faults.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s.rng = mrand.New(mrand.NewPCG(seed, seed>>1|1))
	for _, a := range cfg.Accounts {
		s.pins[a.PAN] = a.PIN
	}
	for _, p := range cfg.Faults.TimeoutPANs {
		s.noReply[p] = true
	}

	// The bank's own security module: a random master (nothing is kept across restarts but
	// the ZMK from the config, so a restarted bank asks the FEP to sign on again).
	master := make([]byte, 16)
	if _, err := rand.Read(master); err != nil {
		return nil, fmt.Errorf("simbank: master key: %w", err)
	}
	master[8] ^= 0x01 // halves differ even in the impossible case
	var err error
	if s.hsm, err = hsm.NewSoft(master, s.log); err != nil {
		return nil, err
	}
	clear(master)
	zmk, _ := cfg.zmk()
	info, err := s.hsm.ImportClear(zmkName, hsm.UsageKEK, zmk)
	clear(zmk)
	if err != nil {
		return nil, fmt.Errorf("simbank: zmk: %w", err)
	}

	if s.j, s.led, err = openJournal(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := s.openAccounts(); err != nil {
		s.j.close()
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		s.j.close()
		return nil, fmt.Errorf("simbank: listen: %w", err)
	}
	t := s.led.Totals()
	s.log.Info("bank: ready", "addr", s.ln.Addr().String(), "dialect", d.Name, "zmk_kcv", info.KCV,
		"accounts", len(s.led.Accounts), "journal_records", s.led.Seq, "approved", t.Approved, "net_fen", t.Net)
	return s, nil
}

// openAccounts journals the bank header and every configured account the journal lacks, and
// status changes of the ones it has.
func (s *Server) openAccounts() error {
	at := s.now()
	if s.led.BankCode == "" {
		if err := s.j.append(s.led, &record{Type: "bank", At: at, BankCode: s.cfg.BankCode}); err != nil {
			return err
		}
	} else if s.led.BankCode != s.cfg.BankCode {
		return fmt.Errorf("%w: data_dir %s holds the books of bank %q, not %q", ErrConfig, s.cfg.DataDir, s.led.BankCode, s.cfg.BankCode)
	}
	for _, a := range s.cfg.Accounts {
		rec := &accountRecord{PAN: a.PAN, Blocked: a.Blocked, BlockCode: a.BlockCode}
		acc := s.led.Accounts[a.PAN]
		switch {
		case acc == nil:
			rec.Balance = a.Balance
			if err := s.j.append(s.led, &record{Type: "open", At: at, Account: rec}); err != nil {
				return err
			}
		case acc.Blocked != a.Blocked || acc.BlockCode != a.BlockCode:
			if err := s.j.append(s.led, &record{Type: "status", At: at, Account: rec}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Addr is the bound listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Balance is an account's current balance (false for an unknown PAN).
func (s *Server) Balance(pan string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.led.Balance(pan)
}

// Totals is the bank's side of the money check, from memory (LoadLedger gives the same from
// disk).
func (s *Server) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.led.Totals()
}

// Run serves until ctx ends, then closes every connection and the journal. It returns nil
// after a cancel, or the accept error that stopped it.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		s.ln.Close()
		s.connMu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.connMu.Unlock()
		close(stopped)
	}()
	var err error
	for {
		c, aerr := s.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("simbank: accept: %w", aerr)
			}
			break
		}
		s.connMu.Lock()
		s.conns[c] = struct{}{}
		s.connMu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c)
			s.connMu.Lock()
			delete(s.conns, c)
			s.connMu.Unlock()
		}()
	}
	cancel()
	<-stopped
	s.wg.Wait()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close releases the listener and the journal; Run calls it on the way out, so it is only
// needed for a server that never ran.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		err = s.j.close()
		s.mu.Unlock()
	})
	return err
}

// conn is one FEP connection: writes are serialised, and the last sign-on made on it is the
// fallback key session for terminal ids that never signed on themselves.
type conn struct {
	c    net.Conn
	wmu  sync.Mutex
	last *session
	log  *slog.Logger
}

// out is one answer to send: the payload and how long to hold it back.
type out struct {
	payload []byte
	delay   time.Duration
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	c := &conn{c: nc, log: s.log.With("peer", nc.RemoteAddr().String())}
	c.log.Info("bank: connection open")
	defer func() {
		nc.Close()
		c.log.Info("bank: connection closed")
	}()
	var delayed sync.WaitGroup
	defer delayed.Wait()
	for {
		payload, err := frame.Read(nc, 0)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				c.log.Warn("bank: read", "err", err)
			}
			return
		}
		for _, o := range s.handle(c, payload) {
			if o.delay <= 0 {
				c.write(o.payload)
				continue
			}
			delayed.Add(1)
			go func() {
				defer delayed.Done()
				t := time.NewTimer(o.delay)
				defer t.Stop()
				select {
				case <-t.C:
					c.write(o.payload)
				case <-ctx.Done():
				}
			}()
		}
	}
}

func (c *conn) write(p []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := frame.Write(c.c, p); err != nil {
		c.log.Warn("bank: write", "err", err)
	}
}

// handle decides one request and returns its answers (none, one, or a duplicate).
func (s *Server) handle(c *conn, payload []byte) []out {
	fr, err := s.dialect.Decode(payload)
	if err != nil {
		c.log.Warn("bank: undecodable message dropped", "err", err, "bytes", len(payload))
		return nil
	}
	switch m := fr.Msg.(type) {
	case *bank.SignOn:
		return s.signOn(c, m)
	case *bank.Echo:
		r := &bank.EchoResponse{NetResponse: s.netResponse(m.NetRequest)}
		return s.plain(c, r, "echo", m.Terminal.ID)
	case *bank.SignOff:
		r := &bank.SignOffResponse{NetResponse: s.netResponse(m.NetRequest)}
		return s.plain(c, r, "sign-off", m.Terminal.ID)
	case *bank.Debit:
		return s.debit(c, fr, m)
	case *bank.Reversal:
		return s.reversal(c, fr, m)
	default:
		c.log.Warn("bank: not a request, dropped", "mti", fr.Fields.MTI)
		return nil
	}
}

func (s *Server) netResponse(r bank.NetRequest) bank.NetResponse {
	now := s.now()
	return bank.NetResponse{STAN: r.STAN, LocalTime: now.Format("150405"), LocalDate: now.Format("0102"),
		Code: "00", Terminal: r.Terminal, Batch: r.Batch}
}

// plain packs an unMACed answer with the configured latency.
func (s *Server) plain(c *conn, m bank.Message, what, terminal string) []out {
	p, err := s.dialect.Pack(m)
	if err != nil {
		c.log.Error("bank: pack", "what", what, "err", err)
		return nil
	}
	c.log.Info("bank: "+what, "terminal", terminal, "code", "00")
	return []out{{payload: p, delay: s.latency()}}
}

// signOn issues a fresh PIK and MAK for the terminal, wrapped under the ZMK with their KCVs.
func (s *Server) signOn(c *conn, m *bank.SignOn) []out {
	now := s.now()
	name := hex.EncodeToString([]byte(trimSpace(m.Terminal.ID)))
	if name == "" {
		name = "none"
	}
	sess := &session{pik: "pik." + name, mak: "mak." + name}
	resp := &bank.SignOnResponse{STAN: m.STAN, LocalTime: now.Format("150405"), LocalDate: now.Format("0102"),
		AcquirerID: s.cfg.AcquirerID, Terminal: m.Terminal, Code: "00"}
	keys, err := s.issueKeys(sess)
	s.mu.Lock()
	s.batch = s.batch%999999 + 1
	sess.batch = s.batch
	resp.Batch = s.batch
	resp.RRN = fmt.Sprintf("%012d", s.led.Seq)
	if err == nil {
		s.sessions[trimSpace(m.Terminal.ID)] = sess
		s.latest = sess
		c.last = sess
	}
	s.mu.Unlock()
	if err != nil {
		c.log.Error("bank: sign-on: key generation", "err", err)
		resp.Code = "96"
	} else {
		resp.Keys = keys
	}
	p, err := s.dialect.Pack(resp)
	if err != nil {
		c.log.Error("bank: pack 0810", "err", err)
		return nil
	}
	c.log.Info("bank: sign-on", "terminal", m.Terminal.ID, "batch", resp.Batch, "keys", keys, "code", resp.Code)
	return []out{{payload: p, delay: s.latency()}}
}

func (s *Server) issueKeys(sess *session) (bank.WorkingKeys, error) {
	var k bank.WorkingKeys
	n := s.dialect.Keys.KCVLen
	for _, x := range []struct {
		name       string
		usage      hsm.Usage
		key, check *[]byte
	}{{sess.pik, hsm.UsagePIN, &k.PIK, &k.PIKKCV}, {sess.mak, hsm.UsageMAC, &k.MAK, &k.MAKKCV}} {
		if _, err := s.hsm.Generate(x.name, x.usage); err != nil {
			return k, err
		}
		w, kcv, err := s.hsm.Export(x.name, zmkName)
		if err != nil {
			return k, err
		}
		*x.key, *x.check = w, kcv[:n]
	}
	return k, nil
}

// sessionFor picks the keys for a MACed request: the terminal's own sign-on, else the last
// sign-on on this connection, else the bank's latest (an FEP that signs on once and sends
// each kiosk's id in F41). nil means nobody signed on: answer 97.
func (s *Server) sessionFor(c *conn, terminal string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.sessions[trimSpace(terminal)]; x != nil {
		return x
	}
	if c.last != nil {
		return c.last
	}
	return s.latest
}

// macer MACs under the session's MAK with the dialect's algorithm; a nil session gives an
// all-zero F64 (we have no key to MAC a 97 with, and the FEP will distrust it anyway).
func (s *Server) macer(sess *session) bank.MACer {
	return bank.MACFunc(func(mab []byte) ([]byte, error) {
		if sess == nil {
			return make([]byte, 8), nil
		}
		return s.hsm.MAC(sess.mak, hsmAlg(s.dialect.MAC), mab)
	})
}

func hsmAlg(a bank.MACAlg) hsm.MACAlg {
	switch a {
	case bank.MACX919:
		return hsm.MACX919
	case bank.MACX99:
		return hsm.MACX99
	}
	return hsm.MACCUPS
}

// latency is the fixed latency plus jitter.
func (s *Server) latency() time.Duration {
	d := s.cfg.Faults.Latency
	if j := s.cfg.Faults.Jitter; j > 0 {
		s.mu.Lock()
		d += time.Duration(s.rng.Int64N(int64(j)))
		s.mu.Unlock()
	}
	return d
}

// chance draws one fault decision; the caller holds s.mu.
func (s *Server) chance(rate float64) bool { return rate > 0 && s.rng.Float64() < rate }

func trimSpace(id string) string {
	for len(id) > 0 && id[len(id)-1] == ' ' {
		id = id[:len(id)-1]
	}
	return id
}
