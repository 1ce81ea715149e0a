// Package demo runs a scripted business day of the load switch with every party a real
// process on loopback: the one-card platform, two bank hosts and the FEP (`quancun serve`),
// with the kiosks driven from this process over real TCP (bench/world sets it up). It ends
// with the money check of DESIGN section 10, computed from the peers' own books.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/recon"
)

// Options of one demo run.
type Options struct {
	Bin    string    // the quancun binary the peers run from
	Dir    string    // work and output directory (journals, ledgers, card files, logs)
	Out    io.Writer // the readable summary
	Logger *slog.Logger
}

const (
	bankA = "BANKA00001"
	bankB = "BANKB00002"
)

var (
	acctA      = world.Account{Bank: bankA, PAN: "6222021234567890123", PIN: "123456", Balance: 500000}
	acctB      = world.Account{Bank: bankB, PAN: "6217001234567890128", PIN: "654321", Balance: 300000}
	acctLow    = world.Account{Bank: bankA, PAN: "6222029999000011112", PIN: "111111", Balance: 500}
	acctSilent = world.Account{Bank: bankA, PAN: "6222020000000000001", PIN: "222222", Balance: 500000, Silent: true}
)

// Banks and Cards of the demo day, for readers of the books it leaves.
var (
	Banks = []string{bankA, bankB}
	Cards = cards
)

var cards = []world.CardSpec{
	{Name: "card-A", Serial: "0000000012345678", Balance: 5000},
	{Name: "card-B", Serial: "0000000022334455", Balance: 0},
	{Name: "card-C", Serial: "0000000033445566", Balance: 1200},
	{Name: "card-D", Serial: "0000000044556677", Balance: 800, Blocked: true},
}

type day struct {
	w        *world.World
	out      io.Writer
	bin, dir string // the quancun binary and the world dir (--out DIR): the recon commands run on them
	failures []string
}

// Run runs the day and returns the money check report; err is for what kept the day from
// running at all.
func Run(ctx context.Context, opt Options) (moneycheck.Report, error) {
	fmt.Fprintf(opt.Out, "== starting the platform, 2 banks and the FEP on loopback (work dir %s)\n", opt.Dir)
	w, err := world.Start(ctx, world.Options{Bin: opt.Bin, Dir: opt.Dir, Banks: []string{bankA, bankB},
		Accounts: []world.Account{acctA, acctB, acctLow, acctSilent}, Cards: cards, Kiosks: 2, Logger: opt.Logger})
	if err != nil {
		return moneycheck.Report{}, err
	}
	defer w.Stop()
	d := &day{w: w, out: opt.Out, bin: opt.Bin, dir: opt.Dir}
	d.say("   all up; 2 kiosks signed in")
	if err := d.run(ctx); err != nil {
		return moneycheck.Report{}, err
	}
	return d.check()
}

func (d *day) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

// load runs one load and checks the kiosk's answer code against want ("" = any).
func (d *day) load(ctx context.Context, what string, k *simkiosk.Kiosk, cardName string, acct world.Account, amount int64, pull simkiosk.Step, want ...kiosk.Code) simkiosk.Result {
	c := d.w.Cards[cardName]
	c.Slot.Insert()
	res, err := k.Load(ctx, simkiosk.LoadParams{Card: c.Slot, Amount: amount, BankCode: acct.Bank, PAN: acct.PAN, PIN: acct.PIN, PullAt: pull})
	ok := err == nil
	if len(want) > 0 {
		ok = false
		for _, w := range want {
			if res.Code == w {
				ok = true
			}
		}
	}
	mark := "ok "
	if !ok {
		mark = "BAD"
		d.failures = append(d.failures, fmt.Sprintf("%s: code %q err %v, want %v", what, res.Code, err, want))
	}
	desc := res.String()
	if err != nil {
		desc += " error: " + err.Error()
	}
	d.say("   [%s] %-44s %s", mark, what, desc)
	c.Slot.Insert()
	return res
}

// run is the scripted business day of the issue: every flow and failure once.
func (d *day) run(ctx context.Context) error {
	k1, k2 := d.w.Kiosks[0], d.w.Kiosks[1]
	wrongPIN := acctA
	wrongPIN.PIN = "000000"
	d.say("== the day")
	d.load(ctx, "load 10.00 on card-A via bank A", k1, "card-A", acctA, 1000, simkiosk.PullNone, kiosk.Approved)
	d.load(ctx, "load 20.00 on card-B via bank B", k2, "card-B", acctB, 2000, simkiosk.PullNone, kiosk.Approved)
	d.load(ctx, "wrong PIN", k1, "card-C", wrongPIN, 500, simkiosk.PullNone, kiosk.WrongPIN)
	d.load(ctx, "insufficient funds", k1, "card-C", acctLow, 5000, simkiosk.PullNone, kiosk.InsufficientFunds)
	d.load(ctx, "blocked card", k2, "card-D", acctB, 500, simkiosk.PullNone, kiosk.CardBlocked)
	d.load(ctx, "bank timeout, reversed", k1, "card-C", acctSilent, 700, simkiosk.PullNone, kiosk.BankTimeout)
	d.load(ctx, "card-A pulled after MAC2 (before credit)", k1, "card-A", acctA, 1500, simkiosk.PullBeforeCredit, kiosk.Approved)
	d.load(ctx, "card-B pulled after the credit (U)", k2, "card-B", acctB, 2500, simkiosk.PullAfterCommit, kiosk.Approved)
	d.load(ctx, "card-A next load: re-write first", k2, "card-A", acctA, 300, simkiosk.PullNone, kiosk.Approved)
	d.load(ctx, "card-B next load: U found applied", k1, "card-B", acctB, 400, simkiosk.PullNone, kiosk.Approved)

	d.say("== platform outage: loads fail fast")
	d.w.Platform.Kill()
	time.Sleep(2500 * time.Millisecond) // past the FEP's platform heartbeat timeout
	d.load(ctx, "load while the platform is down", k1, "card-C", acctA, 600, simkiosk.PullNone, kiosk.PlatformDown)
	if err := d.w.StartPlatform(ctx); err != nil {
		return err
	}
	d.waitLoadable(ctx, "load once the platform is back", k1, "card-C", acctA, 600)

	d.say("== the FEP is killed (SIGKILL) in the middle of the day and restarted")
	d.w.FEP.Kill()
	if err := d.w.StartFEP(ctx); err != nil {
		return err
	}
	// The kiosks find their connection gone; they dial again and sign in, as a kiosk does.
	if err := d.w.SignInKiosks(ctx); err != nil {
		return err
	}
	d.say("   FEP back; kiosks signed in again")
	d.waitLoadable(ctx, "load after the FEP restart", k2, "card-C", acctB, 800)
	d.load(ctx, "card-A once more", k1, "card-A", acctA, 200, simkiosk.PullNone, kiosk.Approved)
	return nil
}

// waitLoadable repeats a load until it is approved: after an outage or a restart the FEP
// needs a moment to sign in again, and meanwhile refuses loads fast (which is the point).
func (d *day) waitLoadable(ctx context.Context, what string, k *simkiosk.Kiosk, cardName string, acct world.Account, amount int64) {
	deadline := time.Now().Add(20 * time.Second)
	before := len(d.failures)
	for time.Now().Before(deadline) {
		res := d.load(ctx, what, k, cardName, acct, amount, simkiosk.PullNone)
		if res.Code == kiosk.Approved {
			d.failures = d.failures[:before] // the refusals while the FEP signed in again were expected
			return
		}
		time.Sleep(time.Second)
	}
	d.failures = append(d.failures, what+": never approved within 20s")
}

// check lets the system settle, stops everything and compares the books.
func (d *day) check() (moneycheck.Report, error) {
	d.say("== settling: waiting for reversals and confirms, then stopping every process")
	time.Sleep(6 * time.Second)
	d.w.Stop()
	date := time.Now().Format("20060102") // the sim banks settle "today" (their local date)
	var settle []string
	for _, code := range []string{bankA, bankB} {
		path, _, err := simbank.WriteSettlement(d.w.BankDir(code), date)
		if err != nil {
			d.say("   settlement file for %s: %v", code, err)
			continue
		}
		settle = append(settle, path)
	}
	in, err := d.w.Books()
	if err != nil {
		return moneycheck.Report{}, err
	}
	d.reconcile(date, settle)
	r := moneycheck.Check(in)
	Summary(d.out, in, r)
	for _, f := range d.failures {
		r.Problems = append(r.Problems, "script: "+f)
	}
	return r, nil
}

// ReconFiles are the names the demo leaves its reconciliation outputs under in the world dir.
func ReconFiles(date string) (file, run, clearingText, clearingHTML string) {
	return recon.FileName(world.AuthCode, date), "RECON_" + date + ".txt",
		"CLEARING_" + date + ".txt", "CLEARING_" + date + ".html"
}

// reconcile runs the reconciliation commands on the stopped FEP's store, as an operator
// would after the day: the file of the day's accounting date, the run report against the
// banks' settlement files and the platform journal, and the clearing report (text and
// HTML). A command that fails is a failure of the day.
func (d *day) reconcile(date string, settle []string) {
	d.say("== reconciliation of accounting date %s (the FEP is stopped: the commands open its store)", date)
	file, run, text, html := ReconFiles(date)
	cfg := filepath.Join(d.dir, "fep.toml")
	steps := [][]string{
		{"recon", "file", "--date", date, "--config", cfg, "--out", filepath.Join(d.dir, file)},
		{"recon", "run", "--date", date, "--config", cfg, "--bank-settlement", strings.Join(settle, ","),
			"--platform-journal", filepath.Join(d.dir, "platform"), "--out", filepath.Join(d.dir, run)},
		{"report", "clearing", "--date", date, "--config", cfg, "--format", "text", "--out", filepath.Join(d.dir, text)},
		{"report", "clearing", "--date", date, "--config", cfg, "--format", "html", "--out", filepath.Join(d.dir, html)},
	}
	for _, args := range steps {
		out, err := exec.Command(d.bin, args...).CombinedOutput()
		if err != nil {
			d.failures = append(d.failures, fmt.Sprintf("quancun %s %s: %v: %s", args[0], args[1], err, out))
			continue
		}
	}
	for _, f := range []string{file, run, text, html} {
		d.say("   %s", filepath.Join(d.dir, f))
	}
}

// Summary prints what the books hold.
func Summary(out io.Writer, in moneycheck.Input, r moneycheck.Report) {
	fmt.Fprintln(out, "== books")
	codes := make([]string, 0, len(in.Banks))
	for code := range in.Banks {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		fmt.Fprintf(out, "   bank %s: %d debits standing, net %d fen; platform booked %d fen\n", code, r.BankCount[code], r.BankNet[code], r.Booked[code])
	}
	fmt.Fprintf(out, "   platform: %d loads written, %d waiting for a re-write (%d already on the card)\n", r.Written, r.Pending, r.PendingOnCrd)
	for _, cs := range in.Cards {
		fmt.Fprintf(out, "   card %s: %d -> %d fen\n", cs.Serial, cs.StartBalance, cs.State.Balance)
	}
	fmt.Fprintf(out, "   FEP transactions unfinished: %d\n", in.Unfinished)
}
