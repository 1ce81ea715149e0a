// Package fep is the root of the FEP's supervision tree: it reads the configuration, opens
// the store, loads the keys into a fresh security module, and starts the platform session,
// one link per bank, the loads supervisor and the kiosk listener under one root actor with
// one-for-one exponential back-off (docs/architecture.md has the tree).
//
// It decides nothing about money; it wires. What it must never do: start taking kiosk
// requests before every actor a request may reach exists, log a key (KCVs only), or close
// the store while an actor may still write to it.
package fep

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/banklink"
	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/actors/platformlink"
	"github.com/quancun/quancun/actors/terminal"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/persistence"
)

// Actor ids of the tree; every PID is known before anything is spawned.
const (
	rootName     = "fep"
	platformName = "platform"
	loadsName    = "loads"
	kiosksName   = "kiosks"
)

func bankName(code string) string { return "bank/" + code }

// Key names in the security module that the configuration fills.
const (
	PSAMMasterKey = terminal.DefaultPSAMMaster
	PlatformLTK   = "platform/ltk"
)

// ZMKName is the security-module name of a bank's ZMK.
func ZMKName(code string) string { return "bank/" + code + "/zmk" }

// FEP is a running front-end processor.
type FEP struct {
	cfg    Config
	log    *slog.Logger
	store  *persistence.Store
	hsm    *hsm.Soft
	board  *linkstatus.Board
	sys    *actor.ActorSystem
	root   *actor.PID
	loads  *actor.PID
	kiosks *terminal.Kiosks

	stopOnce sync.Once
	stopErr  error
	watch    chan struct{}
	watchWG  sync.WaitGroup
}

// Start builds and starts the FEP; on error everything it opened is closed again.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (_ *FEP, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.With("node", cfg.FEP.Node)
	f := &FEP{cfg: cfg, log: log, board: linkstatus.New(), watch: make(chan struct{})}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	if f.hsm, err = newHSM(cfg, log); err != nil {
		return nil, err
	}
	if f.store, err = persistence.Open(cfg.FEP.DataDir, persistence.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("fep: store: %w", err)
	}
	cleanup = append(cleanup, func() { f.store.Close() })
	log.Info("store open", "dir", cfg.FEP.DataDir)

	stans := map[string]*persistence.Counter{}
	for _, b := range cfg.Banks {
		if stans[b.Code], err = f.store.Counter("stan/"+b.Code, 1, 999999, 100); err != nil {
			return nil, fmt.Errorf("fep: STAN counter of bank %s: %w", b.Code, err)
		}
	}
	batch, err := f.store.Counter("kiosk/batch", 1, 999999, 100)
	if err != nil {
		return nil, fmt.Errorf("fep: kiosk batch counter: %w", err)
	}

	f.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("component", "actor")
	}))
	cleanup = append(cleanup, f.sys.Shutdown)
	pid := func(parts ...string) *actor.PID {
		id := rootName
		for _, p := range parts {
			id += "/" + p
		}
		return f.sys.NewLocalPID(id)
	}
	platformPID, loadsPID := pid(platformName), pid(loadsName)
	f.loads = loadsPID
	bankPIDs := map[string]*actor.PID{}
	codes := make([]string, 0, len(cfg.Banks))
	for _, b := range cfg.Banks {
		bankPIDs[b.Code] = pid(bankName(b.Code))
		codes = append(codes, b.Code)
	}

	kcfg := terminal.Config{Addr: cfg.FEP.KioskListen, HeartbeatTimeout: cfg.FEP.HeartbeatTimeout.Duration,
		RequestTimeout: cfg.Limits.KioskRequest.Duration, LoadTimeout: cfg.Limits.KioskLoad.Duration,
		PSAMMaster: PSAMMasterKey, Banks: codes}
	for _, k := range cfg.Kiosks {
		p, _ := hex.DecodeString(k.PSAM)
		kcfg.Terminals = append(kcfg.Terminals, terminal.Terminal{ID: k.Terminal, PSAM: kiosk.PSAMNo(p)})
	}
	f.kiosks, err = terminal.New(kcfg, terminal.Deps{System: f.sys, Path: rootName + "/" + kiosksName,
		HSM: f.hsm, Store: f.store, Batch: batch, Status: f.board, Loads: loadsPID, Platform: platformPID, Logger: log})
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, f.kiosks.Close)

	children, err := f.children(cfg, stans, platformPID, loadsPID, bankPIDs, log)
	if err != nil {
		return nil, err
	}
	f.watchLinks()
	cleanup = append(cleanup, f.stopWatch)
	rootProps := actor.PropsFromProducer(func() actor.Actor { return &root{children: children, log: log} },
		actor.WithSupervisor(actor.NewExponentialBackoffStrategy(time.Minute, 200*time.Millisecond)))
	if f.root, err = f.sys.Root.SpawnNamed(rootProps, rootName); err != nil {
		return nil, fmt.Errorf("fep: spawn root: %w", err)
	}
	if err := f.await(ctx, f.root, ready{}); err != nil {
		return nil, err
	}
	if err := f.await(ctx, pid(kiosksName), terminal.Ready{}); err != nil {
		return nil, err
	}
	if err := f.kiosks.Listen(); err != nil {
		return nil, err
	}
	log.Info("FEP started", "kiosks", f.kiosks.Addr().String(), "banks", len(cfg.Banks), "terminals", len(cfg.Kiosks),
		"master_kcv", f.hsm.MasterKCV())
	return f, nil
}

// newHSM builds the security module from the configuration's keys.
func newHSM(cfg Config, log *slog.Logger) (*hsm.Soft, error) {
	master, demo, err := cfg.Master()
	if err != nil {
		return nil, err
	}
	defer clear(master)
	if demo {
		log.Warn("INSECURE: no fep.master_key or fep.master_key_file; using the published demo master key")
	}
	h, err := hsm.NewSoft(master, log.With("component", "hsm"))
	if err != nil {
		return nil, fmt.Errorf("fep: security module: %w", err)
	}
	load := func(name string, u hsm.Usage, key []byte, kerr error) error {
		if kerr != nil {
			return kerr
		}
		defer clear(key)
		if _, err := h.ImportClear(name, u, key); err != nil {
			return fmt.Errorf("fep: key %s: %w", name, err)
		}
		return nil
	}
	psam, err := hex.DecodeString(cfg.PSAM.MACMaster)
	if err := load(PSAMMasterKey, hsm.UsagePSAMMaster, psam, err); err != nil {
		return nil, err
	}
	for i, k := range cfg.Kiosks {
		tmk, err := cfg.TMK(i)
		if err := load(terminal.TMKName(k.Terminal), hsm.UsageKEK, tmk, err); err != nil {
			return nil, err
		}
	}
	for _, b := range cfg.Banks {
		zmk, err := hex.DecodeString(b.ZMK)
		if err := load(ZMKName(b.Code), hsm.UsageKEK, zmk, err); err != nil {
			return nil, err
		}
	}
	ltk, _ := hex.DecodeString(cfg.Platform.LTK)
	defer clear(ltk)
	if _, _, err := platformlink.InstallKeys(h, PlatformLTK, ltk); err != nil {
		return nil, err
	}
	if cfg.FEP.KeyFile != "" {
		if err := loadKeyFile(h, cfg.FEP.KeyFile); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// loadKeyFile loads an hsm.SaveKeys file (keys wrapped under the same master key).
func loadKeyFile(h *hsm.Soft, path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: fep.key_file: %w", ErrConfig, err)
	}
	defer fh.Close()
	if err := h.LoadKeys(fh); err != nil {
		return fmt.Errorf("fep.key_file %s: %w", path, err)
	}
	return nil
}

// children builds every child's Props, checking each Config/Deps first so a bad
// configuration stops Start instead of a crash-looping actor.
func (f *FEP) children(cfg Config, stans map[string]*persistence.Counter, platformPID, loadsPID *actor.PID,
	banks map[string]*actor.PID, log *slog.Logger) ([]child, error) {
	pcfg := platformlink.Config{Addr: cfg.Platform.Addr, AuthCode: cfg.Platform.AuthCode, SignInKey: PlatformLTK,
		HeartbeatInterval: cfg.Platform.HeartbeatInterval.Duration, HeartbeatTimeout: cfg.Platform.HeartbeatTimeout.Duration,
		RequestTimeout: cfg.Platform.RequestTimeout.Duration, ReconnectMin: cfg.Platform.ReconnectMin.Duration,
		ReconnectMax: cfg.Platform.ReconnectMax.Duration}
	pdeps := platformlink.Deps{HSM: f.hsm, Store: f.store, Status: f.board, Logger: log}
	if err := platformlink.Check(pcfg, pdeps); err != nil {
		return nil, err
	}
	out := []child{{name: platformName, props: platformlink.Props(pcfg, pdeps)}}
	for _, b := range cfg.Banks {
		bcfg := banklink.Config{BankCode: b.Code, Addr: b.Addr, Dialect: b.Dialect, Terminal: b.Terminal,
			Merchant: b.Merchant, ZMKKey: ZMKName(b.Code), ResponseTimeout: b.ResponseTimeout.Duration,
			EchoInterval: b.EchoInterval.Duration, EchoTimeout: b.EchoTimeout.Duration,
			ReconnectMin: b.ReconnectMin.Duration, ReconnectMax: b.ReconnectMax.Duration, MaxInFlight: b.MaxInFlight}
		bdeps := banklink.Deps{HSM: f.hsm, Store: f.store, STAN: stans[b.Code], Status: f.board, Loads: loadsPID, Logger: log}
		if err := banklink.Check(bcfg, bdeps); err != nil {
			return nil, err
		}
		out = append(out, child{name: bankName(b.Code), props: banklink.Props(bcfg, bdeps)})
	}
	l := cfg.Limits
	lcfg := loads.Config{Merchant: cfg.FEP.Merchant, Grace: l.Grace.Duration, Limits: txn.Limits{
		Check: l.Check.Duration, Bank: l.Bank.Duration, Kiosk: l.Kiosk.Duration, BookFirst: l.BookFirst.Duration,
		BookMax: l.BookMax.Duration, Confirm: l.Confirm.Duration, ConfirmFirst: l.ConfirmFirst.Duration,
		ConfirmMax: l.ConfirmMax.Duration}}
	ldeps := loads.Deps{Store: f.store, STAN: stans, Platform: platformPID, Banks: banks,
		Terminal: f.kiosks.PID, Status: f.board, Logger: log}
	out = append(out, child{name: loadsName, props: loads.Props(lcfg, ldeps)},
		child{name: kiosksName, props: f.kiosks.Props()})
	cut, err := f.cutoverChild(cfg, platformPID, log)
	if err != nil {
		return nil, err
	}
	return append(out, cut), nil
}

// child is one actor the root spawns, by name, in order.
type child struct {
	name  string
	props *actor.Props
}

// root spawns the tree's top level and supervises it: one-for-one, exponential back-off
// (set on its Props), so a failing bank link restarts alone.
type root struct {
	children []child
	log      *slog.Logger
}

type ready struct{}

func (r *root) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		for _, c := range r.children {
			if _, err := ctx.SpawnNamed(c.props, c.name); err != nil {
				r.log.Error("spawn", "actor", c.name, "err", err)
			}
		}
	case ready:
		ctx.Respond(ready{})
	}
}

// await asks pid msg and waits for any answer (the actor has run its Started).
func (f *FEP) await(ctx context.Context, pid *actor.PID, msg any) error {
	fut := f.sys.Root.RequestFuture(pid, msg, 10*time.Second)
	done := make(chan error, 1)
	go func() { _, err := fut.Result(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("fep: %s not ready: %w", pid.Id, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchLinks logs every link's up/down change (the board has no subscriptions).
func (f *FEP) watchLinks() {
	f.watchWG.Add(1)
	go func() {
		defer f.watchWG.Done()
		// Every configured link starts down until it reports (linkstatus's rule).
		last := map[string]bool{linkstatus.Platform: false}
		f.log.Info("link down", "link", linkstatus.Platform, "why", "not signed in yet")
		for _, b := range f.cfg.Banks {
			last[linkstatus.Bank(b.Code)] = false
			f.log.Info("link down", "link", linkstatus.Bank(b.Code), "why", "not signed on yet")
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			for _, s := range f.board.All() {
				if up, seen := last[s.Link]; !seen || up != s.Up {
					state := "down"
					if s.Up {
						state = "up"
					}
					f.log.Info("link "+state, "link", s.Link, "why", s.Why, "since", s.Since.Format(time.RFC3339))
					last[s.Link] = s.Up
				}
			}
			select {
			case <-f.watch:
				return
			case <-t.C:
			}
		}
	}()
}

func (f *FEP) stopWatch() {
	select {
	case <-f.watch:
	default:
		close(f.watch)
	}
	f.watchWG.Wait()
}

// Addr is the kiosk listener's address.
func (f *FEP) Addr() net.Addr { return f.kiosks.Addr() }

// Links is every link's last reported state.
func (f *FEP) Links() []linkstatus.Status { return f.board.All() }

// HSM is the FEP's security module (for KCV listings and tests; it never gives out keys).
func (f *FEP) HSM() *hsm.Soft { return f.hsm }

// Stop shuts down gracefully: stop accepting kiosks, give loads in flight up to the drain
// time to finish (each of their steps is durable anyway, and unfinished ones resume at the
// next start), stop the actors, close the store. Safe to call more than once.
func (f *FEP) Stop() error {
	f.stopOnce.Do(func() {
		f.log.Info("FEP stopping")
		f.kiosks.Close()
		f.drain(f.cfg.Limits.Drain.Duration)
		if err := f.sys.Root.PoisonFuture(f.root).Wait(); err != nil {
			f.log.Warn("stop actors", "err", err)
		}
		f.sys.Shutdown()
		f.stopWatch()
		if err := f.store.Close(); err != nil && !errors.Is(err, persistence.ErrClosed) {
			f.stopErr = fmt.Errorf("fep: close store: %w", err)
		}
		f.log.Info("FEP stopped", "err", f.stopErr)
	})
	return f.stopErr
}

// drain waits until the loads supervisor has no live transaction actor, or d passed.
func (f *FEP) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		res, err := f.sys.Root.RequestFuture(f.loads, loads.StatsRequest{}, time.Second).Result()
		st, ok := res.(loads.Stats)
		if p, pok := res.(*loads.Stats); pok {
			st, ok = *p, true
		}
		if err != nil || !ok || st.Live == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.log.Warn("stopping with loads in flight; they resume at the next start", "live", st.Live)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
