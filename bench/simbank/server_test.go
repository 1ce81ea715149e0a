package simbank

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
)

const (
	testZMK  = "00112233445566778899AABBCCDDEEFF"
	panOK    = "6222021234567890123"
	panPoor  = "6222021234567890001"
	panBlock = "6222021234567890002"
	panSlow  = "6222021234567890003"
)

func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	c := Config{Listen: "127.0.0.1:0", DataDir: dir, BankCode: "0102000001", ZMK: testZMK,
		Accounts: []AccountConfig{
			{PAN: panOK, PIN: "123456", Balance: 100000},
			{PAN: panPoor, PIN: "1111", Balance: 500},
			{PAN: panBlock, PIN: "1111", Balance: 100000, Blocked: true},
			{PAN: panSlow, PIN: "1111", Balance: 100000},
		}}
	c.Faults.TimeoutPANs = []string{panSlow}
	c.Faults.Seed = 1
	return c
}

// startBank runs a bank on a free port until the test ends.
func startBank(t testing.TB, cfg Config, opts ...Option) *Server {
	t.Helper()
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// fep is the FEP side of the link, built from io/bank and io/hsm as the real FEP would be.
type fep struct {
	t    testing.TB
	c    net.Conn
	d    bank.Dialect
	hsm  *hsm.Soft
	term bank.Terminal
	stan uint32
}

func dialFEP(t testing.TB, s *Server, dialect string) *fep {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d, err := DialectByName(dialect)
	if err != nil {
		t.Fatal(err)
	}
	m, err := hsm.NewSoft([]byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	zmk, _ := hex.DecodeString(testZMK)
	if _, err := m.ImportClear("zmk", hsm.UsageKEK, zmk); err != nil {
		t.Fatal(err)
	}
	return &fep{t: t, c: c, d: d, hsm: m, term: bank.Terminal{ID: "FEP00001", Merchant: "898310048990001"}, stan: 100}
}

func (f *fep) send(m bank.Message) {
	f.t.Helper()
	var p []byte
	var err error
	switch m.(type) {
	case *bank.Debit, *bank.Reversal:
		p, err = f.d.PackMACed(m, f.macer())
	default:
		p, err = f.d.Pack(m)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.sendRaw(p)
}

func (f *fep) sendRaw(p []byte) {
	f.t.Helper()
	if err := frame.Write(f.c, p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fep) macer() bank.MACer {
	return bank.MACFunc(func(mab []byte) ([]byte, error) { return f.hsm.MAC("mak", hsmAlg(f.d.MAC), mab) })
}

// recv reads one answer within wait; nil on timeout.
func (f *fep) recv(wait time.Duration) *bank.Frame {
	f.t.Helper()
	f.c.SetReadDeadline(time.Now().Add(wait))
	p, err := frame.Read(f.c, 0)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		f.t.Fatal(err)
	}
	fr, err := f.d.Decode(p)
	if err != nil {
		f.t.Fatal(err)
	}
	if fr.Fields.Has(64) && fr.Fields.Get(39) != "97" { // a 97 comes before any keys
		if err := fr.VerifyMAC(bank.Recompute(f.macer())); err != nil {
			f.t.Fatalf("answer MAC: %v", err)
		}
	}
	return fr
}

func (f *fep) must(wait time.Duration) *bank.Frame {
	f.t.Helper()
	fr := f.recv(wait)
	if fr == nil {
		f.t.Fatal("no answer")
	}
	return fr
}

// signOn signs on and imports the issued keys, which checks their KCVs.
func (f *fep) signOn() *bank.SignOnResponse {
	f.t.Helper()
	f.stan++
	f.send(&bank.SignOn{STAN: f.stan, Terminal: f.term, Operator: "001"})
	r, ok := f.must(2 * time.Second).Msg.(*bank.SignOnResponse)
	if !ok || r.Code != "00" {
		f.t.Fatalf("0810: %+v", r)
	}
	err := r.Keys.Verify(func(name string, wrapped []byte) ([]byte, error) {
		usage, kcv := hsm.UsagePIN, r.Keys.PIKKCV
		if name == "MAK" {
			usage, kcv = hsm.UsageMAC, r.Keys.MAKKCV
		}
		info, err := f.hsm.Import(strings.ToLower(name), usage, "zmk", wrapped, kcv)
		if err != nil {
			return nil, err
		}
		return hex.DecodeString(info.KCV)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fep) debitMsg(pan, pin string, amount int64) *bank.Debit {
	f.t.Helper()
	f.stan++
	d := &bank.Debit{PAN: pan, ProcCode: "000000", Amount: amount, STAN: f.stan, EntryMode: "021",
		Condition: "00", Terminal: f.term, Currency: "156", F60: bank.F60{Type: "22", Batch: 1, Code: "000"}}
	if pin != "" {
		b, err := f.hsm.EncryptPIN("pik", pin, pan)
		if err != nil {
			f.t.Fatal(err)
		}
		d.PINBlock, d.PINCapture, d.SecurityCtl = b, "12", "2600000000000000"
	}
	return d
}

// debit sends a 0200 and returns its 0210.
func (f *fep) debit(d *bank.Debit) *bank.DebitResponse {
	f.t.Helper()
	f.send(d)
	r, ok := f.must(2 * time.Second).Msg.(*bank.DebitResponse)
	if !ok {
		f.t.Fatal("not a 0210")
	}
	return r
}

func (f *fep) reverse(d *bank.Debit, repeat bool) *bank.ReversalResponse {
	f.t.Helper()
	rev := bank.ReversalOf(d, bank.ReasonTimeout)
	rev.Repeat = repeat
	f.send(&rev)
	r, ok := f.must(2 * time.Second).Msg.(*bank.ReversalResponse)
	if !ok {
		f.t.Fatal("not a reversal answer")
	}
	return r
}

func balance(t testing.TB, s *Server, pan string) int64 {
	t.Helper()
	b, ok := s.Balance(pan)
	if !ok {
		t.Fatalf("no account %s", pan)
	}
	return b
}

func TestSignOnIssuesKeysUnderZMK(t *testing.T) {
	s := startBank(t, testConfig(t, t.TempDir()))
	f := dialFEP(t, s, "cups-pos")
	r := f.signOn()
	if r.Batch == 0 || len(r.Keys.PIKKCV) != 4 || bytes.Equal(r.Keys.PIK, r.Keys.MAK) {
		t.Fatalf("0810 %+v", r)
	}
	// A second sign-on issues different keys.
	r2 := f.signOn()
	if bytes.Equal(r.Keys.MAKKCV, r2.Keys.MAKKCV) || r2.Batch == r.Batch {
		t.Fatal("second sign-on reused keys or batch")
	}
	// Echo.
	f.send(&bank.Echo{NetRequest: bank.NetRequest{STAN: 9, Terminal: f.term, Batch: r2.Batch}})
	if e, ok := f.must(time.Second).Msg.(*bank.EchoResponse); !ok || e.Code != "00" || e.STAN != 9 {
		t.Fatalf("echo answer %+v", e)
	}
}

func TestApprovedDebitIsJournaled(t *testing.T) {
	dir := t.TempDir()
	s := startBank(t, testConfig(t, dir))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 1234)
	r := f.debit(d)
	if r.Code != "00" || len(r.RRN) != 12 || len(r.AuthCode) != 6 || len(r.SettleDate) != 4 ||
		len(r.LocalTime) != 6 || len(r.LocalDate) != 4 || r.STAN != d.STAN || r.Amount != 1234 {
		t.Fatalf("0210 %+v", r)
	}
	if got := balance(t, s, panOK); got != 100000-1234 {
		t.Fatalf("balance %d", got)
	}
	// The journal on disk says the same, readable by another process.
	l, err := LoadLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := bank.KeyOfMessage(&f.d, r).String()
	jd := l.Debit(key)
	if jd == nil || jd.RRN != r.RRN || jd.Amount != 1234 || jd.Reversed || l.Find("FEP00001", fmt.Sprintf("%06d", d.STAN)) != jd {
		t.Fatalf("journal debit %+v for key %s", jd, key)
	}
	if tot := l.Totals(); tot.Approved != 1 || tot.Net != 1234 || l.BankCode != "0102000001" {
		t.Fatalf("totals %+v", tot)
	}
	if b, _ := l.Balance(panOK); b != 100000-1234 {
		t.Fatalf("ledger balance %d", b)
	}
	// No PIN in the journal.
	raw, _ := os.ReadFile(filepath.Join(dir, JournalName))
	if bytes.Contains(raw, []byte("123456\"")) || bytes.Contains(raw, []byte("pin\"")) {
		t.Fatal("journal mentions a PIN")
	}
}

func TestDeclines(t *testing.T) {
	s := startBank(t, testConfig(t, t.TempDir()))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	for _, c := range []struct {
		pan, pin string
		amount   int64
		want     string
	}{
		{panOK, "654321", 100, "55"},
		{panPoor, "1111", 501, "51"},
		{"6222029999999999999", "1111", 100, "14"},
		{panBlock, "1111", 100, "41"},
		{panOK, "", 100, "55"},
		{panPoor, "1111", 500, "00"},
	} {
		r := f.debit(f.debitMsg(c.pan, c.pin, c.amount))
		if r.Code != c.want {
			t.Errorf("%s amount %d: code %s, want %s", maskPAN(c.pan), c.amount, r.Code, c.want)
		}
	}
	if b := balance(t, s, panPoor); b != 0 {
		t.Fatalf("poor balance %d", b)
	}
	if b := balance(t, s, panOK); b != 100000 {
		t.Fatalf("declines moved money: %d", b)
	}
}

func TestPINTriesExceeded(t *testing.T) {
	dir := t.TempDir()
	s := startBank(t, testConfig(t, dir))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	var codes []string
	for range 3 {
		codes = append(codes, f.debit(f.debitMsg(panOK, "000000", 100)).Code)
	}
	codes = append(codes, f.debit(f.debitMsg(panOK, "123456", 100)).Code) // right PIN, too late
	if strings.Join(codes, ",") != "55,55,75,75" {
		t.Fatalf("codes %v", codes)
	}
	l, err := LoadLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a := l.Accounts[panOK]; a.PINTries != 3 {
		t.Fatalf("pin tries after replay %d", a.PINTries)
	}
}

func TestDuplicate0200DebitsOnce(t *testing.T) {
	s := startBank(t, testConfig(t, t.TempDir()))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 700)
	r1 := f.debit(d)
	r2 := f.debit(d)
	if r1.Code != "00" || r2.Code != "00" || r1.RRN != r2.RRN || r1.AuthCode != r2.AuthCode {
		t.Fatalf("answers differ: %+v / %+v", r1, r2)
	}
	if b := balance(t, s, panOK); b != 100000-700 {
		t.Fatalf("balance %d: debited twice?", b)
	}
	// Same terminal+STAN with another amount: 94, nothing debited.
	other := *d
	other.Amount = 1
	if r := f.debit(&other); r.Code != "94" {
		t.Fatalf("reused STAN: %s", r.Code)
	}
	if tot := s.Totals(); tot.Approved != 1 {
		t.Fatalf("totals %+v", tot)
	}
}

func TestReversalRestoresBalanceOnce(t *testing.T) {
	dir := t.TempDir()
	s := startBank(t, testConfig(t, dir))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 2500)
	if r := f.debit(d); r.Code != "00" {
		t.Fatal(r.Code)
	}
	r1 := f.reverse(d, false)
	r2 := f.reverse(d, true) // 0401 of an already done reversal
	if r1.Code != "00" || r2.Code != "00" || r1.RRN != r2.RRN || r1.STAN != d.STAN {
		t.Fatalf("reversal answers %+v / %+v", r1, r2)
	}
	if b := balance(t, s, panOK); b != 100000 {
		t.Fatalf("balance %d", b)
	}
	l, err := LoadLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tot := l.Totals(); tot.Approved != 1 || tot.Reversed != 1 || tot.Net != 0 || len(l.Reversals) != 1 {
		t.Fatalf("totals %+v, %d reversals", tot, len(l.Reversals))
	}
}

func TestReversalOvertakesRequest(t *testing.T) {
	s := startBank(t, testConfig(t, t.TempDir()))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 900)
	if r := f.reverse(d, false); r.Code != "25" {
		t.Fatalf("reversal of unknown: %s", r.Code)
	}
	if r := f.debit(d); r.Code != "94" { // the original, arriving late
		t.Fatalf("late original: %s", r.Code)
	}
	if r := f.reverse(d, true); r.Code != "25" {
		t.Fatalf("repeat: %s", r.Code)
	}
	if b := balance(t, s, panOK); b != 100000 {
		t.Fatalf("balance %d", b)
	}
}

func TestRestartKeepsBooks(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s1.Run(ctx) }()
	f := dialFEP(t, s1, "cups-pos")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 3000)
	f.debit(d)
	f.debit(f.debitMsg(panOK, "000000", 1)) // a wrong PIN is remembered too
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Torn tail: a crash in the middle of a write.
	jf, _ := os.OpenFile(filepath.Join(dir, JournalName), os.O_APPEND|os.O_WRONLY, 0)
	jf.WriteString(`{"seq":99,"type":"deb`)
	jf.Close()

	cfg.Accounts[0].Balance = 5 // ignored: the journal knows the account
	s2 := startBank(t, cfg)
	if b := balance(t, s2, panOK); b != 100000-3000 {
		t.Fatalf("balance after restart %d", b)
	}
	f2 := dialFEP(t, s2, "cups-pos")
	f2.stan = f.stan
	// Keys are not kept: a new bank process wants a sign-on.
	f2.hsm = f.hsm
	if r := f2.debit(f2.debitMsg(panOK, "123456", 1)); r.Code != "97" {
		t.Fatalf("before sign-on: %s", r.Code)
	}
	f2.signOn()
	if r := f2.reverse(d, true); r.Code != "00" {
		t.Fatalf("reversal after restart: %s", r.Code)
	}
	if b := balance(t, s2, panOK); b != 100000 {
		t.Fatalf("balance %d", b)
	}
}

func TestBadMACIsA0(t *testing.T) {
	s := startBank(t, testConfig(t, t.TempDir()))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 100)
	p, err := f.d.PackMACed(d, f.macer())
	if err != nil {
		t.Fatal(err)
	}
	p[len(p)-1] ^= 0x01
	f.sendRaw(p)
	r := f.must(2 * time.Second).Msg.(*bank.DebitResponse)
	if r.Code != "A0" {
		t.Fatalf("code %s", r.Code)
	}
	if b := balance(t, s, panOK); b != 100000 {
		t.Fatalf("balance %d", b)
	}
	// The same STAN with a good MAC is a fresh request: the A0 decided nothing.
	if r := f.debit(d); r.Code != "00" {
		t.Fatalf("after A0: %s", r.Code)
	}
}

func TestFaults(t *testing.T) {
	t.Run("timeout_pans", func(t *testing.T) {
		s := startBank(t, testConfig(t, t.TempDir()))
		f := dialFEP(t, s, "cups-pos")
		f.signOn()
		d := f.debitMsg(panSlow, "1111", 400)
		f.send(d)
		if fr := f.recv(300 * time.Millisecond); fr != nil {
			t.Fatalf("answered %s", fr.Fields.MTI)
		}
		if b := balance(t, s, panSlow); b != 100000-400 {
			t.Fatalf("the unanswered debit was not made: %d", b)
		}
		if r := f.reverse(d, false); r.Code != "00" || balance(t, s, panSlow) != 100000 {
			t.Fatalf("reversal %s", r.Code)
		}
	})
	t.Run("drop_rate", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.Faults.DropRate = 1
		s := startBank(t, cfg)
		f := dialFEP(t, s, "cups-pos")
		f.signOn() // sign-on is never dropped
		f.send(f.debitMsg(panOK, "123456", 10))
		if fr := f.recv(300 * time.Millisecond); fr != nil {
			t.Fatal("drop_rate 1 answered")
		}
	})
	t.Run("duplicate_rate", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.Faults.DuplicateRate = 1
		s := startBank(t, cfg)
		f := dialFEP(t, s, "cups-pos")
		f.signOn()
		r := f.debit(f.debitMsg(panOK, "123456", 10))
		again, ok := f.must(time.Second).Msg.(*bank.DebitResponse)
		if !ok || again.RRN != r.RRN {
			t.Fatal("no duplicate 0210")
		}
		if b := balance(t, s, panOK); b != 100000-10 {
			t.Fatalf("balance %d", b)
		}
	})
	t.Run("late", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.Faults.LateRate, cfg.Faults.LateDelay = 1, 400*time.Millisecond
		s := startBank(t, cfg)
		f := dialFEP(t, s, "cups-pos")
		f.signOn()
		f.send(f.debitMsg(panOK, "123456", 10))
		if f.recv(150*time.Millisecond) != nil {
			t.Fatal("late answer came early")
		}
		if f.recv(time.Second) == nil {
			t.Fatal("late answer never came")
		}
	})
}

func TestAdviceDialect(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Dialect = "cups-advice-x919"
	s := startBank(t, cfg)
	f := dialFEP(t, s, "cups-advice-x919")
	f.signOn()
	d := f.debitMsg(panOK, "123456", 50)
	if r := f.debit(d); r.Code != "00" {
		t.Fatal(r.Code)
	}
	rev := bank.ReversalOf(d, bank.ReasonMAC)
	f.send(&rev)
	fr := f.must(2 * time.Second)
	if fr.Fields.MTI != "0430" || fr.Msg.(*bank.ReversalResponse).Code != "00" {
		t.Fatalf("answer %s", fr.Fields.MTI)
	}
	if b := balance(t, s, panOK); b != 100000 {
		t.Fatalf("balance %d", b)
	}
}

func TestConcurrentConnections(t *testing.T) {
	s := startBank(t, testConfig(t, t.TempDir()))
	const n, each = 4, 5
	feps := make([]*fep, n)
	for i := range feps {
		feps[i] = dialFEP(t, s, "cups-pos")
		feps[i].term.ID = fmt.Sprintf("FEP%05d", i)
		feps[i].signOn()
	}
	errs := make(chan error, n)
	for _, f := range feps {
		// Packed here, sent and read in the goroutine without t (no Fatal off the test goroutine).
		var frames [][]byte
		for range each {
			p, err := f.d.PackMACed(f.debitMsg(panOK, "123456", 10), f.macer())
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, p)
		}
		go func() {
			for _, p := range frames {
				if err := frame.Write(f.c, p); err != nil {
					errs <- err
					return
				}
				f.c.SetReadDeadline(time.Now().Add(5 * time.Second))
				a, err := frame.Read(f.c, 0)
				if err != nil {
					errs <- err
					return
				}
				fr, err := f.d.Decode(a)
				if err != nil {
					errs <- err
					return
				}
				if err := fr.VerifyMAC(bank.Recompute(f.macer())); err != nil {
					errs <- err
					return
				}
				if c := fr.Fields.Get(39); c != "00" {
					errs <- fmt.Errorf("%s: code %s", f.term.ID, c)
					return
				}
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if b := balance(t, s, panOK); b != 100000-n*each*10 {
		t.Fatalf("balance %d", b)
	}
}
