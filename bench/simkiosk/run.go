package simkiosk

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/kiosk"
)

// CardSlot is one card as people move it between kiosks: a virtual card in an in-process
// reader, or whatever card lies on a PC/SC reader. A card is on one reader at a time, so a
// slot is held for a whole load (Use); kiosks that share cards take turns.
type CardSlot struct {
	Name   string
	Card   *vcard.Card // nil for a PC/SC slot
	Reader card.Reader
	mu     sync.Mutex
}

// NewCardSlot puts a virtual card in an in-process reader the kiosk can pull.
func NewCardSlot(name string, c *vcard.Card) *CardSlot {
	return &CardSlot{Name: name, Card: c, Reader: card.NewInProcessReader(c)}
}

// ReaderSlot is a slot on a real (PC/SC) reader.
func ReaderSlot(name string, r card.Reader) *CardSlot { return &CardSlot{Name: name, Reader: r} }

// Use runs one load on the slot's card, waiting while another kiosk has the card.
func (s *CardSlot) Use(ctx context.Context, k *Kiosk, p LoadParams) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Card = s.Reader
	return k.Load(ctx, p)
}

// CardSource finds a script step's card.
type CardSource interface {
	Slot(name string) (*CardSlot, error)
}

// CardDir is a directory of virtual card files (docs/card-file.md), opened on first use;
// every credit is written back to its file before the card answers, as `quancun sim card`
// does. Safe for concurrent use.
type CardDir struct {
	dir   string
	log   *slog.Logger
	mu    sync.Mutex
	slots map[string]*CardSlot
}

// OpenCardDir returns the card files of dir; nothing is read yet.
func OpenCardDir(dir string, log *slog.Logger) *CardDir {
	if log == nil {
		log = slog.Default()
	}
	return &CardDir{dir: dir, log: log, slots: map[string]*CardSlot{}}
}

// Slot opens the card file name (relative to the directory) once and returns its slot.
func (d *CardDir) Slot(name string) (*CardSlot, error) {
	clean := filepath.Clean(name)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("simkiosk: card %q: must be a file inside %s", name, d.dir)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.slots[clean]; ok {
		return s, nil
	}
	c, err := vcard.LoadCard(filepath.Join(d.dir, clean), vcard.WithLogger(d.log))
	if err != nil {
		return nil, err
	}
	s := NewCardSlot(clean, c)
	d.slots[clean] = s
	return s, nil
}

// All opens every *.json file of the directory that is a card file, sorted by name; other
// JSON files (a PSAM file next to the cards) are skipped.
func (d *CardDir) All() ([]*CardSlot, error) {
	names, err := filepath.Glob(filepath.Join(d.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*CardSlot
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		if _, err := vcard.ParseCardFile(b); err != nil {
			d.log.Debug("simkiosk: not a card file, skipped", "file", n, "err", err)
			continue
		}
		s, err := d.Slot(filepath.Base(n))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("simkiosk: no card files in %s", d.dir)
	}
	return out, nil
}

// OneSlot serves the same slot for every card name: a kiosk with one PC/SC reader, where
// the person running the script puts the named card on it.
type OneSlot struct{ S *CardSlot }

// Slot returns the one slot.
func (o OneSlot) Slot(string) (*CardSlot, error) { return o.S, nil }

// Report is one load of a run.
type Report struct {
	N        int // 1-based
	Terminal string
	Card     string // slot name
	Amount   int64
	Pull     Step
	Result   Result
	Err      error
	Mismatch string // scripted runs: what differed from the step's expectations; "" = as expected
}

// OK says the load went as expected (scripted) or without error (random).
func (r Report) OK() bool { return r.Err == nil && r.Mismatch == "" }

// String is the CLI's line for the load.
func (r Report) String() string {
	s := fmt.Sprintf("#%d %s %s amount=%d pull=%s %s", r.N, r.Terminal, r.Card, r.Amount, r.Pull, r.Result)
	if r.Err != nil {
		s += " error: " + r.Err.Error()
	}
	if r.Mismatch != "" {
		s += " MISMATCH: " + r.Mismatch
	}
	return s
}

// RunScript runs the script's steps in order on k. onReport (may be nil) sees each report
// as it is made, for a live CLI. The error is for a card that cannot be opened; load
// failures are in the reports.
func RunScript(ctx context.Context, k *Kiosk, s Script, cards CardSource, onReport func(Report)) ([]Report, error) {
	var out []Report
	for i, st := range s.Steps {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		slot, err := cards.Slot(st.Card)
		if err != nil {
			return out, fmt.Errorf("step %d: %w", i+1, err)
		}
		res, err := slot.Use(ctx, k, st.Params(slot))
		rep := Report{N: i + 1, Terminal: k.Terminal(), Card: st.Card, Amount: st.Amount, Pull: st.Pull, Result: res, Err: err}
		rep.Mismatch = st.check(res, err)
		if err != nil && rep.Mismatch == "" {
			rep.Mismatch = "error"
		}
		out = append(out, rep)
		if onReport != nil {
			onReport(rep)
		}
	}
	return out, nil
}

// Payer is a bank card that pays for loads.
type Payer struct {
	BankCode string
	PAN      string
	PIN      string // "" = no PIN
}

// RandomOptions shape a random run.
type RandomOptions struct {
	Seed      int64   // 0 = from the clock
	MinAmount int64   // fen; default 100
	MaxAmount int64   // fen; default 5000
	Payers    []Payer // drawn uniformly; required
	// PullRate is the probability that a load is interrupted, at a step drawn from Pulls
	// (default: every step but PullNone that the slot allows).
	PullRate float64
	Pulls    []Step
}

// RandomRun makes n loads on k with random cards from slots, amounts, payers and (with
// PullRate) interruptions, one after the other, and reports each. Run one RandomRun per
// kiosk, concurrently, for a bench; kiosks sharing slots take turns on each card.
func RandomRun(ctx context.Context, k *Kiosk, slots []*CardSlot, n int, o RandomOptions, onReport func(Report)) ([]Report, error) {
	if len(slots) == 0 || len(o.Payers) == 0 {
		return nil, fmt.Errorf("%w: a random run needs cards and payers", ErrConfig)
	}
	if o.MinAmount <= 0 {
		o.MinAmount = 100
	}
	if o.MaxAmount <= 0 {
		o.MaxAmount = 5000
	}
	if o.MaxAmount < o.MinAmount {
		return nil, fmt.Errorf("%w: max amount %d < min amount %d", ErrConfig, o.MaxAmount, o.MinAmount)
	}
	seed := o.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	rnd := rand.New(rand.NewPCG(uint64(seed), uint64(len(k.Terminal()))))
	var out []Report
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		slot := slots[rnd.IntN(len(slots))]
		payer := o.Payers[rnd.IntN(len(o.Payers))]
		amount := o.MinAmount + rnd.Int64N(o.MaxAmount-o.MinAmount+1)
		pull := PullNone
		if o.PullRate > 0 && rnd.Float64() < o.PullRate {
			pulls := o.Pulls
			if len(pulls) == 0 {
				_, canPull := slot.Reader.(Puller)
				for _, s := range Steps()[1:] {
					if canPull || !s.needsPuller() {
						pulls = append(pulls, s)
					}
				}
			}
			pull = pulls[rnd.IntN(len(pulls))]
		}
		res, err := slot.Use(ctx, k, LoadParams{Amount: amount, BankCode: payer.BankCode, PAN: payer.PAN, PIN: payer.PIN, PullAt: pull})
		rep := Report{N: i + 1, Terminal: k.Terminal(), Card: slot.Name, Amount: amount, Pull: pull, Result: res, Err: err}
		out = append(out, rep)
		if onReport != nil {
			onReport(rep)
		}
	}
	return out, nil
}

// Summary is the totals of a run.
type Summary struct {
	Loads      int
	Errors     int
	Mismatches int
	Codes      map[kiosk.Code]int // LOAD RESPONSE codes; "" = none
	Written    int                // S
	Failed     int                // F confirmed
	Unknown    int                // U confirmed
	NoConfirm  int                // approved, no CONFIRM sent or answered
	Rewrites   int                // pending loads handled
	Settled    int                // pending loads now on the card
	Credited   int64              // fen the kiosk saw arrive on cards (loads + re-writes + applied U)
	P50, P95   time.Duration
	P99, Max   time.Duration
}

// Summarize totals reports.
func Summarize(reps []Report) Summary {
	s := Summary{Codes: map[kiosk.Code]int{}}
	var lat []time.Duration
	for _, r := range reps {
		s.Loads++
		if r.Err != nil {
			s.Errors++
		}
		if r.Mismatch != "" {
			s.Mismatches++
		}
		s.Codes[r.Result.Code]++
		switch r.Result.Write {
		case kiosk.Written:
			s.Written++
		case kiosk.Failed:
			s.Failed++
		case kiosk.Unknown:
			s.Unknown++
		}
		if r.Result.Code == kiosk.Approved && r.Result.ConfirmCode == "" {
			s.NoConfirm++
		}
		s.Credited += r.Result.BalanceAfter - r.Result.BalanceBefore
		for _, rw := range r.Result.Rewrites {
			s.Rewrites++
			if rw.Applied {
				s.Settled++
			}
		}
		lat = append(lat, r.Result.Latency)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		s.P50, s.P95, s.P99, s.Max = q(0.50), q(0.95), q(0.99), lat[len(lat)-1]
	}
	return s
}

// String is the summary line of the CLI.
func (s Summary) String() string {
	codes := make([]string, 0, len(s.Codes))
	for c, n := range s.Codes {
		codes = append(codes, fmt.Sprintf("%s:%d", orDash(string(c)), n))
	}
	sort.Strings(codes)
	return fmt.Sprintf("loads=%d errors=%d mismatches=%d codes=[%s] write S=%d F=%d U=%d no-confirm=%d rewrites=%d settled=%d credited=%d fen latency p50=%s p95=%s p99=%s max=%s",
		s.Loads, s.Errors, s.Mismatches, strings.Join(codes, " "), s.Written, s.Failed, s.Unknown, s.NoConfirm,
		s.Rewrites, s.Settled, s.Credited, s.P50.Round(time.Microsecond), s.P95.Round(time.Microsecond),
		s.P99.Round(time.Microsecond), s.Max.Round(time.Microsecond))
}
