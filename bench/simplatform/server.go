package simplatform

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quancun/quancun/io/crypt"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/platform"
)

// Key names inside the platform's security module.
const (
	keyMDLK = "MDLK"
	keyMTK  = "MTK"
)

// chinaTime is the zone of every date and time on the link (platform.md 2).
var chinaTime = time.FixedZone("CST", 8*3600)

// Option adjusts a Server; for tests.
type Option func(*Server)

// WithClock replaces time.Now, so tests can age references or skew the sign-in clock.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// session is the open batch. Its dynamic key lives only in memory: after a restart the FEP
// gets A4 and signs in again, which is what the link defines for a lost session.
type session struct {
	batch uint32
	mac   platform.SoftMAC
}

// Server is the one-card platform peer: the FEP link over TCP, the journal on disk and the
// FTP server for reconciliation files. Every state change is in the journal, fsynced, before
// its answer leaves.
type Server struct {
	cfg     Config
	log     *slog.Logger
	hsm     *hsm.Soft
	ltk     []byte
	signKey platform.SoftMAC
	factor  []byte // group factor, nil for one-level diversification
	blocked map[string]bool
	now     func() time.Time
	started time.Time

	ln    net.Listener
	ftpLn net.Listener

	mu       sync.Mutex // guards everything below; held across the fsync, so answers follow the journal's order
	j        *Journal
	jf       *os.File
	sess     *session
	broken   error // a journal write failed: fail-stop, every answer is 96
	outMode  string
	outFrom  time.Time
	outUntil time.Time // zero: no end

	// Group commit: commit writes and applies under mu; the answer waits (outside mu) until
	// an fsync covers everything written so far (waitDurable). Concurrent requests share
	// one fsync, so answers still never report a state the disk does not hold.
	written atomic.Uint64
	smu     sync.Mutex
	scond   *sync.Cond
	synced  uint64
	syncing bool
	syncErr error
}

// New opens the data dir, replays the journal and prepares the keys. It does not listen.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger, now: time.Now, blocked: cfg.blockedSet()}
	for _, o := range opts {
		o(s)
	}
	if err := s.initKeys(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, cfg.FTP.UploadDir), 0o750); err != nil {
		return nil, fmt.Errorf("simplatform: data dir: %w", err)
	}
	if err := s.openJournal(); err != nil {
		return nil, err
	}
	s.started = s.now()
	if cfg.Outage.Mode != OutageNone {
		s.outMode, s.outFrom = cfg.Outage.Mode, s.started.Add(cfg.Outage.After)
		if cfg.Outage.For > 0 {
			s.outUntil = s.outFrom.Add(cfg.Outage.For)
		}
	}
	return s, nil
}

func (s *Server) initKeys() error {
	master := make([]byte, 16)
	for {
		if _, err := rand.Read(master); err != nil {
			return fmt.Errorf("simplatform: random: %w", err)
		}
		if !crypt.Equal(master[:8], master[8:]) {
			break
		}
	}
	m, err := hsm.NewSoft(master, s.log)
	clear(master)
	if err != nil {
		return err
	}
	for name, hexKey := range map[string]string{keyMDLK: s.cfg.MDLK, keyMTK: s.cfg.MTK} {
		k := mustHex(hexKey)
		_, err := m.ImportClear(name, hsm.UsageCardMaster, k)
		clear(k)
		if err != nil {
			return fmt.Errorf("simplatform: %s: %w", name, err)
		}
	}
	s.hsm = m
	s.ltk = mustHex(s.cfg.LTK)
	ks, err := platform.SignInKey(s.ltk)
	if err != nil {
		return fmt.Errorf("simplatform: sign-in key: %w", err)
	}
	s.signKey = ks
	if s.cfg.GroupFactor != "" {
		s.factor = mustHex(s.cfg.GroupFactor)
	}
	kcv, _ := crypt.KCV(s.ltk)
	s.log.Info("sim platform: keys loaded", "ltk_kcv", hexU(kcv), "mdlk_kcv", kcvOf(m, keyMDLK), "mtk_kcv", kcvOf(m, keyMTK),
		"two_level", s.factor != nil)
	return nil
}

func kcvOf(m *hsm.Soft, name string) string {
	i, _ := m.Info(name)
	return i.KCV
}

// openJournal replays the journal, cuts a torn last line (never acknowledged) and opens
// the file for appending.
func (s *Server) openJournal() error {
	path := filepath.Join(s.cfg.DataDir, JournalFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("simplatform: open journal: %w", err)
	}
	j, good, err := parseJournal(f)
	if err == nil {
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, 0)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	s.j, s.jf = j, f
	s.log.Info("sim platform: journal replayed", "file", path, "references", len(j.order), "batches", len(j.batches))
	return nil
}

// commit appends r to the journal, fsyncs, and only then applies it: an answer never
// reports a state the disk does not hold. A write error stops the platform (every later
// answer is 96), since the file may now end in half a line. Called with s.mu held.
func (s *Server) commit(r *record) error {
	if s.broken != nil {
		return s.broken
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("simplatform: journal: %w", err)
	}
	if _, err := s.jf.Write(append(b, '\n')); err != nil {
		s.broken = fmt.Errorf("simplatform: journal write: %w", err)
		return s.broken
	}
	s.written.Add(1)
	if err := s.j.apply(r); err != nil {
		s.broken = fmt.Errorf("simplatform: journal apply: %w", err)
		return s.broken
	}
	return nil
}

// answer handles one request and returns its answer once the journal is synced past every
// record written before it; nil (no answer) if that sync failed, which stops the platform.
func (s *Server) answer(b []byte) []byte {
	out := s.handle(b)
	if err := s.waitDurable(s.written.Load()); err != nil {
		return nil
	}
	return out
}

func (s *Server) waitDurable(target uint64) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.scond == nil {
		s.scond = sync.NewCond(&s.smu)
	}
	for s.synced < target && s.syncErr == nil {
		if s.syncing {
			s.scond.Wait()
			continue
		}
		s.syncing = true
		upto := s.written.Load()
		s.smu.Unlock()
		s.mu.Lock()
		jf := s.jf
		s.mu.Unlock()
		err := jf.Sync()
		s.smu.Lock()
		s.syncing = false
		if err != nil {
			s.syncErr = fmt.Errorf("simplatform: journal sync: %w", err)
			s.mu.Lock()
			if s.broken == nil {
				s.broken = s.syncErr
			}
			s.mu.Unlock()
		} else if upto > s.synced {
			s.synced = upto
		}
		s.scond.Broadcast()
	}
	return s.syncErr
}

// Listen opens the FEP port and, unless disabled, the FTP port. Run calls it; tests call it
// first to learn the ports of ":0" addresses.
func (s *Server) Listen() error {
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("simplatform: listen: %w", err)
	}
	s.ln = ln
	if s.cfg.FTP.Listen != FTPOff {
		fl, err := net.Listen("tcp", s.cfg.FTP.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("simplatform: ftp listen: %w", err)
		}
		s.ftpLn = fl
	}
	return nil
}

// Addr is the FEP link's address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// FTPAddr is the FTP server's address (after Listen), nil when disabled.
func (s *Server) FTPAddr() net.Addr {
	if s.ftpLn == nil {
		return nil
	}
	return s.ftpLn.Addr()
}

// UploadDir is where FTP uploads land.
func (s *Server) UploadDir() string { return filepath.Join(s.cfg.DataDir, s.cfg.FTP.UploadDir) }

// Journal returns a replay of the journal as it is on disk now.
func (s *Server) Journal() (*Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return LoadJournal(s.cfg.DataDir)
}

// SetOutage starts an outage now until until (zero: no end); mode OutageNone ends it.
func (s *Server) SetOutage(mode string, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outMode, s.outFrom, s.outUntil = mode, s.now(), until
}

func (s *Server) outage(now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outMode == OutageNone || now.Before(s.outFrom) || (!s.outUntil.IsZero() && !now.Before(s.outUntil)) {
		return OutageNone
	}
	return s.outMode
}

// Run listens (if Listen was not called) and serves until ctx ends; then it closes every
// connection and the journal.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.log.Info("sim platform: listening", "addr", s.ln.Addr().String(), "ftp", fmt.Sprint(s.FTPAddr()),
		"data_dir", s.cfg.DataDir)
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	if s.ftpLn != nil {
		stop, err := s.serveFTP()
		if err != nil {
			s.ln.Close()
			s.ftpLn.Close()
			return err
		}
		defer stop()
	}
	conns := map[net.Conn]struct{}{}
	var cmu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				if ctx.Err() == nil {
					errc <- fmt.Errorf("simplatform: accept: %w", err)
				}
				return
			}
			cmu.Lock()
			conns[c] = struct{}{}
			cmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveConn(ctx, c)
				cmu.Lock()
				delete(conns, c)
				cmu.Unlock()
			}()
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.ln.Close()
	cmu.Lock()
	for c := range conns {
		c.Close()
	}
	cmu.Unlock()
	wg.Wait()
	s.mu.Lock()
	s.jf.Close()
	s.mu.Unlock()
	s.log.Info("sim platform: stopped")
	return err
}

// serveConn reads requests and answers each from its own goroutine, so a slow answer
// (latency) does not hold back the pipelined requests behind it.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		b, err := frame.Read(c, 0)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := s.answer(b)
			if out == nil {
				return
			}
			if d := s.cfg.Latency; d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			wmu.Lock()
			defer wmu.Unlock()
			if err := frame.Write(c, out); err != nil {
				s.log.Debug("sim platform: write", "err", err)
			}
		}()
	}
}
