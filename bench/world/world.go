// Package world sets up the whole load network on loopback — the one-card platform, bank
// hosts and the FEP, each a real `quancun` process with its own books on disk, and kiosks
// with virtual cards driven in-process over real TCP — and reads the books back for the
// money check. The demo, the fault campaign and the bench all stand on it.
package world

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
	"sync"
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/proc"
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/persistence"
)

// AuthCode is the FEP's authorisation code at the simulated platform.
const AuthCode = "QC0769LOADFEP0000001"

// The card master keys of every simulated card (the defaults of `quancun sim card --init`).
const (
	MDLK = "11111111111111112222222222222222"
	MTK  = "33333333333333334444444444444444"
)

// Account is a bank card: which bank holds it, its PIN and opening balance (fen).
type Account struct {
	Bank, PAN, PIN string
	Balance        int64
	Silent         bool // the bank never answers this card's 0200 (a deterministic timeout)
}

// CardSpec is a city card: its app serial (16 hex digits) and opening balance (fen).
type CardSpec struct {
	Name    string
	Serial  string
	Balance uint32
	Blocked bool // blocked at the platform
}

// Options describe the network. Zero values take the demo's.
type Options struct {
	Bin      string // the quancun binary the peers run from
	Dir      string // where configs, books, card files and logs go
	Banks    []string
	Accounts []Account
	Cards    []CardSpec
	Kiosks   int
	// Limits is the [limits] table of the FEP config (TOML body); "" = fast demo limits.
	Limits string
	// Interpose lets a caller put something (a fault proxy) between the FEP and a peer:
	// given the link ("platform", "bank:<code>") and the peer's address, it returns the
	// address the FEP should dial.
	Interpose func(link, addr string) (string, error)
	// KioskTimeouts for the simulated kiosks; zero fields take fast defaults.
	KioskTimeouts simkiosk.Timeouts
	Logger        *slog.Logger
}

// DefaultLimits are short timeouts so a demo day or a campaign settles in seconds.
const DefaultLimits = `bank = "3s"
confirm = "3s"
kiosk = "20s"
book_first = "500ms"
book_max = "2s"
confirm_first = "500ms"
confirm_max = "2s"
grace = "2s"
`

// Card is one virtual card in the world: its file and the slot the kiosks use.
type Card struct {
	Spec  CardSpec
	Path  string
	Card  *vcard.Card
	Slot  *card.InProcessReader
	mu    sync.Mutex // one kiosk at a time holds the card
	Start int64
}

// Hold takes the card for one load (kiosks share cards).
func (c *Card) Hold() func() { c.mu.Lock(); return c.mu.Unlock }

// World is the running network.
type World struct {
	opt                   Options
	PlatformAddr, FTPAddr string
	BankAddr              map[string]string
	FEPAddr               string
	platformCfg, fepCfg   string
	bankCfg               map[string]string
	bankDir               map[string]string
	Platform, FEP         *proc.Process
	BankProc              map[string]*proc.Process
	Kiosks                []*simkiosk.Kiosk
	Cards                 map[string]*Card
	tmks                  []string
	psams                 []vcard.PSAMState
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Start writes every config, starts the platform, the banks and the FEP, and signs the
// kiosks in. Stop undoes it.
func Start(ctx context.Context, opt Options) (*World, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Kiosks == 0 {
		opt.Kiosks = 2
	}
	if opt.Limits == "" {
		opt.Limits = DefaultLimits
	}
	w := &World{opt: opt, BankAddr: map[string]string{}, bankCfg: map[string]string{}, bankDir: map[string]string{},
		BankProc: map[string]*proc.Process{}, Cards: map[string]*Card{}}
	if err := w.configure(); err != nil {
		return nil, err
	}
	if err := w.start(ctx); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

func (w *World) configure() error {
	d := w.opt.Dir
	for _, sub := range []string{"platform", "fep", "cards"} {
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
	w.PlatformAddr, w.FTPAddr, w.FEPAddr = port(), port(), port()
	for _, code := range w.opt.Banks {
		w.BankAddr[code] = port()
		w.bankDir[code] = "bank-" + code
	}
	if err != nil {
		return err
	}
	ltk, psamMaster := randHex(16), randHex(16)
	zmk := map[string]string{}
	for _, code := range w.opt.Banks {
		zmk[code] = randHex(16)
	}
	for range w.opt.Kiosks {
		w.tmks = append(w.tmks, randHex(16))
	}

	// The platform.
	var blocked []string
	for _, c := range w.opt.Cards {
		if c.Blocked {
			blocked = append(blocked, fmt.Sprintf("%q", c.Serial))
		}
	}
	w.platformCfg = filepath.Join(d, "platform.toml")
	if err := os.WriteFile(w.platformCfg, []byte(fmt.Sprintf(`listen = %q
data_dir = "platform"
auth_codes = [%q]
ltk = %q
mdlk = %q
mtk = %q
ceiling = 10000000
max_amount = 100000
blocked = [%s]
[ftp]
listen = %q
`, w.PlatformAddr, AuthCode, ltk, MDLK, MTK, strings.Join(blocked, ", "), w.FTPAddr)), 0o644); err != nil {
		return err
	}
	// The banks.
	for _, code := range w.opt.Banks {
		var b strings.Builder
		fmt.Fprintf(&b, "listen = %q\ndata_dir = %q\nbank_code = %q\nzmk = %q\n", w.BankAddr[code], w.bankDir[code], code, zmk[code])
		var silent []string
		for _, a := range w.opt.Accounts {
			if a.Bank == code && a.Silent {
				silent = append(silent, fmt.Sprintf("%q", a.PAN))
			}
		}
		fmt.Fprintf(&b, "[faults]\ntimeout_pans = [%s]\n", strings.Join(silent, ", "))
		for _, a := range w.opt.Accounts {
			if a.Bank == code {
				fmt.Fprintf(&b, "[[accounts]]\npan = %q\npin = %q\nbalance = %d\n", a.PAN, a.PIN, a.Balance)
			}
		}
		w.bankCfg[code] = filepath.Join(d, w.bankDir[code]+".toml")
		if err := os.WriteFile(w.bankCfg[code], []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	// The FEP, dialling the peers (or whatever Interpose puts in front of them).
	dial := func(link, addr string) (string, error) {
		if w.opt.Interpose == nil {
			return addr, nil
		}
		return w.opt.Interpose(link, addr)
	}
	var f strings.Builder
	fmt.Fprintf(&f, "[fep]\nnode = \"fep1\"\ndata_dir = %q\nkiosk_listen = %q\nmaster_key = %q\nmerchant = \"898310048990001\"\n",
		filepath.Join(d, "fep"), w.FEPAddr, randHex(16))
	fmt.Fprintf(&f, "[psam]\nmac_master = %q\n", psamMaster)
	pa, err := dial("platform", w.PlatformAddr)
	if err != nil {
		return err
	}
	fmt.Fprintf(&f, "[platform]\naddr = %q\nauth_code = %q\nltk = %q\nheartbeat_interval = \"1s\"\nheartbeat_timeout = \"1s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n", pa, AuthCode, ltk)
	for i, code := range w.opt.Banks {
		ba, err := dial("bank:"+code, w.BankAddr[code])
		if err != nil {
			return err
		}
		fmt.Fprintf(&f, "[[banks]]\ncode = %q\naddr = %q\nzmk = %q\nterminal = \"FEP%05d\"\nresponse_timeout = \"3s\"\necho_interval = \"2s\"\necho_timeout = \"2s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n",
			code, ba, zmk[code], i+1)
	}
	fmt.Fprintf(&f, "[limits]\n%s", w.opt.Limits)
	for i := range w.tmks {
		tid, psamNo := KioskID(i), fmt.Sprintf("11%010d", i+1)
		fmt.Fprintf(&f, "[[kiosks]]\nterminal = %q\npsam = %q\ntmk = %q\n", tid, psamNo, w.tmks[i])
		ef15 := mustHex(fmt.Sprintf("%020d01010000", i+1))
		w.psams = append(w.psams, vcard.PSAMState{TerminalID: mustHex(psamNo), EF15: ef15,
			Keys: []vcard.PSAMKey{{Usage: vcard.HexByte(simkiosk.DefaultMACKeyUsage), Index: vcard.HexByte(simkiosk.DefaultMACKeyIndex), Key: mustHex(psamMaster)}}})
	}
	w.fepCfg = filepath.Join(d, "fep.toml")
	if err := os.WriteFile(w.fepCfg, []byte(f.String()), 0o644); err != nil {
		return err
	}

	// The cards.
	for _, cs := range w.opt.Cards {
		ef15 := mustHex("869820007590000001052000" + "0000000000000000" + "20240101203412310100")
		copy(ef15[12:20], mustHex(cs.Serial))
		st, err := vcard.NewCardState(mustHex(MDLK), mustHex(MTK), ef15, cs.Balance, 10000000, 0)
		if err != nil {
			return fmt.Errorf("card %s: %w", cs.Name, err)
		}
		path := CardPath(d, cs.Name)
		if err := vcard.SaveCardFile(path, st); err != nil {
			return err
		}
		c, err := vcard.LoadCard(path)
		if err != nil {
			return err
		}
		w.Cards[cs.Name] = &Card{Spec: cs, Path: path, Card: c, Slot: card.NewInProcessReader(c), Start: int64(cs.Balance)}
	}
	return nil
}

// CardPath is where card name's file lives in a world's dir.
func CardPath(dir, name string) string { return filepath.Join(dir, "cards", name+".json") }

// KioskID is the terminal id of kiosk i.
func KioskID(i int) string { return fmt.Sprintf("KIOSK%03d", i+1) }

func (w *World) start(ctx context.Context) error {
	if err := w.StartPlatform(ctx); err != nil {
		return err
	}
	for _, code := range w.opt.Banks {
		p, err := proc.Start(w.opt.Bin, w.opt.Dir, "bank-"+code, "sim", "bank", "--config", w.bankCfg[code])
		if err != nil {
			return err
		}
		w.BankProc[code] = p
		if err := waitPort(ctx, p, w.BankAddr[code]); err != nil {
			return err
		}
	}
	if err := w.StartFEP(ctx); err != nil {
		return err
	}
	for i, ps := range w.psams {
		psam, err := vcard.NewPSAM(ps)
		if err != nil {
			return err
		}
		to := w.opt.KioskTimeouts
		if to.Load == 0 {
			to.Load = 25 * time.Second
		}
		if to.Confirm == 0 {
			to.Confirm = 5 * time.Second
		}
		k, err := simkiosk.New(ctx, simkiosk.Config{Terminal: KioskID(i), TMK: mustHex(w.tmks[i]),
			PSAM: card.NewInProcessReader(psam), Logger: w.opt.Logger, Timeouts: to})
		if err != nil {
			return err
		}
		w.Kiosks = append(w.Kiosks, k)
	}
	return w.SignInKiosks(ctx)
}

// SignInKiosks (re)connects every kiosk and signs it in, retrying while the FEP comes up.
func (w *World) SignInKiosks(ctx context.Context) error {
	for _, k := range w.Kiosks {
		if err := Retry(ctx, 20*time.Second, func() error {
			if err := k.Dial(ctx, w.FEPAddr); err != nil {
				return err
			}
			return k.SignIn(ctx)
		}); err != nil {
			return fmt.Errorf("kiosk %s sign-in: %w", k.Terminal(), err)
		}
	}
	return nil
}

func waitPort(ctx context.Context, p *proc.Process, addr string) error {
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return p.WaitPort(c, addr)
}

// Retry calls f until it succeeds, within passes, or ctx ends.
func Retry(ctx context.Context, within time.Duration, f func() error) error {
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

// StartPlatform starts (or restarts) the platform process.
func (w *World) StartPlatform(ctx context.Context) error {
	p, err := proc.Start(w.opt.Bin, w.opt.Dir, "platform", "sim", "platform", "--config", w.platformCfg)
	if err != nil {
		return err
	}
	w.Platform = p
	return waitPort(ctx, p, w.PlatformAddr)
}

// StartFEP starts (or restarts) the FEP process.
func (w *World) StartFEP(ctx context.Context) error {
	p, err := proc.Start(w.opt.Bin, w.opt.Dir, "fep", "serve", "--config", w.fepCfg)
	if err != nil {
		return err
	}
	w.FEP = p
	return waitPort(ctx, p, w.FEPAddr)
}

// Stop closes the kiosks and stops every process (SIGTERM, then SIGKILL).
func (w *World) Stop() {
	for _, k := range w.Kiosks {
		k.Close()
	}
	w.Kiosks = nil
	ps := []*proc.Process{w.FEP, w.Platform}
	for _, code := range w.opt.Banks {
		ps = append(ps, w.BankProc[code])
	}
	for _, p := range ps {
		if p != nil {
			p.Stop(5 * time.Second)
		}
	}
}

// BankDir is where bank code keeps its books.
func (w *World) BankDir(code string) string { return bankDir(w.opt.Dir, code) }

func bankDir(dir, code string) string { return filepath.Join(dir, "bank-"+code) }

// Books reads every peer's books (the world must be stopped, so the FEP store can be
// opened) for the money check.
func (w *World) Books() (moneycheck.Input, error) {
	return ReadBooks(w.opt.Dir, w.opt.Banks, w.opt.Cards)
}

// ReadBooks reads the books a world left in dir: the banks' ledgers, the platform's
// journal, the card files and the FEP's unfinished transactions.
func ReadBooks(dir string, banks []string, cards []CardSpec) (moneycheck.Input, error) {
	in := moneycheck.Input{Banks: map[string]*simbank.Ledger{}}
	for _, code := range banks {
		l, err := simbank.LoadLedger(bankDir(dir, code))
		if err != nil {
			return in, err
		}
		in.Banks[code] = l
	}
	j, err := simplatform.LoadJournal(filepath.Join(dir, "platform"))
	if err != nil {
		return in, err
	}
	in.Platform = j
	for _, cs := range cards {
		b, err := os.ReadFile(CardPath(dir, cs.Name))
		if err != nil {
			return in, err
		}
		st, err := vcard.ParseCardFile(b)
		if err != nil {
			return in, err
		}
		in.Cards = append(in.Cards, moneycheck.Card{Serial: cs.Serial, StartBalance: int64(cs.Balance), State: &st})
	}
	n, err := Unfinished(filepath.Join(dir, "fep"))
	if err != nil {
		return in, err
	}
	in.Unfinished = n
	return in, nil
}

// Unfinished counts FEP transactions not in a final state (the FEP must be stopped).
func Unfinished(dir string) (int, error) {
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
