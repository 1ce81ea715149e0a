// Package e2e runs each flow and each failure of the load scheme on its own across real
// processes — platform, bank host and FEP started by bench/world — and ends every one with
// the money check computed from the peers' own books.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/persistence"
	"github.com/quancun/quancun/recon"
	"github.com/quancun/quancun/recon/fepstore"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quancun-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "quancun")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/quancun/quancun/cmd/quancun").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const bank = "BANKA00001"

var (
	payer  = world.Account{Bank: bank, PAN: "6222021234567890123", PIN: "123456", Balance: 100000}
	poor   = world.Account{Bank: bank, PAN: "6222029999000011112", PIN: "111111", Balance: 100}
	silent = world.Account{Bank: bank, PAN: "6222020000000000001", PIN: "222222", Balance: 100000, Silent: true}
)

// flow is one scenario's world and its checks.
type flow struct {
	dir string
	t   *testing.T
	ctx context.Context
	w   *world.World
	k   *simkiosk.Kiosk
}

func start(t *testing.T) *flow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	w, err := world.Start(ctx, world.Options{Bin: bin, Dir: dir, Banks: []string{bank},
		Accounts: []world.Account{payer, poor, silent}, Kiosks: 1,
		Cards: []world.CardSpec{{Name: "card", Serial: "0000000012345678", Balance: 1000},
			{Name: "blocked", Serial: "0000000099999999", Balance: 0, Blocked: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &flow{dir: dir, t: t, ctx: ctx, w: w, k: w.Kiosks[0]}
}

func (f *flow) load(cardName string, a world.Account, amount int64, pull simkiosk.Step) simkiosk.Result {
	f.t.Helper()
	c := f.w.Cards[cardName]
	c.Slot.Insert()
	res, err := f.k.Load(f.ctx, simkiosk.LoadParams{Card: c.Slot, Amount: amount, BankCode: a.Bank, PAN: a.PAN, PIN: a.PIN, PullAt: pull})
	c.Slot.Insert()
	f.t.Logf("%s", res)
	if err != nil {
		f.t.Fatalf("load: %v", err)
	}
	return res
}

func (f *flow) want(res simkiosk.Result, code kiosk.Code) {
	f.t.Helper()
	if res.Code != code {
		f.t.Fatalf("kiosk code %q, want %q (%s)", res.Code, code, res.Note)
	}
}

// check settles, stops every process and applies the money check; it returns the report
// for flow-specific assertions.
func (f *flow) check(settle time.Duration) moneycheck.Report {
	f.t.Helper()
	time.Sleep(settle)
	f.w.Stop()
	in, err := f.w.Books()
	if err != nil {
		f.t.Fatal(err)
	}
	r := moneycheck.Check(in)
	f.t.Log(r.Line())
	if !r.Passed() {
		f.t.Fatal(r.Line())
	}
	return r
}

func (f *flow) balance(cardName string) int64 {
	return int64(f.w.Cards[cardName].Card.State().Balance)
}

func TestApprovedLoad(t *testing.T) {
	f := start(t)
	f.want(f.load("card", payer, 500, simkiosk.PullNone), kiosk.Approved)
	r := f.check(500 * time.Millisecond)
	if r.BankNet[bank] != 500 || r.Written != 1 || f.balance("card") != 1500 {
		t.Fatalf("bank net %d, written %d, card %d; want 500, 1, 1500", r.BankNet[bank], r.Written, f.balance("card"))
	}
}

func TestDeclinesMoveNothing(t *testing.T) {
	f := start(t)
	wrong := payer
	wrong.PIN = "999999"
	f.want(f.load("card", wrong, 500, simkiosk.PullNone), kiosk.WrongPIN)
	f.want(f.load("card", poor, 500, simkiosk.PullNone), kiosk.InsufficientFunds)
	f.want(f.load("blocked", payer, 500, simkiosk.PullNone), kiosk.CardBlocked)
	r := f.check(500 * time.Millisecond)
	if r.BankNet[bank] != 0 || r.Written != 0 || f.balance("card") != 1000 {
		t.Fatalf("declines moved money: bank net %d, written %d, card %d", r.BankNet[bank], r.Written, f.balance("card"))
	}
}

func TestBankTimeoutIsReversed(t *testing.T) {
	f := start(t)
	f.want(f.load("card", silent, 700, simkiosk.PullNone), kiosk.BankTimeout)
	r := f.check(4 * time.Second) // the reversal queue's first send and the 0410
	in, err := f.w.Books()
	if err != nil {
		t.Fatal(err)
	}
	l := in.Banks[bank]
	if len(l.Debits) != 1 || !l.Debits[0].Reversed || r.BankNet[bank] != 0 {
		t.Fatalf("want the one debit reversed; debits %d, net %d", len(l.Debits), r.BankNet[bank])
	}
}

func TestPulledBeforeCreditIsRewritten(t *testing.T) {
	f := start(t)
	res := f.load("card", payer, 300, simkiosk.PullBeforeCredit)
	f.want(res, kiosk.Approved)
	if res.Write != kiosk.Failed || f.balance("card") != 1000 {
		t.Fatalf("write %c, card %d; want F and unchanged", res.Write, f.balance("card"))
	}
	next := f.load("card", payer, 200, simkiosk.PullNone)
	f.want(next, kiosk.Approved)
	if len(next.Rewrites) != 1 || !next.Rewrites[0].Applied {
		t.Fatalf("the pending load was not re-written: %+v", next.Rewrites)
	}
	r := f.check(500 * time.Millisecond)
	if f.balance("card") != 1500 || r.Pending != 0 || r.BankNet[bank] != 500 {
		t.Fatalf("card %d, pending %d, bank net %d; want 1500, 0, 500", f.balance("card"), r.Pending, r.BankNet[bank])
	}
	// The FEP's own reconciliation lines: the re-written load is S now (DESIGN 8).
	for _, rec := range f.fileRecords() {
		if rec.Write != recon.WriteOK || rec.Txn != recon.TxnOK {
			t.Errorf("file line %s: write %c txn %c, want S/S", rec.Ref, rec.Write, rec.Txn)
		}
	}
}

// fileRecords reads today's reconciliation lines from the stopped FEP's store.
func (f *flow) fileRecords() []recon.Record {
	f.t.Helper()
	s, err := persistence.Open(filepath.Join(f.dir, "fep"), persistence.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	defer s.Close()
	today := time.Now().Format("20060102")
	recs, _, err := fepstore.Read(s, fepstore.Options{AcctDate: today, Zone: time.Local,
		BusinessDate: func(time.Time) string { return today }})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(recs) == 0 {
		f.t.Fatal("no reconciliation lines for today")
	}
	return recs
}

func TestPulledAfterCreditIsResolvedApplied(t *testing.T) {
	f := start(t)
	res := f.load("card", payer, 300, simkiosk.PullAfterCommit)
	f.want(res, kiosk.Approved)
	if res.Write != kiosk.Unknown || f.balance("card") != 1300 {
		t.Fatalf("write %c, card %d; want U and the credit on the card", res.Write, f.balance("card"))
	}
	next := f.load("card", payer, 200, simkiosk.PullNone)
	f.want(next, kiosk.Approved)
	if len(next.Rewrites) != 1 || !next.Rewrites[0].Applied || next.Rewrites[0].RewriteCode != "" {
		t.Fatalf("the U load was not resolved as applied without a re-write: %+v", next.Rewrites)
	}
	f.check(500 * time.Millisecond)
	if f.balance("card") != 1500 {
		t.Fatalf("card %d, want 1500 (no double credit)", f.balance("card"))
	}
	for _, rec := range f.fileRecords() {
		if rec.Write != recon.WriteOK {
			t.Errorf("file line %s: write %c, want S once the U load was proved applied", rec.Ref, rec.Write)
		}
	}
}

func TestKioskCrashAfterCreditBecomesU(t *testing.T) {
	f := start(t)
	res := f.load("card", payer, 400, simkiosk.CrashAfterCredit)
	f.want(res, kiosk.Approved)
	time.Sleep(4 * time.Second) // past the FEP's confirm deadline: the load is U
	next := f.load("card", payer, 100, simkiosk.PullNone)
	f.want(next, kiosk.Approved)
	if len(next.Rewrites) != 1 || !next.Rewrites[0].Applied {
		t.Fatalf("the unconfirmed load was not settled: %+v", next.Rewrites)
	}
	f.check(500 * time.Millisecond)
	if f.balance("card") != 1500 {
		t.Fatalf("card %d, want 1500", f.balance("card"))
	}
}

func TestPlatformOutageFailsFast(t *testing.T) {
	f := start(t)
	f.w.Platform.Kill()
	time.Sleep(2500 * time.Millisecond)
	res := f.load("card", payer, 500, simkiosk.PullNone)
	if res.Code != kiosk.PlatformDown || res.Latency > 2*time.Second {
		t.Fatalf("code %q in %s; want %q at once", res.Code, res.Latency, kiosk.PlatformDown)
	}
	if err := f.w.StartPlatform(f.ctx); err != nil {
		t.Fatal(err)
	}
	var ok bool
	for i := 0; i < 20 && !ok; i++ {
		ok = f.load("card", payer, 500, simkiosk.PullNone).Code == kiosk.Approved
		if !ok {
			time.Sleep(time.Second)
		}
	}
	if !ok {
		t.Fatal("no approval after the platform came back")
	}
	r := f.check(500 * time.Millisecond)
	if r.BankNet[bank] != 500 {
		t.Fatalf("bank net %d, want 500 (only the load after the outage)", r.BankNet[bank])
	}
}

// TestFEPKilledWhileAtBankRecovers kills the FEP while a debit waits at a bank that never
// answers: the restarted FEP finds the load "sent to bank" on disk and reverses it.
func TestFEPKilledWhileAtBankRecovers(t *testing.T) {
	f := start(t)
	done := make(chan simkiosk.Result, 1)
	go func() {
		c := f.w.Cards["card"]
		res, _ := f.k.Load(f.ctx, simkiosk.LoadParams{Card: c.Slot, Amount: 900, BankCode: silent.Bank, PAN: silent.PAN, PIN: silent.PIN})
		done <- res
	}()
	// Wait until the bank holds the 0200, then SIGKILL the FEP.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l, err := simbank.LoadLedger(f.w.BankDir(bank)); err == nil && len(l.Debits) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the debit never reached the bank")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.w.FEP.Kill()
	<-done
	if err := f.w.StartFEP(f.ctx); err != nil {
		t.Fatal(err)
	}
	r := f.check(5 * time.Second)
	in, err := f.w.Books()
	if err != nil {
		t.Fatal(err)
	}
	l := in.Banks[bank]
	if len(l.Debits) != 1 || !l.Debits[0].Reversed || r.BankNet[bank] != 0 {
		t.Fatalf("want the debit reversed after the restart; net %d, debits %+v", r.BankNet[bank], l.Debits)
	}
}
