package cutover

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/platformlink"
	"github.com/quancun/quancun/persistence"
)

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	z, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestCalendar(t *testing.T) {
	z := shanghai(t)
	cal, err := Section{}.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, z)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ when, want string }{
		{"2026-01-27 00:00:00", "20260127"},
		{"2026-01-27 22:59:59", "20260127"},
		{"2026-01-27 23:00:00", "20260128"},
		{"2026-12-31 23:30:00", "20270101"},
	} {
		if got := cal.DateAt(at(c.when)); got != c.want {
			t.Errorf("DateAt(%s) = %s, want %s", c.when, got, c.want)
		}
	}
	// The same instant seen from UTC: 15:00 UTC is 23:00 in Shanghai.
	if got := cal.DateAt(time.Date(2026, 1, 27, 15, 0, 0, 0, time.UTC)); got != "20260128" {
		t.Errorf("UTC instant: %s", got)
	}
	if o, _ := cal.Opening("20260128"); !o.Equal(at("2026-01-27 23:00:00")) {
		t.Errorf("Opening = %v", o)
	}
	if n := cal.Next(at("2026-01-27 23:00:00")); !n.Equal(at("2026-01-28 23:00:00")) {
		t.Errorf("Next = %v", n)
	}
	// A morning cutover closes the previous date.
	early, err := Section{Cutover: "02:00"}.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	if got := early.DateAt(at("2026-01-28 01:59:00")); got != "20260127" {
		t.Errorf("02:00 cutover at 01:59: %s", got)
	}
	if got := early.DateAt(at("2026-01-28 02:00:00")); got != "20260128" {
		t.Errorf("02:00 cutover at 02:00: %s", got)
	}
	for _, bad := range []Section{{Cutover: "25:00"}, {Cutover: "2300"}, {TimeZone: "Mars/Olympus"}} {
		if _, err := bad.Calendar(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", bad, err)
		}
	}
}

// clock is an injectable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) SetS(z *time.Location, s string) {
	v, err := time.ParseInLocation("2006-01-02 15:04:05", s, z)
	if err != nil {
		panic(err)
	}
	c.Set(v)
}

// fakePlatform answers SignOut and SignIn as the session does, and records them.
type fakePlatform struct {
	mu    sync.Mutex
	calls []string
	batch uint32
}

func (p *fakePlatform) Receive(ctx actor.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ctx.Message().(type) {
	case platformlink.SignOut:
		p.calls = append(p.calls, "out")
		ctx.Respond(platformlink.Status{Batch: p.batch})
	case platformlink.SignIn:
		p.batch++
		p.calls = append(p.calls, "in")
		ctx.Respond(platformlink.Status{Up: true, Batch: p.batch})
	}
}

func (p *fakePlatform) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// uploads records the files handed to Upload; the first fails failures times.
type uploads struct {
	mu       sync.Mutex
	files    map[string]string
	failures int
	tries    int
}

func (u *uploads) Upload(_ context.Context, name string, data []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tries++
	if u.failures > 0 {
		u.failures--
		return errors.New("injected: server unreachable")
	}
	u.files[name] = string(data)
	return nil
}

func (u *uploads) Names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for n := range u.files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func bdStatus(t *testing.T, sys *actor.ActorSystem, pid *actor.PID) Status {
	t.Helper()
	res, err := sys.Root.RequestFuture(pid, StatusRequest{}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	return res.(Status)
}

// TestBusinessDay walks three business days on an injected clock: the first date recorded at
// start, a cutover that signs out and in and advances the date (no file yet), the cutover
// opening T+2 that produces and uploads T's file after injected upload failures, and a
// restart days later that catches up without signing out and sends the files it missed.
func TestBusinessDay(t *testing.T) {
	z := shanghai(t)
	cal, err := Section{}.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := persistence.Open(dir, persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := &clock{}
	clk.SetS(z, "2026-01-27 10:00:00")
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	plat := &fakePlatform{batch: 7}
	platPID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return plat }))
	up := &uploads{files: map[string]string{}, failures: 2}
	var produced []string
	var pmu sync.Mutex
	deps := Deps{Store: store, Platform: platPID, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Produce: func(date string) (string, []byte, error) {
			pmu.Lock()
			produced = append(produced, date)
			pmu.Unlock()
			return "QC_X_" + date + ".txt", []byte("0|0\n"), nil
		},
		Upload: up.Upload}
	cfg := Config{Calendar: cal, RetryAfter: 20 * time.Millisecond}
	pid := sys.Root.Spawn(Props(cfg, deps))

	waitFor(t, "first business date", func() bool { return bdStatus(t, sys, pid).Date == "20260127" })
	if c := plat.Calls(); len(c) != 0 {
		t.Fatalf("sign-out/in at the first start: %v", c)
	}

	// A load just before the cutover's instant, and the actor a second late: the load
	// keeps the old business date, as the FEP saw it.
	clk.SetS(z, "2026-01-27 23:00:01")
	sys.Root.Send(pid, Tick{})
	waitFor(t, "cutover to 20260128", func() bool { s := bdStatus(t, sys, pid); return s.Date == "20260128" && !s.Busy })
	if c := plat.Calls(); !slices.Equal(c, []string{"out", "in"}) {
		t.Fatalf("platform calls %v, want [out in]", c)
	}
	if n := up.Names(); len(n) != 0 {
		t.Fatalf("files before T+2: %v", n)
	}
	res, err := NewResolver(store, cal)
	if err != nil {
		t.Fatal(err)
	}
	late, _ := time.ParseInLocation("2006-01-02 15:04:05", "2026-01-27 23:00:00", z)
	if d := res.DateAt(late.Add(500 * time.Millisecond)); d != "20260127" {
		t.Errorf("load at 23:00:00.5 (before the actor moved): %s, want 20260127", d)
	}
	if d := res.DateAt(late.Add(2 * time.Second)); d != "20260128" {
		t.Errorf("load at 23:00:02: %s, want 20260128", d)
	}
	if d := res.DateAt(late.Add(-72 * time.Hour)); d != "20260125" {
		t.Errorf("before the history: %s, want the rule's 20260125 (23:00 opens the next date)", d)
	}

	// Ticks that change nothing do nothing.
	sys.Root.Send(pid, Tick{})
	clk.SetS(z, "2026-01-28 22:00:00")
	sys.Root.Send(pid, Tick{})
	if s := bdStatus(t, sys, pid); s.Date != "20260128" || len(plat.Calls()) != 2 {
		t.Fatalf("tick before the cutover moved something: %+v %v", s, plat.Calls())
	}

	// T+2 opens: the file of the 27th, uploaded after two failures.
	clk.SetS(z, "2026-01-28 23:00:00")
	sys.Root.Send(pid, Tick{})
	waitFor(t, "upload of 20260127", func() bool { ok, _ := IsSent(store, "20260127"); return ok })
	if n := up.Names(); !slices.Equal(n, []string{"QC_X_20260127.txt"}) {
		t.Fatalf("uploaded %v", n)
	}
	if up.tries != 3 {
		t.Errorf("upload tries %d, want 3 (two injected failures)", up.tries)
	}
	if c := plat.Calls(); !slices.Equal(c, []string{"out", "in", "out", "in"}) {
		t.Fatalf("platform calls %v", c)
	}

	// Stop; start again on the 31st: catch up to 20260131 without a sign-out, and send
	// the 28th and 29th (the 27th is sent already, the 30th is not due).
	sys.Root.PoisonFuture(pid).Wait()
	clk.SetS(z, "2026-01-31 12:00:00")
	pid = sys.Root.Spawn(Props(cfg, deps))
	waitFor(t, "catch-up uploads", func() bool {
		a, _ := IsSent(store, "20260128")
		b, _ := IsSent(store, "20260129")
		return a && b
	})
	if s := bdStatus(t, sys, pid); s.Date != "20260131" {
		t.Fatalf("after catch-up: %+v", s)
	}
	if c := plat.Calls(); len(c) != 4 {
		t.Errorf("catch-up signed out/in: %v", c)
	}
	if ok, _ := IsSent(store, "20260130"); ok {
		t.Error("20260130 sent before T+2")
	}
	pmu.Lock()
	if !slices.Equal(produced, []string{"20260127", "20260128", "20260129"}) {
		t.Errorf("produced %v: each due date once", produced)
	}
	pmu.Unlock()
	days, err := LoadHistory(store)
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, d := range days {
		dates = append(dates, d.Date)
	}
	if !slices.Equal(dates, []string{"20260127", "20260128", "20260129", "20260131"}) {
		t.Errorf("history %v", dates)
	}
	// The caught-up date opened when the rule opened it (the FEP was down), not at restart.
	if want, _ := cal.Opening("20260131"); !days[3].OpenedAt.Equal(want) {
		t.Errorf("caught-up date opened at %v, want %v", days[3].OpenedAt, want)
	}
}

// TestInterruptedCutover: a cutover that signed out and crashed before signing in leaves
// its mark; the next start signs in again.
func TestInterruptedCutover(t *testing.T) {
	cal, _ := Section{}.Calendar()
	store, err := persistence.Open(t.TempDir(), persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.Commit(ctx, persistence.Op{Key: DayKey("20260128"), Value: []byte(`{"date":"20260128","opened_at":"2026-01-27T23:00:00+08:00"}`)},
		persistence.Op{Key: pendingKey(), Value: []byte("20260128")}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.SetS(shanghai(t), "2026-01-28 09:00:00")
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	plat := &fakePlatform{}
	platPID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return plat }))
	sys.Root.Spawn(Props(Config{Calendar: cal}, Deps{Store: store, Platform: platPID, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	waitFor(t, "sign-in after the interrupted cutover", func() bool { return slices.Equal(plat.Calls(), []string{"in"}) })
	waitFor(t, "mark cleared", func() bool { _, err := store.Get(pendingKey()); return errors.Is(err, persistence.ErrNotFound) })
}

func TestReconSection(t *testing.T) {
	if err := (ReconSection{FTPAddr: "nohost"}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("bad addr: %v", err)
	}
	if err := (ReconSection{CAFile: "x.pem"}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("ca_file without tls: %v", err)
	}
	if _, ok, _ := (ReconSection{}).FTP(); ok {
		t.Error("no ftp_addr must mean no upload")
	}
	c, ok, err := (ReconSection{FTPAddr: "127.0.0.1:21", User: "u", Password: "p", Dir: "in", TLS: true}).FTP()
	if err != nil || !ok || c.Addr != "127.0.0.1:21" || c.User != "u" || !c.TLS || c.Dir != "in" {
		t.Errorf("FTP() = %+v %v %v", c, ok, err)
	}
	if (ReconSection{}).DelayDays() != 2 {
		t.Error("default delay is T+2")
	}
}

// FuzzCalendar: any cutover string either is refused or gives a calendar in which every
// instant lies in the business day DateAt names: Opening(DateAt(t)) <= t < Next(t).
func FuzzCalendar(f *testing.F) {
	for _, s := range []string{"23:00", "00:00", "02:00", "12:00", "11:59", "24:00", "7:5", ""} {
		f.Add(s, int64(1769526000))
	}
	f.Fuzz(func(t *testing.T, cut string, sec int64) {
		cal, err := Section{Cutover: cut}.Calendar()
		if err != nil {
			return
		}
		at := time.Unix(sec%(1<<35), 0)
		d := cal.DateAt(at)
		open, err := cal.Opening(d)
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(open) || !at.Before(cal.Next(at)) {
			t.Fatalf("cutover %q at %v: date %s opens %v, next %v", cut, at, d, open, cal.Next(at))
		}
	})
}
