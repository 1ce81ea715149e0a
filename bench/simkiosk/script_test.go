package simkiosk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/kiosk"
)

const sampleScript = `
[defaults]
bank_code = "0102000001"
pan = "6222021234567890123"
pin = "123456"

[[step]]
card = "a.json"
amount = 1000
expect = "00"
expect_write = "S"

[[step]]
card = "a.json"
amount = 500
pin = "000000"
expect = "55"
expect_write = "none"

[[step]]
card = "a.json"
amount = 700
pull = "before-credit"
expect = "00"
expect_write = "F"

[[step]]
card = "a.json"
amount = 300
pull = "after-commit"
expect = "00"
expect_write = "U"

[[step]]
card = "a.json"
amount = 100
pull = "before-init"
expect = "none"
`

func TestParseScript(t *testing.T) {
	s, err := ParseScript([]byte(sampleScript))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 5 {
		t.Fatalf("%d steps", len(s.Steps))
	}
	st := s.Steps[1]
	if st.PIN != "000000" || st.PAN != "6222021234567890123" || st.BankCode != "0102000001" || st.Expect != "55" {
		t.Fatalf("defaults not applied: %+v", st)
	}
	if s.Steps[2].Pull != PullBeforeCredit || s.Steps[3].Pull != PullAfterCommit || s.Steps[0].Pull != PullNone {
		t.Fatalf("pulls %v %v %v", s.Steps[0].Pull, s.Steps[2].Pull, s.Steps[3].Pull)
	}
}

func TestParseScriptRejects(t *testing.T) {
	base := "[defaults]\nbank_code=\"0102000001\"\npan=\"6222021234567890123\"\n[[step]]\ncard=\"a.json\"\n"
	for name, tail := range map[string]string{
		"no steps":      "",
		"unknown key":   "amount=1\nexpekt=\"00\"\n",
		"zero amount":   "amount=0\n",
		"huge amount":   "amount=99999999999\n",
		"bad pull":      "amount=1\npull=\"sideways\"\n",
		"bad expect":    "amount=1\nexpect=\"000\"\n",
		"bad write":     "amount=1\nexpect_write=\"X\"\n",
		"bad pin":       "amount=1\npin=\"12a4\"\n",
		"bad bank code": "amount=1\nbank_code=\"01\"\n",
		"bad pan":       "amount=1\npan=\"62220212\"\n",
	} {
		src := base + tail
		if name == "no steps" {
			src = "[defaults]\npin=\"1234\"\n"
		}
		if _, err := ParseScript([]byte(src)); !errors.Is(err, ErrScript) {
			t.Errorf("%s: err = %v, want ErrScript", name, err)
		}
	}
	// The PAN never appears in an error.
	_, err := ParseScript([]byte(strings.Replace(base, "6222021234567890123", "62220212345678x0123", 1) + "amount=1\n"))
	if err == nil || strings.Contains(err.Error(), "62220212345678") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseScript(f *testing.F) {
	f.Add([]byte(sampleScript))
	f.Add([]byte("[[step]]\ncard=\"a\"\namount=1\nbank_code=\"0102000001\"\npan=\"622202123456\"\n"))
	f.Add([]byte("[[step]]\npull=\"no-confirm\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScript(b)
		if err != nil {
			return
		}
		// Whatever parses is runnable: every step passes its own validation.
		for i, st := range s.Steps {
			if err := st.validate(); err != nil {
				t.Fatalf("step %d parsed but invalid: %v", i+1, err)
			}
		}
	})
}

func writeCard(t *testing.T, dir, name string, balance uint32) {
	t.Helper()
	st, err := vcard.NewCardState(hx(t, mdlkHex), hx(t, mtkHex), hx(t, ef15Hex), balance, 100000, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := vcard.SaveCardFile(filepath.Join(dir, name), st); err != nil {
		t.Fatal(err)
	}
}

func TestRunScript(t *testing.T) {
	f, k := signedIn(t)
	dir := t.TempDir()
	writeCard(t, dir, "a.json", 5000)
	if err := os.WriteFile(filepath.Join(dir, "psam.json"), []byte(`{"terminal_id":"112233445566"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ParseScript([]byte(sampleScript))
	if err != nil {
		t.Fatal(err)
	}
	// One more step, on a card with nothing pending.
	s.Steps = append(s.Steps, ScriptStep{Card: "a.json", Amount: 200, BankCode: "0102000001", PAN: pan, PIN: goodPIN, Expect: "00", ExpectWrite: "S"})
	cards := OpenCardDir(dir, quiet())
	var seen int
	reps, err := RunScript(context.Background(), k, s, cards, func(Report) { seen++ })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if !r.OK() {
			t.Errorf("%v", r)
		}
	}
	if seen != len(reps) || len(reps) != 6 {
		t.Fatalf("%d reports, %d seen", len(reps), seen)
	}
	// Every load settles the card's pending loads first: step 4 re-writes step 3's F load,
	// and step 5 resolves step 4's U load (already on the card) before its card leaves.
	if rw := reps[3].Result.Rewrites; len(rw) != 1 || rw[0].Listed != kiosk.Failed || rw[0].Write != kiosk.Written {
		t.Fatalf("step 4 settled %+v", rw)
	}
	if rw := reps[4].Result.Rewrites; len(rw) != 1 || rw[0].Listed != kiosk.Unknown || rw[0].ResolveCode != kiosk.Approved || !rw[0].Applied {
		t.Fatalf("step 5 settled %+v", rw)
	}
	if len(reps[5].Result.Rewrites) != 0 {
		t.Fatalf("nothing left to settle at step 6: %+v", reps[5].Result.Rewrites)
	}
	// Credits went to the file: 5000 + 1000 + 700 + 300 + 200.
	st, err := vcard.LoadCard(filepath.Join(dir, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.State().Balance != 7200 {
		t.Fatalf("card file balance %d, want 7200", st.State().Balance)
	}
	sum := Summarize(reps)
	if sum.Loads != 6 || sum.Mismatches != 0 || sum.Written != 2 || sum.Failed != 1 || sum.Unknown != 1 || sum.Codes[kiosk.WrongPIN] != 1 {
		t.Fatalf("summary %v", sum)
	}
	if all, err := cards.All(); err != nil || len(all) != 1 {
		t.Fatalf("All: %d slots, %v (the PSAM file must be skipped)", len(all), err)
	}
	if n := len(f.Loads()); n != 4 {
		t.Fatalf("FEP ledger has %d loads, want 4", n)
	}
}

func TestRunScriptReportsMismatch(t *testing.T) {
	_, k := signedIn(t)
	dir := t.TempDir()
	writeCard(t, dir, "a.json", 0)
	s := Script{Steps: []ScriptStep{{Card: "a.json", Amount: 100, BankCode: "0102000001", PAN: pan, PIN: goodPIN, Expect: "55"}}}
	reps, err := RunScript(context.Background(), k, s, OpenCardDir(dir, quiet()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if reps[0].OK() || !strings.Contains(reps[0].Mismatch, "expected 55") {
		t.Fatalf("mismatch not reported: %v", reps[0])
	}
	if _, err := OpenCardDir(dir, quiet()).Slot("../x.json"); err == nil {
		t.Fatal("a card outside the directory was accepted")
	}
}

func TestRandomRunManyKiosks(t *testing.T) {
	f := startFEP(t)
	var slots []*CardSlot
	for i := 0; i < 3; i++ {
		st, err := vcard.NewCardState(hx(t, mdlkHex), hx(t, mtkHex), efWithSerial(t, byte(i+1)), 0, 1000000, 0)
		if err != nil {
			t.Fatal(err)
		}
		vc, err := vcard.NewCard(st, vcard.WithLogger(quiet()))
		if err != nil {
			t.Fatal(err)
		}
		slots = append(slots, NewCardSlot(string(rune('a'+i)), vc))
	}
	var kiosks []*Kiosk
	for i := 0; i < 3; i++ {
		k, err := New(context.Background(), Config{Terminal: "KIOSK00" + string(rune('1'+i)), TMK: hx(t, tmkHex), PSAM: testPSAM(t), Heartbeat: -1, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		if err := k.Dial(context.Background(), f.Addr()); err != nil {
			t.Fatal(err)
		}
		if err := k.SignIn(context.Background()); err != nil {
			t.Fatal(err)
		}
		kiosks = append(kiosks, k)
	}
	var mu sync.Mutex
	var all []Report
	var wg sync.WaitGroup
	for i, k := range kiosks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps, err := RandomRun(context.Background(), k, slots, 15, RandomOptions{Seed: int64(i + 1), PullRate: 0.4,
				Payers: []Payer{{BankCode: bankCode, PAN: pan, PIN: goodPIN}}}, nil)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			all = append(all, reps...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sum := Summarize(all)
	if sum.Loads != 45 || sum.Errors != 0 {
		for _, r := range all {
			if r.Err != nil {
				t.Log(r)
			}
		}
		t.Fatalf("summary %v", sum)
	}
	// Money: every card holds exactly its S loads at the stand-in, plus what is still
	// pending there (approved, F or U) only when it is on the card already (U after commit
	// or crash after credit). So: card balance == sum of S loads + sum of pending loads
	// whose credit reached the card. Check the weaker, exact-for-S form after settling
	// every card with one more load each.
	for _, s := range slots {
		if _, err := s.Use(context.Background(), kiosks[0], LoadParams{Amount: 1, BankCode: bankCode, PAN: pan, PIN: goodPIN}); err != nil {
			t.Fatal(err)
		}
	}
	perCard := map[[8]byte]int64{}
	for _, l := range f.Loads() {
		if l.Status != 'S' {
			t.Fatalf("load %s still %c after settling", l.Ref, l.Status)
		}
		perCard[l.Card] += l.Amount
	}
	for _, s := range slots {
		st := s.Card.State()
		var serial [8]byte
		copy(serial[:], st.EF15[12:20])
		if int64(st.Balance) != perCard[serial] {
			t.Errorf("card %s: balance %d, loads S %d", s.Name, st.Balance, perCard[serial])
		}
	}
}

func efWithSerial(t *testing.T, n byte) []byte {
	b := hx(t, ef15Hex)
	b[19] = n
	return b
}
