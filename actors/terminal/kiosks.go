package terminal

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
)

// ErrConfig reports a Config or Deps the kiosk listener cannot run with.
var ErrConfig = errors.New("terminal: bad configuration")

// Config is the kiosk side of the FEP. Zero durations and counts take the defaults below.
type Config struct {
	Addr             string        // listen address, e.g. "127.0.0.1:7000" (port 0: any)
	HeartbeatTimeout time.Duration // no frame from a kiosk for this long: close, offline
	RequestTimeout   time.Duration // wait for the platform / loads on non-load requests
	LoadTimeout      time.Duration // safety net if the loads supervisor never answers
	Recent           int           // LOAD answers remembered per terminal for duplicates
	PSAMMaster       string        // security-module name of the PSAM MAC master key
	Banks            []string      // bank codes (F58) the FEP has links for
	Terminals        []Terminal    // the registered kiosks
}

// Terminal is one registered kiosk: its id (F41) and PSAM number (F42) belong together.
// Its TMK is held in the security module as TMKName(ID).
type Terminal struct {
	ID   string
	PSAM kiosk.PSAMNo
}

// Defaults of Config.
const (
	DefaultHeartbeatTimeout = 180 * time.Second // three missed 60 s heartbeats
	DefaultRequestTimeout   = 12 * time.Second  // under the kiosk's 15 s PENDING QUERY wait
	DefaultLoadTimeout      = 70 * time.Second  // FEP answers within 60 s; kiosk waits 75 s
	DefaultRecent           = 64
	DefaultPSAMMaster       = "psam/mac-master"
)

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.LoadTimeout, DefaultLoadTimeout)
	if c.Recent <= 0 {
		c.Recent = DefaultRecent
	}
	if c.PSAMMaster == "" {
		c.PSAMMaster = DefaultPSAMMaster
	}
}

// Security is what the kiosk side needs of the security module (*hsm.Soft has it).
type Security interface {
	Generate(name string, usage hsm.Usage) (hsm.KeyInfo, error)
	Export(name, wrapName string) (wrapped, kcv []byte, err error)
	PSAMMAC(masterName string, factors [][]byte, data []byte) ([4]byte, error)
	MAC(keyName string, alg hsm.MACAlg, data []byte) ([]byte, error)
}

// Health is the store's health (persistence.Store.Healthy): nil while it takes writes.
type Health interface{ Healthy() error }

// Sequence hands out batch numbers (a persistence.Counter in 1..999999).
type Sequence interface{ Next() (uint64, error) }

// Deps are what the FEP root hands the kiosk side.
type Deps struct {
	System   *actor.ActorSystem
	Path     string // actor id the supervisor from Props is spawned as, e.g. "fep/kiosks"
	HSM      Security
	Store    Health
	Batch    Sequence
	Status   *linkstatus.Board
	Loads    *actor.PID // takes messages.StartLoad and messages.KioskConfirm
	Platform *actor.PID // takes PlatformPendingQuery, PlatformRewrite, PlatformResolve
	Logger   *slog.Logger
	Now      func() time.Time
}

// Key names of a kiosk's keys in the security module.
func TMKName(id string) string { return "kiosk/" + id + "/tmk" }
func PIKName(id string) string { return "kiosk/" + id + "/pik" }
func MAKName(id string) string { return "kiosk/" + id + "/mak" }

// ValidID reports whether id can be a registered terminal id: 8 characters of letters,
// digits, '.', '_' or '-' (F41 is ans8, and the id is part of key and actor names).
func ValidID(id string) error {
	if len(id) != 8 {
		return fmt.Errorf("terminal id %q must be 8 characters", id)
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-", c) >= 0) {
			return fmt.Errorf("terminal id %q: only letters, digits and ._- allowed", id)
		}
	}
	return nil
}

// Kiosks is the kiosk listener and the registry of terminal actors.
type Kiosks struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	terms map[string]*registration // read-only after New
	banks map[string]bool          // read-only after New

	connSeq atomic.Uint64

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	// testPanic, when set by a test, runs first in every terminal Receive.
	testPanic func(terminal string, msg any)
}

// registration is one terminal's fixed facts and its session, which lives here (not in
// the actor) so that a restarted actor finds its kiosk still signed in and its recent
// answers still remembered.
type registration struct {
	Terminal
	pid *actor.PID
	s   *session
}

// New checks cfg and deps; nothing runs until the supervisor from Props is spawned at
// deps.Path and Listen is called.
func New(cfg Config, deps Deps) (*Kiosks, error) {
	cfg.defaults()
	switch {
	case deps.System == nil:
		return nil, fmt.Errorf("%w: no actor system", ErrConfig)
	case deps.Path == "":
		return nil, fmt.Errorf("%w: no actor path", ErrConfig)
	case deps.HSM == nil:
		return nil, fmt.Errorf("%w: no security module", ErrConfig)
	case deps.Store == nil:
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	case deps.Batch == nil:
		return nil, fmt.Errorf("%w: no batch counter", ErrConfig)
	case deps.Status == nil:
		return nil, fmt.Errorf("%w: no link status board", ErrConfig)
	case deps.Loads == nil || deps.Platform == nil:
		return nil, fmt.Errorf("%w: no loads or platform PID", ErrConfig)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	k := &Kiosks{cfg: cfg, deps: deps, log: deps.Logger.With("component", "kiosks"),
		terms: map[string]*registration{}, banks: map[string]bool{}, conns: map[*conn]struct{}{}}
	for _, b := range cfg.Banks {
		k.banks[b] = true
	}
	for _, t := range cfg.Terminals {
		if err := ValidID(t.ID); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if k.terms[t.ID] != nil {
			return nil, fmt.Errorf("%w: terminal %s registered twice", ErrConfig, t.ID)
		}
		k.terms[t.ID] = &registration{Terminal: t,
			pid: deps.System.NewLocalPID(deps.Path + "/terminal/" + t.ID),
			s:   newSession(cfg.Recent)}
	}
	return k, nil
}

// PID is the terminal actor of a registered kiosk, nil for an unknown id. It is what the
// loads supervisor sends messages.LoadReply to.
func (k *Kiosks) PID(terminalID string) *actor.PID {
	if r := k.terms[terminalID]; r != nil {
		return r.pid
	}
	return nil
}

// Props is the kiosks supervisor: it spawns one terminal actor per registered kiosk and
// restarts a failing one alone, with exponential back-off. Spawn it as deps.Path.
func (k *Kiosks) Props() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &supervisor{k: k} },
		actor.WithSupervisor(actor.NewExponentialBackoffStrategy(time.Minute, 100*time.Millisecond)))
}

type supervisor struct{ k *Kiosks }

// Ready asks the supervisor (ctx.RequestFuture) whether its terminals are spawned; the
// answer is Ready too. Listen after it, so no kiosk request meets a missing actor.
type Ready struct{ Terminals int }

func (s *supervisor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		s.spawn(ctx)
	case Ready, *Ready:
		ctx.Respond(Ready{Terminals: len(ctx.Children())})
	}
}

func (s *supervisor) spawn(ctx actor.Context) {
	if ctx.Self().Id != s.k.deps.Path {
		s.k.log.Error("kiosks supervisor spawned under another name: terminal PIDs will not resolve",
			"want", s.k.deps.Path, "got", ctx.Self().Id)
	}
	for id, r := range s.k.terms {
		reg := r
		props := actor.PropsFromProducer(func() actor.Actor { return newTerminal(s.k, reg) })
		if _, err := ctx.SpawnNamed(props, "terminal/"+id); err != nil {
			s.k.log.Error("spawn terminal", "terminal", id, "err", err)
		}
	}
}

// Listen opens the kiosk port and starts accepting.
func (k *Kiosks) Listen() error {
	ln, err := net.Listen("tcp", k.cfg.Addr)
	if err != nil {
		return fmt.Errorf("terminal: listen %s: %w", k.cfg.Addr, err)
	}
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		ln.Close()
		return fmt.Errorf("terminal: listen after close")
	}
	k.ln = ln
	k.wg.Add(1)
	k.mu.Unlock()
	k.log.Info("kiosk listener up", "addr", ln.Addr().String(), "terminals", len(k.terms))
	go k.accept(ln)
	return nil
}

// Addr is the listening address, nil before Listen.
func (k *Kiosks) Addr() net.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ln == nil {
		return nil
	}
	return k.ln.Addr()
}

// Close stops accepting, closes every kiosk connection and waits for their goroutines.
// Loads already handed to the loads supervisor go on; their answers find no connection.
func (k *Kiosks) Close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	if k.ln != nil {
		k.ln.Close()
	}
	for c := range k.conns {
		c.close()
	}
	k.mu.Unlock()
	k.wg.Wait()
	k.log.Info("kiosk listener closed")
}

func (k *Kiosks) accept(ln net.Listener) {
	defer k.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: wait a little rather than spin.
			k.log.Warn("kiosk accept", "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		c := newConn(k.connSeq.Add(1), nc)
		k.mu.Lock()
		if k.closed {
			k.mu.Unlock()
			nc.Close()
			return
		}
		k.conns[c] = struct{}{}
		k.wg.Add(1) // held by the connection's reader goroutine, whichever it is
		k.mu.Unlock()
		go k.read(c, nil)
	}
}

func (k *Kiosks) forget(c *conn) {
	k.mu.Lock()
	delete(k.conns, c)
	k.mu.Unlock()
}
