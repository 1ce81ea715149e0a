// Package demo runs a scripted business day of the load switch with every party a real
// process on loopback: the one-card platform, two bank hosts and the FEP (`quancun serve`),
// with the kiosks driven from this process over real TCP. It ends with the money check of
// DESIGN section 10, computed from the peers' own books.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/proc"
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/persistence"
)

// Options of one demo run.
type Options struct {
	Bin    string    // the quancun binary the peers run from
	Dir    string    // work and output directory (journals, ledgers, card files, logs)
	Out    io.Writer // the readable summary
	Logger *slog.Logger
}

// The demo's fixed parties.
const (
	authCode = "QC0769LOADFEP0000001"
	bankA    = "BANKA00001"
	bankB    = "BANKB00002"
)

var demoMasters = struct{ mdlk, mtk string }{"11111111111111112222222222222222", "33333333333333334444444444444444"}

// account is a bank card of the demo.
type account struct {
	bank, pan, pin string
	balance        int64
}

// cardSpec is a city card of the demo.
type cardSpec struct {
	name    string
	serial  string // 16 hex digits
	balance uint32
}

type world struct {
	opt                   Options
	bin                   string
	platformAddr, ftpAddr string
	bankAddr              map[string]string
	fepAddr               string
	platformCfg, fepCfg   string
	bankCfg               map[string]string
	platform, fep         *proc.Process
	banks                 map[string]*proc.Process
	kiosks                []*simkiosk.Kiosk
	cards                 map[string]*cardHandle
	steps                 []string
	failures              []string
}

type cardHandle struct {
	spec  cardSpec
	path  string
	card  *vcard.Card
	slot  *card.InProcessReader
	start int64
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// Run runs the day and returns the money check report; err is for what kept the day from
// running at all.
func Run(ctx context.Context, opt Options) (moneycheck.Report, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &world{opt: opt, bin: opt.Bin, bankAddr: map[string]string{}, bankCfg: map[string]string{},
		banks: map[string]*proc.Process{}, cards: map[string]*cardHandle{}}
	defer w.stopAll()
	if err := w.setup(ctx); err != nil {
		return moneycheck.Report{}, err
	}
	if err := w.day(ctx); err != nil {
		return moneycheck.Report{}, err
	}
	return w.check(ctx)
}

func (w *world) say(format string, a ...any) {
	fmt.Fprintf(w.opt.Out, format+"\n", a...)
}

var accounts = []account{
	{bankA, "6222021234567890123", "123456", 500000},
	{bankB, "6217001234567890128", "654321", 300000},
	{bankA, "6222029999000011112", "111111", 500},    // nearly empty: insufficient funds
	{bankA, "6222020000000000001", "222222", 500000}, // the bank never answers this card's 0200
}

var cardSpecs = []cardSpec{
	{"card-A", "0000000012345678", 5000},
	{"card-B", "0000000022334455", 0},
	{"card-C", "0000000033445566", 1200},
	{"card-D", "0000000044556677", 800}, // blocked at the platform
}

func (w *world) setup(ctx context.Context) error {
	d := w.opt.Dir
	for _, sub := range []string{"platform", "fep", "cards", "bankA", "bankB"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	var err error
	port := func() string {
		if err != nil {
			return ""
		}
		var a string
		a, err = proc.FreePort()
		return a
	}
	w.platformAddr, w.ftpAddr, w.fepAddr = port(), port(), port()
	w.bankAddr[bankA], w.bankAddr[bankB] = port(), port()
	if err != nil {
		return err
	}
	ltk, psamMaster := randHex(16), randHex(16)
	zmk := map[string]string{bankA: randHex(16), bankB: randHex(16)}
	tmks := []string{randHex(16), randHex(16)}

	// The platform.
	w.platformCfg = filepath.Join(d, "platform.toml")
	if err := os.WriteFile(w.platformCfg, []byte(fmt.Sprintf(`listen = %q
data_dir = "platform"
auth_codes = [%q]
ltk = %q
mdlk = %q
mtk = %q
ceiling = 100000
blocked = [%q]
[ftp]
listen = %q
`, w.platformAddr, authCode, ltk, demoMasters.mdlk, demoMasters.mtk, cardSpecs[3].serial, w.ftpAddr)), 0o644); err != nil {
		return err
	}
	// The banks.
	for _, code := range []string{bankA, bankB} {
		dir := "bankA"
		if code == bankB {
			dir = "bankB"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "listen = %q\ndata_dir = %q\nbank_code = %q\nzmk = %q\n", w.bankAddr[code], dir, code, zmk[code])
		fmt.Fprintf(&b, "[faults]\ntimeout_pans = [%q]\n", accounts[3].pan)
		for _, a := range accounts {
			if a.bank == code {
				fmt.Fprintf(&b, "[[accounts]]\npan = %q\npin = %q\nbalance = %d\n", a.pan, a.pin, a.balance)
			}
		}
		w.bankCfg[code] = filepath.Join(d, dir+".toml")
		if err := os.WriteFile(w.bankCfg[code], []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	// The FEP.
	var f strings.Builder
	fmt.Fprintf(&f, "[fep]\nnode = \"fep1\"\ndata_dir = %q\nkiosk_listen = %q\nmaster_key = %q\nmerchant = \"898310048990001\"\n",
		filepath.Join(d, "fep"), w.fepAddr, randHex(16))
	fmt.Fprintf(&f, "[psam]\nmac_master = %q\n", psamMaster)
	fmt.Fprintf(&f, "[platform]\naddr = %q\nauth_code = %q\nltk = %q\nheartbeat_interval = \"1s\"\nheartbeat_timeout = \"1s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n", w.platformAddr, authCode, ltk)
	for i, code := range []string{bankA, bankB} {
		fmt.Fprintf(&f, "[[banks]]\ncode = %q\naddr = %q\nzmk = %q\nterminal = \"FEP0000%d\"\nresponse_timeout = \"3s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n",
			code, w.bankAddr[code], zmk[code], i+1)
	}
	fmt.Fprintf(&f, "[limits]\nbank = \"3s\"\nconfirm = \"3s\"\nkiosk = \"20s\"\nbook_first = \"500ms\"\nbook_max = \"2s\"\nconfirm_first = \"500ms\"\nconfirm_max = \"2s\"\ngrace = \"2s\"\n")
	psams := []vcard.PSAMState{}
	for i := range tmks {
		tid := fmt.Sprintf("KIOSK00%d", i+1)
		psamNo := fmt.Sprintf("1122334455%02d", i+1)
		fmt.Fprintf(&f, "[[kiosks]]\nterminal = %q\npsam = %q\ntmk = %q\n", tid, psamNo, tmks[i])
		no, _ := hex.DecodeString(psamNo)
		ef15, _ := hex.DecodeString(fmt.Sprintf("00000000000000000%03d0101000000", i+1)[:28])
		key, _ := hex.DecodeString(psamMaster)
		psams = append(psams, vcard.PSAMState{TerminalID: no, EF15: ef15,
			Keys: []vcard.PSAMKey{{Usage: vcard.HexByte(simkiosk.DefaultMACKeyUsage), Index: vcard.HexByte(simkiosk.DefaultMACKeyIndex), Key: key}}})
	}
	w.fepCfg = filepath.Join(d, "fep.toml")
	if err := os.WriteFile(w.fepCfg, []byte(f.String()), 0o644); err != nil {
		return err
	}

	// The cards.
	mdlk, _ := hex.DecodeString(demoMasters.mdlk)
	mtk, _ := hex.DecodeString(demoMasters.mtk)
	for _, cs := range cardSpecs {
		ef15, _ := hex.DecodeString("86982000759000000105200000000000" + cs.serial[:0] + "1234567820240101203412310100")
		copy(ef15[12:20], mustHex(cs.serial))
		st, err := vcard.NewCardState(mdlk, mtk, ef15, cs.balance, 100000, 0)
		if err != nil {
			return fmt.Errorf("card %s: %w", cs.name, err)
		}
		path := filepath.Join(d, "cards", cs.name+".json")
		if err := vcard.SaveCardFile(path, st); err != nil {
			return err
		}
		c, err := vcard.LoadCard(path)
		if err != nil {
			return err
		}
		w.cards[cs.name] = &cardHandle{spec: cs, path: path, card: c, slot: card.NewInProcessReader(c), start: int64(cs.balance)}
	}

	// Start the peers, then the FEP.
	w.say("== starting the peers and the FEP on loopback (work dir %s)", d)
	if err := w.startPlatform(ctx); err != nil {
		return err
	}
	for _, code := range []string{bankA, bankB} {
		p, err := proc.Start(w.bin, d, "bank-"+code, "sim", "bank", "--config", w.bankCfg[code])
		if err != nil {
			return err
		}
		w.banks[code] = p
		if err := waitPort(ctx, p, w.bankAddr[code]); err != nil {
			return err
		}
	}
	if err := w.startFEP(ctx); err != nil {
		return err
	}
	// The kiosks.
	for i, ps := range psams {
		psam, err := vcard.NewPSAM(ps)
		if err != nil {
			return err
		}
		tmk, _ := hex.DecodeString(tmks[i])
		k, err := simkiosk.New(ctx, simkiosk.Config{Terminal: fmt.Sprintf("KIOSK00%d", i+1), TMK: tmk,
			PSAM: card.NewInProcessReader(psam), Logger: w.opt.Logger,
			Timeouts: simkiosk.Timeouts{Load: 25 * time.Second, Confirm: 5 * time.Second}})
		if err != nil {
			return err
		}
		if err := k.Dial(ctx, w.fepAddr); err != nil {
			return err
		}
		if err := retry(ctx, 15*time.Second, func() error { return k.SignIn(ctx) }); err != nil {
			return fmt.Errorf("kiosk %s sign-in: %w", k.Terminal(), err)
		}
		w.kiosks = append(w.kiosks, k)
	}
	w.say("   platform, 2 banks, FEP and 2 kiosks up; kiosks signed in")
	return nil
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func waitPort(ctx context.Context, p *proc.Process, addr string) error {
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return p.WaitPort(c, addr)
}

func retry(ctx context.Context, within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (w *world) startPlatform(ctx context.Context) error {
	p, err := proc.Start(w.bin, w.opt.Dir, "platform", "sim", "platform", "--config", w.platformCfg)
	if err != nil {
		return err
	}
	w.platform = p
	return waitPort(ctx, p, w.platformAddr)
}

func (w *world) startFEP(ctx context.Context) error {
	p, err := proc.Start(w.bin, w.opt.Dir, "fep", "serve", "--config", w.fepCfg)
	if err != nil {
		return err
	}
	w.fep = p
	return waitPort(ctx, p, w.fepAddr)
}

func (w *world) stopAll() {
	for _, k := range w.kiosks {
		k.Close()
	}
	for _, p := range []*proc.Process{w.fep, w.platform, w.banks[bankA], w.banks[bankB]} {
		if p != nil {
			p.Stop(5 * time.Second)
		}
	}
}

// load runs one load and checks the kiosk's answer code against want ("" = any).
func (w *world) load(ctx context.Context, what string, k *simkiosk.Kiosk, cardName string, acct account, amount int64, pull simkiosk.Step, want ...kiosk.Code) simkiosk.Result {
	h := w.cards[cardName]
	h.slot.Insert()
	res, err := k.Load(ctx, simkiosk.LoadParams{Card: h.slot, Amount: amount, BankCode: acct.bank, PAN: acct.pan, PIN: acct.pin, PullAt: pull})
	ok := err == nil
	if len(want) > 0 {
		ok = false
		for _, c := range want {
			if res.Code == c {
				ok = true
			}
		}
	}
	mark := "ok "
	if !ok {
		mark = "BAD"
		w.failures = append(w.failures, fmt.Sprintf("%s: code %q err %v, want %v", what, res.Code, err, want))
	}
	desc := res.String()
	if err != nil {
		desc += " error: " + err.Error()
	}
	w.say("   [%s] %-44s %s", mark, what, desc)
	h.slot.Insert()
	return res
}

// day is the scripted business day of the issue: every flow and failure once.
func (w *world) day(ctx context.Context) error {
	k1, k2 := w.kiosks[0], w.kiosks[1]
	A, B, low, silent := accounts[0], accounts[1], accounts[2], accounts[3]
	wrongPIN := A
	wrongPIN.pin = "000000"
	w.say("== the day")
	w.load(ctx, "load 10.00 on card-A via bank A", k1, "card-A", A, 1000, simkiosk.PullNone, kiosk.Approved)
	w.load(ctx, "load 20.00 on card-B via bank B", k2, "card-B", B, 2000, simkiosk.PullNone, kiosk.Approved)
	w.load(ctx, "wrong PIN", k1, "card-C", wrongPIN, 500, simkiosk.PullNone, kiosk.WrongPIN)
	w.load(ctx, "insufficient funds", k1, "card-C", low, 5000, simkiosk.PullNone, kiosk.InsufficientFunds)
	w.load(ctx, "blocked card", k2, "card-D", B, 500, simkiosk.PullNone, kiosk.CardBlocked)
	w.load(ctx, "bank timeout, reversed", k1, "card-C", silent, 700, simkiosk.PullNone, kiosk.BankTimeout, kiosk.BankUnavailable, kiosk.SystemError)
	w.load(ctx, "card-A pulled after MAC2 (before credit)", k1, "card-A", A, 1500, simkiosk.PullBeforeCredit, kiosk.Approved)
	w.load(ctx, "card-B pulled after the credit (U)", k2, "card-B", B, 2500, simkiosk.PullAfterCommit, kiosk.Approved)
	w.load(ctx, "card-A next load: re-write first", k2, "card-A", A, 300, simkiosk.PullNone, kiosk.Approved)
	w.load(ctx, "card-B next load: U found applied", k1, "card-B", B, 400, simkiosk.PullNone, kiosk.Approved)

	w.say("== platform outage: loads fail fast")
	w.platform.Kill()
	time.Sleep(2500 * time.Millisecond) // past the FEP's heartbeat timeout
	w.load(ctx, "load while the platform is down", k1, "card-C", A, 600, simkiosk.PullNone, kiosk.PlatformDown)
	if err := w.startPlatform(ctx); err != nil {
		return err
	}
	w.waitLoadable(ctx, "load once the platform is back", k1, "card-C", A, 600)

	w.say("== the FEP is killed (SIGKILL) in the middle of the day and restarted")
	w.fep.Kill()
	if err := w.startFEP(ctx); err != nil {
		return err
	}
	// The kiosks find their connection gone; they dial again and sign in, as a kiosk does.
	for _, k := range w.kiosks {
		k := k
		if err := retry(ctx, 20*time.Second, func() error {
			if err := k.Dial(ctx, w.fepAddr); err != nil {
				return err
			}
			return k.SignIn(ctx)
		}); err != nil {
			return fmt.Errorf("kiosk %s could not sign in again after the FEP restart: %w", k.Terminal(), err)
		}
	}
	w.say("   FEP back; kiosks signed in again")
	w.waitLoadable(ctx, "load after the FEP restart", k2, "card-C", B, 800)
	w.load(ctx, "card-A once more", k1, "card-A", A, 200, simkiosk.PullNone, kiosk.Approved)
	return nil
}

// waitLoadable repeats a load until it is approved: after an outage or a restart the FEP
// needs a moment to sign in again, and meanwhile refuses loads fast (which is the point).
func (w *world) waitLoadable(ctx context.Context, what string, k *simkiosk.Kiosk, cardName string, acct account, amount int64) {
	deadline := time.Now().Add(20 * time.Second)
	before := len(w.failures)
	for time.Now().Before(deadline) {
		res := w.load(ctx, what, k, cardName, acct, amount, simkiosk.PullNone)
		if res.Code == kiosk.Approved {
			w.failures = w.failures[:before] // the refusals while the FEP signed in again were expected
			return
		}
		time.Sleep(time.Second)
	}
	w.failures = append(w.failures, what+": never approved within 20s")
}

// check lets the system settle, stops everything and compares the books.
func (w *world) check(ctx context.Context) (moneycheck.Report, error) {
	w.say("== settling: waiting for reversals and confirms, then stopping every process")
	time.Sleep(6 * time.Second)
	for _, k := range w.kiosks {
		k.Close()
	}
	w.kiosks = nil
	w.stopAll()
	in := moneycheck.Input{Banks: map[string]*simbank.Ledger{}}
	for code, dir := range map[string]string{bankA: "bankA", bankB: "bankB"} {
		l, err := simbank.LoadLedger(filepath.Join(w.opt.Dir, dir))
		if err != nil {
			return moneycheck.Report{}, err
		}
		in.Banks[code] = l
		if err := writeSettlement(filepath.Join(w.opt.Dir, dir)); err != nil {
			w.say("   settlement file for %s: %v", code, err)
		}
	}
	j, err := simplatform.LoadJournal(filepath.Join(w.opt.Dir, "platform"))
	if err != nil {
		return moneycheck.Report{}, err
	}
	in.Platform = j
	for _, cs := range cardSpecs {
		b, err := os.ReadFile(w.cards[cs.name].path)
		if err != nil {
			return moneycheck.Report{}, err
		}
		st, err := vcard.ParseCardFile(b)
		if err != nil {
			return moneycheck.Report{}, err
		}
		in.Cards = append(in.Cards, moneycheck.Card{Serial: cs.serial, StartBalance: int64(cs.balance), State: &st})
	}
	n, err := unfinished(filepath.Join(w.opt.Dir, "fep"))
	if err != nil {
		return moneycheck.Report{}, err
	}
	in.Unfinished = n
	r := moneycheck.Check(in)
	w.say("== books")
	for _, code := range []string{bankA, bankB} {
		w.say("   bank %s: %d debits standing, net %d fen; platform booked %d fen", code, r.BankCount[code], r.BankNet[code], r.Booked[code])
	}
	w.say("   platform: %d loads written, %d waiting for a re-write (%d already on the card)", r.Written, r.Pending, r.PendingOnCrd)
	for _, cs := range in.Cards {
		w.say("   card %s: %d -> %d fen", cs.Serial, cs.StartBalance, cs.State.Balance)
	}
	w.say("   FEP transactions unfinished: %d", n)
	for _, f := range w.failures {
		r.Problems = append(r.Problems, "script: "+f)
	}
	return r, nil
}

// unfinished counts FEP transactions not in a final state (the FEP is stopped).
func unfinished(dir string) (int, error) {
	s, err := persistence.Open(dir, persistence.Options{})
	if err != nil {
		return 0, fmt.Errorf("open FEP store: %w", err)
	}
	defer s.Close()
	n := 0
	err = s.Scan(persistence.Key("txn"), func(_, v []byte) error {
		r, err := loads.DecodeRecord(v)
		if err != nil {
			return err
		}
		if !r.State.Final() {
			n++
		}
		return nil
	})
	if errors.Is(err, persistence.ErrStop) {
		err = nil
	}
	return n, err
}

func writeSettlement(dir string) error {
	_, _, err := simbank.WriteSettlement(dir, time.Now().Format("20060102"))
	return err
}
