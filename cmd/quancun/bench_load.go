package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/quancun/quancun/actors/fep"
	"github.com/quancun/quancun/bench/loadbench"
	"github.com/quancun/quancun/bench/proc"
	"github.com/quancun/quancun/bench/relay"
)

// runBenchLoad is the load harness (bench/loadbench); `quancun bench relay` (not listed) is
// the stateless relay the harness starts as its baseline process (bench/relay).
func runBenchLoad(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "relay" {
		return runBenchRelay(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "fep" {
		return runBenchFEP(ctx, env, args[1:])
	}
	fs := newFlags(env, "bench", "Load-test the FEP: kiosks with virtual cards drive complete loads through the FEP and,\n"+
		"as the baseline of the same run, a stateless relay, with the platform and the bank as\n"+
		"separate processes on loopback. Prints Markdown; ends with the money check.\n"+
		"docs/performance.md describes every number.")
	kiosks := fs.Int("kiosks", 64, "concurrent kiosks, each with its own connection, card and bank account")
	warmup := fs.Duration("warmup", 5*time.Second, "warm-up per phase (not measured)")
	duration := fs.Duration("duration", 20*time.Second, "measured time per phase")
	rate := fs.Float64("rate", 0, "loads/s over all kiosks, open loop (per-kiosk schedule); 0 = max rate")
	noRelay := fs.Bool("no-relay", false, "skip the relay baseline")
	suite := fs.Bool("suite", false, "the docs/performance.md run: max rate, then --suite-rate with the latency split, then --idle")
	suiteRate := fs.Float64("suite-rate", 2000, "the fixed rate of --suite")
	idle := fs.Int("idle", 0, "idle kiosks (heartbeat only) for the memory-per-kiosk phase; 0 = none")
	idleHold := fs.Duration("idle-hold", 15*time.Second, "how long the idle kiosks are held and measured")
	amount := fs.Int64("amount", 100, "fen per load")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	mdOut := fs.String("md", "", "write the Markdown report to this file (default: stdout)")
	prof := fs.Bool("profile", false, "write a CPU profile of the switch per phase into the work dir")
	out := fs.String("out", "", "work dir for configs, books and logs (default: a new temp dir, kept)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bin, err := proc.Self()
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "quancun-bench-"); err != nil {
			return err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	rep, err := loadbench.Run(ctx, loadbench.Options{Bin: bin, Dir: dir, Kiosks: *kiosks, Warmup: *warmup,
		Duration: *duration, Rate: *rate, NoRelay: *noRelay, Suite: *suite, SuiteRate: *suiteRate, Idle: *idle,
		IdleHold: *idleHold, Amount: *amount, Profile: *prof, Progress: env.Stderr})
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	w := env.Stdout
	if *mdOut != "" {
		f, err := os.Create(*mdOut)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := rep.WriteMarkdown(w); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "work dir (logs, books): %s\n", dir)
	if !rep.MoneyPassed {
		return fmt.Errorf("%s", rep.Money)
	}
	return nil
}

func runBenchRelay(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench relay", "The bench's stateless baseline relay (bench/relay), started by `quancun bench`.")
	cfg := fs.String("config", "", "the FEP config file whose keys and peers the relay uses")
	listen := fs.String("listen", "127.0.0.1:0", "kiosk listen address")
	stan := fs.Uint("stan-from", 500000, "first bank STAN (each start of the relay must use unused numbers)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here at exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	defer profile(env, *cpuprofile)()
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := relay.Start(ctx, *cfg, *listen, uint32(*stan), log)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "relay listening on %s\n", r.Addr())
	return r.Serve(ctx)
}

// runBenchFEP is `quancun serve` as the bench runs it: the same fep.LoadConfig + fep.Start,
// plus what serve has no switch for (yet): a CPU profile and the allocation counters on
// SIGUSR1 (profile). `quancun bench` measures this process as the FEP.
func runBenchFEP(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench fep", "The FEP as `quancun bench` runs it: serve plus profiling hooks.")
	path := fs.String("config", "", "configuration file (TOML; required)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here at exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := fep.LoadConfig(*path)
	if err != nil {
		return err
	}
	defer profile(env, *cpuprofile)()
	level, _ := fep.ParseLevel(cfg.FEP.LogLevel)
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	f, err := fep.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return f.Stop()
}

// profile starts a CPU profile (when path is set) and prints the runtime's allocation
// counters to stderr on every SIGUSR1 ("bench-metrics allocs=N bytes=M"); the returned
// func stops both.
func profile(env *Env, path string) func() {
	var pf *os.File
	if path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			pf = f
		}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
		for {
			select {
			case <-done:
				return
			case <-ch:
				metrics.Read(s)
				fmt.Fprintf(env.Stderr, "bench-metrics allocs=%d bytes=%d\n", s[0].Value.Uint64(), s[1].Value.Uint64())
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		if pf != nil {
			pprof.StopCPUProfile()
			pf.Close()
		}
	}
}
