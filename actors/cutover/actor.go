package cutover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/quancun/quancun/actors/platformlink"
	"github.com/quancun/quancun/persistence"
)

// Store is what the actor needs of persistence.Store.
type Store interface {
	Reader
	Commit(ctx context.Context, ops ...persistence.Op) error
}

// Config of the business day actor.
type Config struct {
	Calendar Calendar
	// Delay is the N of T+N (DefaultDelay when zero).
	Delay int
	// SignTimeout bounds the wait for the platform session's answer to SignOut and SignIn;
	// past it the cutover goes on (the session signs in by itself once it can). Default 15s.
	SignTimeout time.Duration
	// RetryAfter is the wait before a failed file job is tried again. Default 1m.
	RetryAfter time.Duration
	// MaxCatchUp bounds how many accounting dates back a start looks for files never sent.
	// Default 31.
	MaxCatchUp int
	// TickEvery caps the timer between clock checks, so a clock step or a failed cutover is
	// noticed soon. Default 1m.
	TickEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Delay <= 0 {
		c.Delay = DefaultDelay
	}
	if c.SignTimeout <= 0 {
		c.SignTimeout = 15 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Minute
	}
	if c.MaxCatchUp <= 0 {
		c.MaxCatchUp = 31
	}
	if c.TickEvery <= 0 {
		c.TickEvery = time.Minute
	}
	return c
}

// Deps are what the FEP root hands the actor.
type Deps struct {
	Store Store
	// Platform is the platform session actor (platformlink); nil: no sign-out/in.
	Platform *actor.PID
	// Produce builds the reconciliation file of an accounting date (name and bytes), from
	// the store as it is now (recon/fepstore). Nil: no files.
	Produce func(date string) (name string, data []byte, err error)
	// Upload delivers a file, retrying until it is there or ctx ends (io/ftpup.Upload).
	// Nil: files are produced (and kept by Produce) but not uploaded, and not marked sent.
	Upload func(ctx context.Context, name string, data []byte) error
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Tick asks the actor to look at the clock now (its own timer sends it too): when the rule's
// business date is past the FEP's, the cutover runs. Tests move an injected clock and Tick.
type Tick struct{}

// StatusRequest is answered with Status.
type StatusRequest struct{}

// Status is the business day as the actor sees it.
type Status struct {
	Date     string    // the FEP's business date ("" before the first one is recorded)
	OpenedAt time.Time // when it opened
	Busy     bool      // a cutover is signing out or in
	Job      string    // the accounting date whose file is being produced or uploaded
	Queue    []string  // dates waiting for their file
}

// pendingKey is set (to the new date) while a cutover has the session signed out, so an
// actor that restarts in between signs it in again.
func pendingKey() []byte { return persistence.Key("bizday-cutover") }

// Props is the business day actor.
func Props(cfg Config, deps Deps) *actor.Props {
	cfg = cfg.withDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	deps.Logger = deps.Logger.With("component", "cutover")
	return actor.PropsFromProducer(func() actor.Actor { return &businessDay{cfg: cfg, d: deps} })
}

type businessDay struct {
	cfg Config
	d   Deps

	cur     Day
	first   string // oldest business date recorded: no file is due before it
	started bool   // the first Tick after Started has run
	busy    bool

	sched  *scheduler.TimerScheduler
	timer  scheduler.CancelFunc
	queue  []string
	job    string
	stop   context.CancelFunc
	jobCtx context.Context
	done   map[string]bool // produced this run without an uploader
}

// Internal messages.
type (
	jobDone struct {
		date string
		sent Sent
		err  error
	}
	retryJobs struct{}
)

func (b *businessDay) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		b.sched = scheduler.NewTimerScheduler(ctx)
		b.jobCtx, b.stop = context.WithCancel(context.Background())
		b.done = map[string]bool{}
		if err := b.load(); err != nil {
			b.d.Logger.Error("business day: read store", "err", err)
		}
		b.resumePending(ctx)
		ctx.Send(ctx.Self(), Tick{})
	case *actor.Stopping, *actor.Restarting:
		if b.stop != nil {
			b.stop()
		}
		if b.timer != nil {
			b.timer()
		}
	case Tick, *Tick:
		b.tick(ctx)
	case StatusRequest, *StatusRequest:
		ctx.Respond(Status{Date: b.cur.Date, OpenedAt: b.cur.OpenedAt, Busy: b.busy, Job: b.job,
			Queue: slices.Clone(b.queue)})
	case jobDone:
		b.jobDone(ctx, m)
	case retryJobs:
		b.schedule(ctx)
	}
}

func (b *businessDay) load() error {
	days, err := LoadHistory(b.d.Store)
	if err != nil {
		return err
	}
	if len(days) > 0 {
		b.cur, b.first = days[len(days)-1], days[0].Date
		for _, d := range days {
			b.first = min(b.first, d.Date)
		}
	}
	return nil
}

// resumePending signs the session in again when a cutover was interrupted between its
// SIGN-OUT and SIGN-IN (the session would otherwise stay out until the next cutover).
func (b *businessDay) resumePending(ctx actor.Context) {
	v, err := b.d.Store.Get(pendingKey())
	if err != nil {
		return // ErrNotFound: nothing pending
	}
	b.d.Logger.Warn("business day: a cutover was interrupted; signing the platform in again", "date", string(v))
	b.busy = true
	b.signIn(ctx, string(v))
}

func (b *businessDay) tick(ctx actor.Context) {
	now := b.d.Now()
	want := b.cfg.Calendar.DateAt(now)
	firstTick := !b.started
	b.started = true
	switch {
	case b.busy:
	case b.cur.Date == "":
		// The first start of this store: the FEP's first business date opens now.
		if b.open(Day{Date: want, OpenedAt: now}, nil) {
			b.first = want
			b.d.Logger.Info("business day: first business date", "date", want)
			b.schedule(ctx)
		}
	case want > b.cur.Date && firstTick:
		// The FEP was down over one or more cutovers. The platform session signs in afresh
		// (a new batch) as the FEP starts, so there is nothing to sign out; the date opened
		// when the rule says, and no load can have run since.
		at, _ := b.cfg.Calendar.Opening(want)
		if !at.After(b.cur.OpenedAt) || at.After(now) {
			at = now
		}
		if b.open(Day{Date: want, OpenedAt: at}, nil) {
			b.d.Logger.Info("business day: caught up after a stop", "from", b.cur.Date, "date", want)
			b.schedule(ctx)
		}
	case want > b.cur.Date:
		b.cutover(ctx, want)
	default:
		if firstTick {
			b.schedule(ctx)
		}
	}
	b.arm(ctx, now)
}

// arm sets the timer to the next cutover, at most TickEvery away.
func (b *businessDay) arm(ctx actor.Context, now time.Time) {
	if b.timer != nil {
		b.timer()
	}
	wait := min(b.cfg.Calendar.Next(now).Sub(now), b.cfg.TickEvery)
	b.timer = b.sched.SendOnce(max(wait, 10*time.Millisecond), ctx.Self(), Tick{})
}

// open records d as the current business date (and ops with it), synced. The actor blocks
// on the one sync: once a day, and nothing else waits on this actor.
func (b *businessDay) open(d Day, extra []persistence.Op) bool {
	v, _ := json.Marshal(d)
	ops := append([]persistence.Op{{Key: DayKey(d.Date), Value: v}}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.d.Store.Commit(ctx, ops...); err != nil {
		b.d.Logger.Error("business day: cannot record the new date; retrying at the next tick", "date", d.Date, "err", err)
		return false
	}
	b.cur = d
	return true
}

// cutover: record the new date (with the pending mark), sign out (closes the batch), sign
// in (a new batch), clear the mark, then see which files are due.
func (b *businessDay) cutover(ctx actor.Context, want string) {
	from := b.cur.Date
	if !b.open(Day{Date: want, OpenedAt: b.d.Now()}, []persistence.Op{{Key: pendingKey(), Value: []byte(want)}}) {
		return
	}
	b.busy = true
	b.d.Logger.Info("business day: cutover", "from", from, "date", want)
	if b.d.Platform == nil {
		b.signedIn(ctx, want)
		return
	}
	f := ctx.RequestFuture(b.d.Platform, platformlink.SignOut{}, b.cfg.SignTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err != nil {
			b.d.Logger.Warn("business day: platform sign-out not confirmed; signing in anyway", "err", err)
		} else if st, ok := status(res); ok {
			b.d.Logger.Info("business day: platform signed out", "closed_batch", st.Batch)
		}
		b.signIn(ctx, want)
	})
}

func (b *businessDay) signIn(ctx actor.Context, date string) {
	if b.d.Platform == nil {
		b.signedIn(ctx, date)
		return
	}
	f := ctx.RequestFuture(b.d.Platform, platformlink.SignIn{}, b.cfg.SignTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err != nil {
			// The session keeps trying by itself: SignIn set it wanting a session.
			b.d.Logger.Warn("business day: platform sign-in not confirmed yet", "err", err)
		} else if st, ok := status(res); ok {
			b.d.Logger.Info("business day: platform signed in", "batch", st.Batch, "date", date)
		}
		b.signedIn(ctx, date)
	})
}

func (b *businessDay) signedIn(ctx actor.Context, date string) {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.d.Store.Commit(c, persistence.Op{Key: pendingKey(), Delete: true}); err != nil {
		b.d.Logger.Error("business day: clear cutover mark", "err", err)
	}
	b.busy = false
	b.schedule(ctx)
}

func status(res any) (platformlink.Status, bool) {
	switch s := res.(type) {
	case platformlink.Status:
		return s, true
	case *platformlink.Status:
		return *s, true
	}
	return platformlink.Status{}, false
}

// Due lists the accounting dates whose file is due on business date cur and not yet sent:
// from first (or cur-delay-maxBack) through cur-delay, oldest first.
func Due(s Reader, first, cur string, delay, maxBack int) ([]string, error) {
	last := AddDays(cur, -delay)
	from := AddDays(last, -maxBack+1)
	if first > from {
		from = first
	}
	var out []string
	for d := from; d != "" && d <= last; d = AddDays(d, 1) {
		sent, err := IsSent(s, d)
		if err != nil {
			return nil, err
		}
		if !sent {
			out = append(out, d)
		}
	}
	return out, nil
}

// schedule queues every due file and starts the next job when none runs.
func (b *businessDay) schedule(ctx actor.Context) {
	if b.d.Produce == nil || b.cur.Date == "" {
		return
	}
	due, err := Due(b.d.Store, b.first, b.cur.Date, b.cfg.Delay, b.cfg.MaxCatchUp)
	if err != nil {
		b.d.Logger.Error("business day: list due files", "err", err)
		return
	}
	for _, d := range due {
		if d != b.job && !b.done[d] && !slices.Contains(b.queue, d) {
			b.queue = append(b.queue, d)
		}
	}
	if b.job != "" || len(b.queue) == 0 {
		return
	}
	b.job, b.queue = b.queue[0], b.queue[1:]
	date, self, sys, jobCtx := b.job, ctx.Self(), ctx.ActorSystem(), b.jobCtx
	b.d.Logger.Info("reconciliation file due", "acct_date", date, "business_date", b.cur.Date)
	go func() { sys.Root.Send(self, b.runJob(jobCtx, date)) }()
}

// runJob produces and uploads one file, beside the actor (it may retry for hours).
func (b *businessDay) runJob(ctx context.Context, date string) jobDone {
	name, data, err := b.d.Produce(date)
	if err != nil {
		return jobDone{date: date, err: fmt.Errorf("produce: %w", err)}
	}
	sum := sha256.Sum256(data)
	sent := Sent{Date: date, Name: name, Bytes: len(data), SHA: hex.EncodeToString(sum[:])}
	if b.d.Upload == nil {
		return jobDone{date: date, sent: sent}
	}
	for {
		sent.Tries++
		err := b.d.Upload(ctx, name, data)
		if err == nil {
			sent.At = b.d.Now()
			return jobDone{date: date, sent: sent}
		}
		if ctx.Err() != nil {
			return jobDone{date: date, err: ctx.Err()}
		}
		b.d.Logger.Warn("reconciliation upload failed; retrying", "file", name, "err", err)
		select {
		case <-ctx.Done():
			return jobDone{date: date, err: ctx.Err()}
		case <-time.After(b.cfg.RetryAfter):
		}
	}
}

func (b *businessDay) jobDone(ctx actor.Context, m jobDone) {
	b.job = ""
	switch {
	case errors.Is(m.err, context.Canceled):
		return // stopping
	case m.err != nil:
		b.d.Logger.Error("reconciliation file", "acct_date", m.date, "err", m.err, "retry_in", b.cfg.RetryAfter)
		b.queue = append([]string{m.date}, b.queue...)
		b.sched.SendOnce(b.cfg.RetryAfter, ctx.Self(), retryJobs{})
		return
	case b.d.Upload == nil:
		b.done[m.date] = true
		b.d.Logger.Info("reconciliation file produced (no upload configured)", "file", m.sent.Name, "bytes", m.sent.Bytes)
	default:
		v, _ := json.Marshal(m.sent)
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := b.d.Store.Commit(c, persistence.Op{Key: SentKey(m.date), Value: v})
		cancel()
		if err != nil {
			b.d.Logger.Error("reconciliation file uploaded but not recorded; it will be sent again (same bytes)", "file", m.sent.Name, "err", err)
		} else {
			b.d.Logger.Info("reconciliation file uploaded", "file", m.sent.Name, "bytes", m.sent.Bytes, "sha256", m.sent.SHA, "tries", m.sent.Tries)
		}
	}
	b.schedule(ctx)
}
