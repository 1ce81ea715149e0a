// Package loadbench is `quancun bench`: many kiosks with virtual cards drive complete loads
// (card crypto, bank debit, platform booking, card credit, confirm) through the FEP, with
// the platform, the bank and the FEP each a separate process on loopback (bench/world), and
// the same traffic through a stateless relay (bench/relay) as the baseline of the same run.
// It measures loads/s, the latency the kiosk sees and the part the switch adds, the switch's
// CPU per load, peak RSS and allocation, and ends with the money check from the peers' books.
// docs/performance.md says how each number is taken and what the targets are.
//
// It never targets anything but loopback addresses.
package loadbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/proc"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/kiosk"
)

// BankCode is the one bank of the bench.
const BankCode = "BANKA00001"

// Systems under test.
const (
	FEP   = "fep"
	Relay = "relay"
)

// Options of one bench run. Zero values take the defaults in brackets.
type Options struct {
	Bin      string        // the quancun binary the processes run from (required)
	Dir      string        // work dir: configs, books, logs (required)
	Kiosks   int           // concurrent kiosks [64]
	Warmup   time.Duration // per phase, not measured [5s]
	Duration time.Duration // measured, per phase [20s]
	Rate     float64       // loads/s over all kiosks, open loop; 0 = as fast as they go
	NoRelay  bool          // skip the relay baseline
	// Suite runs what docs/performance.md reports: max rate through the FEP and the relay,
	// then SuiteRate through both with the latency split, then Idle idle kiosks.
	Suite     bool
	SuiteRate float64 // [2000]
	Idle      int     // idle kiosks for the idle-scale phase; 0 = none
	IdleHold  time.Duration
	Amount    int64     // fen per load [100]
	Profile   bool      // CPU profiles of the switch per phase in Dir (<system>-<mode>.pprof)
	Progress  io.Writer // progress lines; nil = none
	Logger    *slog.Logger
}

func (o *Options) defaults() {
	if o.Kiosks <= 0 {
		o.Kiosks = 64
	}
	if o.Warmup <= 0 {
		o.Warmup = 5 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.SuiteRate <= 0 {
		o.SuiteRate = 2000
	}
	if o.IdleHold <= 0 {
		o.IdleHold = 15 * time.Second
	}
	if o.Amount <= 0 {
		o.Amount = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Phase is one measured run of one system.
type Phase struct {
	System string
	Rate   float64 // 0 = max
	Split  bool    // time the kiosk and peer links for the switch-added latency
}

func (p Phase) mode() string {
	if p.Rate > 0 {
		return fmt.Sprintf("%g/s", p.Rate)
	}
	return "max"
}

func (o *Options) phases() []Phase {
	var out []Phase
	add := func(rate float64) {
		out = append(out, Phase{System: FEP, Rate: rate, Split: rate > 0})
		if !o.NoRelay {
			out = append(out, Phase{System: Relay, Rate: rate, Split: rate > 0})
		}
	}
	if o.Suite {
		add(0)
		add(o.SuiteRate)
		return out
	}
	add(o.Rate)
	return out
}

type bench struct {
	opt         Options
	w           *world.World
	cfgPath     string
	proxied     map[string]string // peer address -> proxy address
	kproxies    []*proxy
	peerPx      []*proxy
	split       *splitter
	splitOn     atomic.Bool
	relay       *proc.Process
	relayAt     string
	running     string // the switch running now
	relayStarts int
	accounts    []world.Account
	cards       []world.CardSpec
	gcSeen      map[string]int64 // log offset per switch log already read
	gcLive      map[string]int64
}

// Run runs the bench and returns its report; err is for what kept it from running.
func Run(ctx context.Context, opt Options) (*Report, error) {
	opt.defaults()
	if opt.Bin == "" || opt.Dir == "" {
		return nil, errors.New("loadbench: Bin and Dir are required")
	}
	rep := &Report{Machine: machine(), Started: time.Now().UTC().Format(time.RFC3339), LoadAvgStart: loadAvg(),
		Kiosks: opt.Kiosks, Warmup: opt.Warmup.String(), Duration: opt.Duration.String()}
	raiseNoFile(opt.Idle + 4*opt.Kiosks + 1024)
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, err
	}
	// The virtual cards' files live on tmpfs: a card's EEPROM is not the server's disk, and
	// two fsyncs per credit in the kiosks would compete with the switch and the peers.
	if shm, err := os.MkdirTemp("/dev/shm", "quancun-cards-"); err == nil {
		defer os.RemoveAll(shm)
		_ = os.RemoveAll(filepath.Join(opt.Dir, "cards"))
		if err := os.Symlink(shm, filepath.Join(opt.Dir, "cards")); err != nil {
			return nil, err
		}
	}
	b := &bench{opt: opt, cfgPath: filepath.Join(opt.Dir, "fep.toml"), proxied: map[string]string{},
		gcSeen: map[string]int64{}, gcLive: map[string]int64{}}
	phases := opt.phases()
	anySplit := false
	for _, p := range phases {
		anySplit = anySplit || p.Split
	}
	b.split = &splitter{byTerm: map[string]int{}, byCard: map[string]int{}, byPAN: map[string]int{},
		byRef: map[string]int{}, enabled: b.splitOn.Load}
	for i := range opt.Kiosks {
		pan := fmt.Sprintf("62220200%011d", i+1)
		serial := fmt.Sprintf("00000001%08d", i+1)
		b.accounts = append(b.accounts, world.Account{Bank: BankCode, PAN: pan, PIN: "123456", Balance: 100_000_000_000})
		b.cards = append(b.cards, world.CardSpec{Name: fmt.Sprintf("card-%04d", i+1), Serial: serial})
		b.split.byTerm[world.KioskID(i)], b.split.byCard[serial], b.split.byPAN[pan] = i, i, i
		b.split.traces = append(b.split.traces, &loadTrace{})
	}
	wopt := world.Options{Bin: opt.Bin, Dir: opt.Dir, Banks: []string{BankCode}, Accounts: b.accounts,
		Cards: b.cards, Kiosks: opt.Kiosks, Logger: opt.Logger,
		KioskTimeouts: simkiosk.Timeouts{Load: 20 * time.Second, Confirm: 5 * time.Second}}
	if anySplit {
		wopt.Interpose = func(link, addr string) (string, error) {
			hooks := b.split.platformHooks
			if strings.HasPrefix(link, "bank:") {
				hooks = b.split.bankHooks
			}
			p, err := newProxy(addr, hooks)
			if err != nil {
				return "", err
			}
			b.peerPx = append(b.peerPx, p)
			b.proxied[addr] = p.Addr()
			return p.Addr(), nil
		}
	}
	fmt.Fprintf(opt.Progress, "== starting the platform, the bank and the FEP, %d kiosks (work dir %s)\n", opt.Kiosks, opt.Dir)
	w, err := world.Start(ctx, wopt)
	if err != nil {
		b.closeProxies()
		return nil, err
	}
	b.w, b.running = w, FEP
	defer b.closeProxies()
	defer w.Stop()
	if anySplit {
		for i := range opt.Kiosks {
			p, err := newProxy(w.FEPAddr, b.split.kioskHooks(i))
			if err != nil {
				return nil, err
			}
			b.kproxies = append(b.kproxies, p)
		}
	}

	for _, ph := range phases {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := b.runPhase(ctx, ph)
		if err != nil {
			return nil, fmt.Errorf("phase %s %s: %w", ph.System, ph.mode(), err)
		}
		rep.Phases = append(rep.Phases, res)
	}
	if opt.Idle > 0 {
		ir, err := b.idle(ctx, opt.Idle, opt.IdleHold)
		if err != nil {
			return nil, fmt.Errorf("idle phase: %w", err)
		}
		rep.Idle = ir
	}

	fmt.Fprintln(opt.Progress, "== settling, stopping every process, reading the books")
	b.stopRelay()
	time.Sleep(2 * time.Second)
	w.Stop()
	in, err := w.Books()
	if err != nil {
		return nil, err
	}
	mc := moneycheck.Check(in)
	rep.Money, rep.MoneyPassed = mc.Line(), mc.Passed()
	rep.Booked, rep.Written = mc.Booked[BankCode], mc.Written
	rep.LoadAvgEnd = loadAvg()
	rep.Targets = targets(rep)
	return rep, nil
}

func (b *bench) closeProxies() {
	for _, p := range b.kproxies {
		p.Close()
	}
	for _, p := range b.peerPx {
		p.Close()
	}
}

// raiseNoFile lifts the open-file limit (inherited by the processes started after it).
func raiseNoFile(want int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	if l.Max < uint64(want) {
		l.Max = uint64(want)
	}
	l.Cur = l.Max
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// writeConfig points the switch config at the peers directly or through the timing proxies.
func (b *bench) writeConfig(split bool) error {
	raw, err := os.ReadFile(b.cfgPath)
	if err != nil {
		return err
	}
	s := string(raw)
	if !strings.Contains(s, "log_level") {
		// One log line per step of every load at info; the bench measures the switch, not
		// its audit trail (docs/performance.md).
		s = strings.Replace(s, "[fep]\n", "[fep]\nlog_level = \"warn\"\n", 1)
	}
	for peer, px := range b.proxied {
		if split {
			s = strings.ReplaceAll(s, fmt.Sprintf("%q", peer), fmt.Sprintf("%q", px))
		} else {
			s = strings.ReplaceAll(s, fmt.Sprintf("%q", px), fmt.Sprintf("%q", peer))
		}
	}
	return os.WriteFile(b.cfgPath, []byte(s), 0o644)
}

func (b *bench) stopRelay() {
	if b.relay != nil {
		b.relay.Stop(5 * time.Second)
		b.relay = nil
	}
}

// switchTo stops whatever switch runs, writes its config and starts system; the kiosks
// then connect and sign in (through their timing proxies when split).
func (b *bench) profilePath(system, mode string) string {
	return filepath.Join(b.opt.Dir, system+"-"+strings.ReplaceAll(mode, "/", "per")+".pprof")
}

func (b *bench) switchTo(ctx context.Context, system, mode string, split bool) (pid int, addr, logPath string, err error) {
	b.stopRelay()
	if b.w.FEP != nil {
		b.w.FEP.Stop(10 * time.Second)
	}
	for _, k := range b.w.Kiosks {
		k.Close()
	}
	if err := b.writeConfig(split); err != nil {
		return 0, "", "", err
	}
	var p *proc.Process
	switch system {
	case FEP:
		// `quancun bench fep`: serve's fep.LoadConfig + fep.Start with the profiling hooks.
		args := []string{"bench", "fep", "--config", b.cfgPath}
		if b.opt.Profile {
			args = append(args, "--cpuprofile", b.profilePath(FEP, mode))
		}
		if p, err = proc.Start(b.opt.Bin, b.opt.Dir, "fep", args...); err != nil {
			return 0, "", "", err
		}
		b.w.FEP, addr = p, b.w.FEPAddr
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = p.WaitPort(c, addr)
		cancel()
		if err != nil {
			return 0, "", "", err
		}
	case Relay:
		if b.relayAt == "" {
			if b.relayAt, err = proc.FreePort(); err != nil {
				return 0, "", "", err
			}
		}
		// A fresh STAN range per relay start (the FEP's own counter starts at 1).
		b.relayStarts++
		args := []string{"bench", "relay", "--config", b.cfgPath, "--listen", b.relayAt,
			"--stan-from", fmt.Sprint(200000 + 190000*(b.relayStarts%5))}
		if b.opt.Profile {
			args = append(args, "--cpuprofile", b.profilePath(Relay, mode))
		}
		p, err = proc.Start(b.opt.Bin, b.opt.Dir, "relay", args...)
		if err != nil {
			return 0, "", "", err
		}
		b.relay, addr = p, b.relayAt
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = p.WaitPort(c, addr)
		cancel()
		if err != nil {
			return 0, "", "", err
		}
	}
	b.running = system
	for i, k := range b.w.Kiosks {
		to := addr
		if split {
			b.kproxies[i].Retarget(addr)
			to = b.kproxies[i].Addr()
		}
		if err := world.Retry(ctx, 20*time.Second, func() error {
			if err := k.Dial(ctx, to); err != nil {
				return err
			}
			return k.SignIn(ctx)
		}); err != nil {
			return 0, "", "", fmt.Errorf("kiosk %s sign-in at the %s: %w", k.Terminal(), system, err)
		}
	}
	return p.PID(), addr, p.Log, nil
}

type sample struct {
	at            time.Time
	cpu           map[string]float64
	allocs, bytes uint64
	ok            bool
}

func (b *bench) sample(pids map[string]int, sw int, logPath string) sample {
	s := sample{at: time.Now(), cpu: map[string]float64{}}
	s.allocs, s.bytes, s.ok = allocCounters(sw, logPath)
	for name, pid := range pids {
		if c, err := cpuSeconds(pid); err == nil {
			s.cpu[name] = c
		}
	}
	return s
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 120_000_000, 3) } // µs, up to 2 min

func (b *bench) runPhase(ctx context.Context, ph Phase) (Result, error) {
	fmt.Fprintf(b.opt.Progress, "== %s, %s, %d kiosks: starting\n", ph.System, ph.mode(), b.opt.Kiosks)
	pid, _, logPath, err := b.switchTo(ctx, ph.System, ph.mode(), ph.Split)
	if err != nil {
		return Result{}, err
	}
	b.splitOn.Store(ph.Split)
	defer b.splitOn.Store(false)
	pids := map[string]int{ph.System: pid, "platform": b.w.Platform.PID(), "bank": b.w.BankProc[BankCode].PID(), "bench": os.Getpid()}
	n := len(b.w.Kiosks)
	start := time.Now()
	warmEnd := start.Add(b.opt.Warmup)
	end := warmEnd.Add(b.opt.Duration)
	var done, failed, total atomic.Int64
	lat := make([]*hdrhistogram.Histogram, n)
	added := make([]*hdrhistogram.Histogram, n)
	var errMu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for i := range n {
		lat[i], added[i] = newHist(), newHist()
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, c, acct, tr := b.w.Kiosks[i], b.w.Cards[b.cards[i].Name], b.accounts[i], b.split.traces[i]
			var period time.Duration
			next := start
			if ph.Rate > 0 {
				period = time.Duration(float64(n) / ph.Rate * float64(time.Second))
				next = start.Add(period * time.Duration(i) / time.Duration(n))
			}
			for ctx.Err() == nil {
				sched := time.Now()
				if ph.Rate > 0 {
					if !next.Before(end) || !sched.Before(end) {
						return // past the window: a backlog is not worked off
					}
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					sched, next = next, next.Add(period)
				} else if !sched.Before(end) {
					return
				}
				tr.reset()
				res, err := k.Load(ctx, simkiosk.LoadParams{Card: c.Slot, Amount: b.opt.Amount, BankCode: acct.Bank, PAN: acct.PAN, PIN: acct.PIN})
				fin := time.Now()
				total.Add(1)
				if fin.Before(warmEnd) || fin.After(end) {
					continue
				}
				if err == nil && res.Code == kiosk.Approved && res.Write == kiosk.Written && res.ConfirmCode == kiosk.Approved {
					done.Add(1)
					lat[i].RecordValue(max(fin.Sub(sched).Microseconds(), 1))
					if ph.Split {
						if a, ok := tr.added(); ok {
							added[i].RecordValue(max(a.Microseconds(), 1))
						}
					}
					continue
				}
				failed.Add(1)
				errMu.Lock()
				if len(errs) < 5 {
					errs = append(errs, fmt.Sprintf("%s: %v (code %q write %c confirm %q)", k.Terminal(), err, res.Code, res.Write, res.ConfirmCode))
				}
				errMu.Unlock()
			}
		}()
	}
	// Progress and the two samples of the measured window.
	tick := time.NewTicker(time.Second)
	var s0, s1 sample
	sampled := false
	progress := func(final bool) {
		now := time.Now()
		stage := "warm-up"
		el := now.Sub(start)
		if now.After(warmEnd) {
			stage, el = "measure", now.Sub(warmEnd)
		}
		rate := 0.0
		if sampled {
			rate = float64(done.Load()) / max(now.Sub(warmEnd).Seconds(), 0.001)
		}
		fmt.Fprintf(b.opt.Progress, "\r   %s %s: %s %3.0fs  loads %d (measured %d, %.0f/s, failed %d)   ",
			ph.System, ph.mode(), stage, el.Seconds(), total.Load(), done.Load(), rate, failed.Load())
		if final {
			fmt.Fprintln(b.opt.Progress)
		}
	}
	atWarm, atEnd := time.NewTimer(time.Until(warmEnd)), time.NewTimer(time.Until(end))
	defer atWarm.Stop()
	defer atEnd.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-atWarm.C:
			s0, sampled = b.sample(pids, pid, logPath), true
		case <-atEnd.C:
			s1 = b.sample(pids, pid, logPath)
			break loop
		case <-tick.C:
			progress(false)
		}
	}
	tick.Stop()
	progress(true)
	wg.Wait()
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if !sampled {
		return Result{}, errors.New("measured window never started")
	}
	secs := s1.at.Sub(s0.at).Seconds()
	r := Result{System: ph.System, Mode: ph.mode(), Rate: ph.Rate, Kiosks: n, Seconds: secs,
		Loads: done.Load(), Failed: failed.Load(), LoadAvg: loadAvg(), FailSamples: errs,
		PeerCPUPerLoadUS: map[string]float64{}}
	r.LoadsPerSec = float64(r.Loads) / b.opt.Duration.Seconds()
	lh, ah := newHist(), newHist()
	for i := range n {
		lh.Merge(lat[i])
		ah.Merge(added[i])
	}
	r.Latency = dist(lh)
	if ph.Split {
		d := dist(ah)
		r.Added = &d
	}
	if r.Loads > 0 {
		for name := range pids {
			c := (s1.cpu[name] - s0.cpu[name]) / float64(r.Loads) * 1e6
			if name == ph.System {
				r.CPUPerLoadUS = c
			} else {
				r.PeerCPUPerLoadUS[name] = c
			}
		}
	}
	if hwm, err := memKiB(pid, "VmHWM"); err == nil {
		r.PeakRSSKiB = hwm
	}
	r.AllocsPerLoad, r.AllocKiBPerLoad = -1, -1
	if s0.ok && s1.ok && r.Loads > 0 {
		r.AllocsPerLoad = float64(s1.allocs-s0.allocs) / float64(r.Loads)
		r.AllocKiBPerLoad = float64(s1.bytes-s0.bytes) / 1024 / float64(r.Loads)
	}
	// Let the switch finish its confirms to the platform before it is stopped.
	time.Sleep(2 * time.Second)
	return r, nil
}

func machine() string {
	host, _ := os.Hostname()
	kern, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s", host, runtime.NumCPU(), strings.TrimSpace(string(kern)), runtime.Version())
}
