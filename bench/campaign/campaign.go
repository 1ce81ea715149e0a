// Package campaign is the fault campaign of `quancun bench --faults`: kiosks load
// continuously while the harness SIGKILLs the FEP at random moments and restarts it, and a
// fault proxy (bench/faultproxy) in front of every bank and the platform drops, delays,
// duplicates and reorders messages, cuts links and turns them into black holes for a while;
// kiosks pull cards at random steps and one bank card never gets an answer (a bank timeout).
// Then the faults stop, the system settles (every card is presented once more so pending
// re-writes and U resolutions finish, the FEP is restarted until nothing is unfinished) and
// the money check of DESIGN section 10 is computed from the peers' own books.
//
// It judges only from the books and the kiosks' receipts, never from the FEP's word: the
// FEP's store is read for "stuck" (unfinished transactions) and for the breakdown by final
// state, both of which the money check also requires.
package campaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/bench/faultproxy"
	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/persistence"
)

// Options of one campaign. Zero values take the defaults noted.
type Options struct {
	Bin      string        // the quancun binary the peers run from (required)
	Dir      string        // work dir: configs, books, card files, every process's log (required)
	Duration time.Duration // of the loading under faults; default 60s
	Kiosks   int           // concurrent kiosks; default 4
	Cards    int           // city cards shared by the kiosks; default 2 x Kiosks
	Kills    int           // at least this many SIGKILLs of the FEP; default Duration/3s
	Seed     uint64        // 0 = from the clock (printed, so a run can be repeated)
	Out      io.Writer     // report and progress lines; nil = discard
	Progress time.Duration // progress line interval; default 5s, <0 = none
	// Faults on every proxied link while loading; zero = DefaultFaults.
	Faults *faultproxy.Faults
}

// DefaultFaults is what each link suffers while the kiosks load: a few per cent of the
// messages dropped, delayed, duplicated or reordered, and now and then a cut.
var DefaultFaults = faultproxy.Faults{Drop: 0.02, Delay: 0.05, DelayMin: 20 * time.Millisecond,
	DelayMax: 400 * time.Millisecond, Duplicate: 0.03, Reorder: 0.03, Cut: 0.004, HoldMax: 500 * time.Millisecond}

const (
	bankA = "BANKA00001"
	bankB = "BANKB00002"
)

// The bank cards: two that pay, one the bank never answers (the timeout scenario).
var (
	payA      = world.Account{Bank: bankA, PAN: "6222021234567890123", PIN: "123456", Balance: 1_000_000_000}
	payB      = world.Account{Bank: bankB, PAN: "6217001234567890128", PIN: "654321", Balance: 1_000_000_000}
	paySilent = world.Account{Bank: bankA, PAN: "6222020000000000001", PIN: "222222", Balance: 1_000_000_000, Silent: true}
	banks     = []string{bankA, bankB}
)

// Result is what the campaign measured.
type Result struct {
	Seed      uint64
	Kills     int // SIGKILLs after which the FEP came back and served again
	Loads     int // loads the kiosks attempted (settling rounds excluded)
	Errors    int // loads the kiosk could not finish (link gone mid-load, FEP down)
	Codes     map[kiosk.Code]int
	Written   int // kiosk confirmed S
	Failed    int // F
	Unknown   int // U
	NoConfirm int // approved, no CONFIRM answered (kiosk crash steps, FEP killed)
	Rewrites  int // pending loads the kiosks settled (applied)
	Silent    int // loads tried with the silent bank card
	SilentOK  bool
	// From the books.
	Reversals map[string]int // per bank: reversals received
	Final     map[string]int // FEP loads by final state (outcome)
	Proxies   map[string]faultproxy.Stats
	Lost      int // standing debits never booked + cards short of their written loads
	Invented  int // bookings without a standing debit + cards holding more than was booked
	Stuck     int // FEP transactions unfinished at the end
	Check     moneycheck.Report
	Took      time.Duration
}

// Passed: the money check passed, nothing lost, nothing stuck.
func (r Result) Passed() bool {
	return r.Check.Passed() && r.Lost == 0 && r.Stuck == 0 && r.Invented == 0
}

// tally collects kiosk results from the loading goroutines.
type tally struct {
	mu  sync.Mutex
	res Result
}

func (t *tally) add(silent bool, r simkiosk.Result, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.Loads++
	if err != nil {
		t.res.Errors++
	}
	t.res.Codes[r.Code]++
	switch r.Write {
	case kiosk.Written:
		t.res.Written++
	case kiosk.Failed:
		t.res.Failed++
	case kiosk.Unknown:
		t.res.Unknown++
	}
	if r.Code == kiosk.Approved && r.ConfirmCode == "" {
		t.res.NoConfirm++
	}
	for _, rw := range r.Rewrites {
		if rw.Applied {
			t.res.Rewrites++
		}
	}
	if silent {
		t.res.Silent++
		if r.Code == kiosk.Approved {
			t.res.SilentOK = false // the bank never answers it: approval would be a lie
		}
	}
}

func (t *tally) snapshot() Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.res
}

// Run runs the campaign. err is for what kept it from running or judging at all; a failed
// money check is a Result that does not pass.
func Run(ctx context.Context, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	out := o.Out
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Result{}, err
	}
	logFile, err := os.OpenFile(filepath.Join(o.Dir, "kiosks.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Result{}, err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	proxies := map[string]*faultproxy.Proxy{}
	var names []string
	defer func() {
		for _, p := range proxies {
			p.Close()
		}
	}()
	interpose := func(link, addr string) (string, error) {
		p, err := faultproxy.New(addr, faultproxy.Options{Seed: o.Seed + uint64(len(proxies)) + 1, Name: link,
			Logger: log.With("component", "faultproxy")})
		if err != nil {
			return "", err
		}
		proxies[link] = p
		names = append(names, link)
		return p.Addr(), nil
	}
	var cards []world.CardSpec
	for i := range o.Cards {
		cards = append(cards, world.CardSpec{Name: fmt.Sprintf("card-%02d", i+1), Serial: fmt.Sprintf("%016d", 7700000001+i)})
	}
	say("== fault campaign: seed %d, %s of loading, %d kiosks, %d cards, at least %d FEP kills (work dir %s)",
		o.Seed, o.Duration, o.Kiosks, o.Cards, o.Kills, o.Dir)
	w, err := world.Start(ctx, world.Options{Bin: o.Bin, Dir: o.Dir, Banks: banks,
		Accounts: []world.Account{payA, payB, paySilent}, Cards: cards, Kiosks: o.Kiosks, Interpose: interpose,
		Logger: log, KioskTimeouts: simkiosk.Timeouts{Load: 25 * time.Second, Confirm: 3 * time.Second, Connect: 2 * time.Second}})
	if err != nil {
		return Result{}, err
	}
	defer w.Stop()
	sort.Strings(names)
	say("   up: platform, %d banks and the FEP as processes, a fault proxy on %s", len(banks), strings.Join(names, ", "))

	t := &tally{res: Result{Seed: o.Seed, Codes: map[kiosk.Code]int{}, SilentOK: true}}
	for _, p := range proxies {
		p.SetFaults(*o.Faults)
	}

	// Load, break and kill until the duration has passed and enough kills happened.
	var stop atomic.Bool
	var kills atomic.Int64
	var wg sync.WaitGroup
	for i, k := range w.Kiosks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loadLoop(ctx, w, k, o.Seed+uint64(100+i), &stop, t)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		conduct(ctx, proxies, names, o.Seed+7, &stop)
	}()
	progressDone := make(chan struct{})
	if o.Progress > 0 {
		go func() {
			tk := time.NewTicker(o.Progress)
			defer tk.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-tk.C:
					s := t.snapshot()
					say("   %5.0fs kills=%d loads=%d approved=%d errors=%d write S=%d F=%d U=%d",
						time.Since(start).Seconds(), kills.Load(), s.Loads, s.Codes[kiosk.Approved], s.Errors, s.Written, s.Failed, s.Unknown)
				}
			}
		}()
	}
	killErr := killLoop(ctx, w, o, &kills, log)
	stop.Store(true)
	wg.Wait()
	close(progressDone)
	res := t.snapshot()
	res.Kills = int(kills.Load())
	if killErr != nil {
		return res, killErr
	}
	say("   loading done after %s: %d kills, %d loads", time.Since(start).Round(time.Second), res.Kills, res.Loads)

	// Settle: links clean, every card presented again, FEP restarted until nothing is open.
	for _, p := range proxies {
		p.SetFaults(faultproxy.None)
		p.Resume()
	}
	say("== settling: faults off, every card loaded once more, FEP restarted until nothing is unfinished")
	if err := settle(ctx, w, say); err != nil {
		return res, err
	}
	stuck, err := finish(ctx, w, o.Dir, say)
	if err != nil {
		return res, err
	}
	res.Proxies = map[string]faultproxy.Stats{}
	for n, p := range proxies {
		res.Proxies[n] = p.Stats()
	}
	w.Stop()
	for _, code := range banks {
		if _, _, err := simbank.WriteSettlement(w.BankDir(code), time.Now().Format("20060102")); err != nil {
			say("   settlement file for %s: %v", code, err)
		}
	}
	in, err := w.Books()
	if err != nil {
		return res, err
	}
	res.Stuck = max(stuck, in.Unfinished)
	res.Check = moneycheck.Check(in)
	res.Lost, res.Invented = lostAndInvented(in)
	res.Reversals = map[string]int{}
	for code, l := range in.Banks {
		res.Reversals[code] = len(l.Reversals)
	}
	if res.Final, err = finalStates(filepath.Join(o.Dir, "fep")); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	Report(out, res)
	return res, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Bin == "" || o.Dir == "" {
		return o, errors.New("campaign: Bin and Dir are required")
	}
	if o.Duration <= 0 {
		o.Duration = 60 * time.Second
	}
	if o.Kiosks <= 0 {
		o.Kiosks = 4
	}
	if o.Cards <= 0 {
		o.Cards = 2 * o.Kiosks
	}
	if o.Kills <= 0 {
		o.Kills = max(1, int(o.Duration/(3*time.Second)))
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == 0 {
		o.Progress = 5 * time.Second
	}
	if o.Faults == nil {
		f := DefaultFaults
		o.Faults = &f
	}
	return o, nil
}

// loadLoop is one kiosk: a random free card, payer, amount and interruption, again and
// again. A card is on one kiosk at a time (Card.Hold).
func loadLoop(ctx context.Context, w *world.World, k *simkiosk.Kiosk, seed uint64, stop *atomic.Bool, t *tally) {
	rng := rand.New(rand.NewPCG(seed, 1))
	names := make([]string, 0, len(w.Cards))
	for n := range w.Cards {
		names = append(names, n)
	}
	sort.Strings(names)
	pulls := simkiosk.Steps()[1:]
	for !stop.Load() && ctx.Err() == nil {
		c := w.Cards[names[rng.IntN(len(names))]]
		payer := payA
		switch x := rng.Float64(); {
		case x < 0.04:
			payer = paySilent
		case x < 0.52:
			payer = payB
		}
		amount := 100 + rng.Int64N(4901)
		pull := simkiosk.PullNone
		if rng.Float64() < 0.3 {
			pull = pulls[rng.IntN(len(pulls))]
		}
		release := c.Hold()
		lctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		res, err := k.Load(lctx, simkiosk.LoadParams{Card: c.Slot, Amount: amount, BankCode: payer.Bank,
			PAN: payer.PAN, PIN: payer.PIN, PullAt: pull})
		cancel()
		c.Slot.Insert() // the holder takes the card back; the next visitor puts it down again
		release()
		t.add(payer.Silent, res, err)
		if err != nil || res.Code != kiosk.Approved {
			// A refused or broken load: the holder waits a moment before trying again, so a
			// link that is down is not hammered with thousands of fast refusals.
			sleep(ctx, time.Duration(200+rng.IntN(400))*time.Millisecond)
		}
	}
}

// conduct pauses one link now and then (a black hole for 0.5-2.5 s: a peer that hangs).
func conduct(ctx context.Context, proxies map[string]*faultproxy.Proxy, names []string, seed uint64, stop *atomic.Bool) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for !stop.Load() && ctx.Err() == nil {
		sleep(ctx, time.Duration(3000+rng.IntN(4000))*time.Millisecond)
		if stop.Load() {
			return
		}
		p := proxies[names[rng.IntN(len(names))]]
		p.Pause()
		sleep(ctx, time.Duration(500+rng.IntN(2000))*time.Millisecond)
		p.Resume()
	}
}

// killLoop SIGKILLs the FEP at random moments and restarts it, until the duration has
// passed and at least Kills kills happened (bounded at twice the duration).
func killLoop(ctx context.Context, w *world.World, o Options, kills *atomic.Int64, log *slog.Logger) error {
	rng := rand.New(rand.NewPCG(o.Seed, 3))
	start := time.Now()
	gap := o.Duration / time.Duration(o.Kills)
	hard := start.Add(2*o.Duration + 30*time.Second)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n := int(kills.Load())
		if time.Since(start) >= o.Duration && n >= o.Kills {
			return nil
		}
		if time.Now().After(hard) {
			return nil // reported as fewer kills than asked
		}
		// Random moments, on average a bit more often than needed: restarts take time too.
		sleep(ctx, time.Duration(float64(gap)*(0.4+0.5*rng.Float64())))
		log.Info("campaign: SIGKILL the FEP", "n", n+1)
		if err := w.FEP.Kill(); err != nil {
			return fmt.Errorf("kill FEP: %w", err)
		}
		if err := restartFEP(ctx, w); err != nil {
			return err
		}
		kills.Add(1)
	}
}

// restartFEP starts the FEP again, retrying a start that failed (a port still held).
func restartFEP(ctx context.Context, w *world.World) error {
	return world.Retry(ctx, 30*time.Second, func() error { return w.StartFEP(ctx) })
}

// settle presents every card once more with a payer that answers until its load is
// approved, written (S), confirmed and every pending load of the card is on it — the
// re-writes and U resolutions of what the faults left behind — bounded in rounds and time.
func settle(ctx context.Context, w *world.World, say func(string, ...any)) error {
	// Past the confirm (3s) and bank (3s) deadlines of loads still in flight.
	sleep(ctx, 4*time.Second)
	var names []string
	for n := range w.Cards {
		names = append(names, n)
	}
	sort.Strings(names)
	open := names
	deadline := time.Now().Add(90 * time.Second)
	for round := 1; len(open) > 0 && time.Now().Before(deadline); round++ {
		var mu sync.Mutex
		var still []string
		var wg sync.WaitGroup
		for i, k := range w.Kiosks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := i; j < len(open); j += len(w.Kiosks) {
					c := w.Cards[open[j]]
					release := c.Hold()
					lctx, cancel := context.WithTimeout(ctx, 40*time.Second)
					res, err := k.Load(lctx, simkiosk.LoadParams{Card: c.Slot, Amount: 100, BankCode: payA.Bank, PAN: payA.PAN, PIN: payA.PIN})
					cancel()
					release()
					clean := err == nil && res.Code == kiosk.Approved && res.Write == kiosk.Written && res.ConfirmCode == kiosk.Approved
					for _, rw := range res.Rewrites {
						clean = clean && rw.Applied
					}
					if !clean {
						mu.Lock()
						still = append(still, open[j])
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		sort.Strings(still)
		say("   round %d: %d of %d cards clean", round, len(open)-len(still), len(open))
		open = still
		if len(open) > 0 {
			sleep(ctx, 2*time.Second)
		}
	}
	if len(open) > 0 {
		say("   cards still not clean after settling: %s", strings.Join(open, ", "))
	}
	return ctx.Err()
}

// finish stops the FEP and counts its unfinished transactions; while some remain it
// restarts the FEP (recovery resumes them: reversals repeated, confirms re-sent) and waits,
// a bounded number of times. It returns the last count.
func finish(ctx context.Context, w *world.World, dir string, say func(string, ...any)) (int, error) {
	n := -1
	for try := 1; try <= 8; try++ {
		sleep(ctx, 3*time.Second)
		if err := w.FEP.Stop(10 * time.Second); err != nil {
			return n, err
		}
		var err error
		if n, err = world.Unfinished(filepath.Join(dir, "fep")); err != nil {
			return n, err
		}
		say("   FEP stopped: %d transactions unfinished", n)
		if n == 0 {
			return 0, nil
		}
		if err := restartFEP(ctx, w); err != nil {
			return n, err
		}
		sleep(ctx, 5*time.Second)
	}
	return n, nil
}

// lostAndInvented counts, from the books, money that left a customer without arriving
// anywhere (a standing debit nobody booked, a card missing loads it confirmed written) and
// money that appeared from nowhere (a booking without a debit, a card holding more than
// every load booked for it).
func lostAndInvented(in moneycheck.Input) (lost, invented int) {
	if in.Platform == nil {
		return 0, 0
	}
	booked := map[string]bool{} // bank/RRN
	written, all := map[string]int64{}, map[string]int64{}
	for _, l := range in.Platform.Loads() {
		if !l.Booked {
			continue
		}
		booked[l.BankCode+"/"+l.BankRRN] = true
		all[l.Card] += l.Amount
		if l.Write == 'S' {
			written[l.Card] += l.Amount
		}
	}
	standing := map[string]bool{}
	for code, l := range in.Banks {
		for _, d := range l.Debits {
			if d.Approved() && !d.Reversed {
				standing[code+"/"+d.RRN] = true
				if !booked[code+"/"+d.RRN] {
					lost++
				}
			}
		}
	}
	for k := range booked {
		if !standing[k] {
			invented++
		}
	}
	for _, c := range in.Cards {
		bal := int64(c.State.Balance)
		if bal < c.StartBalance+written[c.Serial] {
			lost++
		}
		if bal > c.StartBalance+all[c.Serial] {
			invented++
		}
	}
	return lost, invented
}

// finalStates counts the FEP's loads by outcome ("open" for unfinished ones).
func finalStates(dir string) (map[string]int, error) {
	s, err := persistence.Open(dir, persistence.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("open FEP store: %w", err)
	}
	defer s.Close()
	out := map[string]int{}
	err = s.Scan(persistence.Key("txn"), func(_, v []byte) error {
		r, err := loads.DecodeRecord(v)
		if err != nil {
			return err
		}
		k := string(r.State.Outcome)
		if !r.State.Final() {
			k = "open:" + string(r.State.Phase)
		}
		out[k]++
		return nil
	})
	return out, err
}

// Report prints the result; the last line is the money check's.
func Report(out io.Writer, r Result) {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	say("== fault campaign report (seed %d, %s)", r.Seed, r.Took.Round(time.Second))
	say("kills survived: %d", r.Kills)
	say("loads: %d attempted, %d kiosk errors (link gone mid-load or FEP down); kiosk codes %s", r.Loads, r.Errors, countLine(codeCounts(r.Codes)))
	say("kiosk write status: S=%d F=%d U=%d, approved without an answered confirm=%d, pending loads settled=%d", r.Written, r.Failed, r.Unknown, r.NoConfirm, r.Rewrites)
	silent := "never approved, as it must be"
	if !r.SilentOK {
		silent = "APPROVED at least once"
	}
	say("bank timeout (silent PAN): %d loads, %s", r.Silent, silent)
	say("bank reversals: %s", countLine(r.Reversals))
	say("FEP loads by final state: %s", countLine(r.Final))
	var pl []string
	for _, n := range sortedKeys(r.Proxies) {
		s := r.Proxies[n]
		pl = append(pl, fmt.Sprintf("%s conns=%d fwd=%d drop=%d delay=%d dup=%d reorder=%d cut=%d", n, s.Conns, s.Forwarded, s.Dropped, s.Delayed, s.Duplicated, s.Reordered, s.Cuts))
	}
	say("faults: %s", strings.Join(pl, "; "))
	say("lost: %d", r.Lost)
	say("invented: %d", r.Invented)
	say("stuck: %d", r.Stuck)
	say("%s", r.Check.Line())
}

func codeCounts(m map[kiosk.Code]int) map[string]int {
	out := map[string]int{}
	for c, n := range m {
		k := string(c)
		if k == "" {
			k = "none"
		}
		out[k] += n
	}
	return out
}

func countLine(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
