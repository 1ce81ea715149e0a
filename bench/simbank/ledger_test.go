package simbank

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/recon"
)

func TestSettlementFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	at := time.Date(2026, 2, 28, 12, 1, 2, 0, time.Local)
	s := startBank(t, cfg, WithClock(func() time.Time { return at }))
	f := dialFEP(t, s, "cups-pos")
	f.signOn()
	d1 := f.debitMsg(panOK, "123456", 1000)
	d2 := f.debitMsg(panOK, "123456", 250)
	r1, r2 := f.debit(d1), f.debit(d2)
	d3 := f.debitMsg(panOK, "999999", 5)
	f.debit(d3)
	if r := f.reverse(d2, false); r.Code != "00" {
		t.Fatal(r.Code)
	}
	path, body, err := WriteSettlement(dir, "20260228")
	if err != nil {
		t.Fatal(err)
	}
	// D and R of d2 share its key; the declined 0200 is listed with its 55.
	lines, err := recon.ParseSettlement(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("recon cannot read it: %v\n%s", err, body)
	}
	want := []string{
		"0102000001|FEP00001|" + stan(d1.STAN) + "|" + r1.RRN + "|20260228120102|" + panOK + "|1000|00|D|20260228",
		"0102000001|FEP00001|" + stan(d2.STAN) + "|" + r2.RRN + "|20260228120102|" + panOK + "|250|00|D|20260228",
		"0102000001|FEP00001|" + stan(d2.STAN) + "|",
		"0102000001|FEP00001|" + stan(d3.STAN) + "|",
	}
	got := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 4 || got[0] != "4|1505" || got[1] != want[0] || got[2] != want[1] ||
		!strings.HasPrefix(got[3], want[2]) || !strings.HasSuffix(got[3], "|250|00|R|20260228") ||
		!strings.HasPrefix(got[4], want[3]) || !strings.HasSuffix(got[4], "|5|55|D|20260228") {
		t.Fatalf("settlement\n%s", body)
	}
	if lines[2].Key() != lines[1].Key() {
		t.Fatal("reversal does not share the debit's key")
	}
	if filepath.Base(path) != "SETTLE_0102000001_20260228.txt" {
		t.Fatal(path)
	}
	again, _ := os.ReadFile(path)
	_, body2, _ := WriteSettlement(dir, "20260228")
	if !bytes.Equal(again, body2) {
		t.Fatal("second run differs")
	}
	if _, body, _ := WriteSettlement(dir, "20260301"); string(body) != "0|0\n" {
		t.Fatalf("other day %q", body)
	}
	if _, _, err := WriteSettlement(dir, "2026-02-28"); err == nil {
		t.Fatal("bad date accepted")
	}
}

func stan(n uint32) string { return fmt.Sprintf("%06d", n) }

func TestJournalRefusesInconsistentBooks(t *testing.T) {
	open := `{"seq":1,"type":"bank","at":"2026-01-01T00:00:00Z","bank_code":"0102000001"}
{"seq":2,"type":"open","at":"2026-01-01T00:00:00Z","account":{"pan":"6222021234567890123","balance":100,"blocked":false}}
`
	for name, tail := range map[string]string{
		"overdraw": `{"seq":3,"type":"debit","at":"2026-01-01T00:00:00Z","debit":{"key":"k","terminal":"T","stan":"000001","pan":"6222021234567890123","amount":101,"code":"00"}}` + "\n",
		"gap":      `{"seq":4,"type":"bank","at":"2026-01-01T00:00:00Z","bank_code":"x"}` + "\n",
		"credit":   `{"seq":3,"type":"reversal","at":"2026-01-01T00:00:00Z","reversal":{"key":"r","original":"nope","credited":true}}` + "\n",
		"unknown":  `{"seq":3,"type":"mint","at":"2026-01-01T00:00:00Z"}` + "\n",
		"field":    `{"seq":3,"type":"bank","bank_code":"x","balance":5}` + "\n",
	} {
		if _, _, err := replay(strings.NewReader(open + tail)); !errors.Is(err, ErrJournal) {
			t.Errorf("%s: %v", name, err)
		}
	}
	l, _, err := replay(strings.NewReader(open))
	if err != nil || l.Accounts["6222021234567890123"].Balance != 100 {
		t.Fatalf("good journal: %v", err)
	}
}

func TestDataDirOfAnotherBank(t *testing.T) {
	dir := t.TempDir()
	s, err := New(testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx)
	cfg := testConfig(t, dir)
	cfg.BankCode = "0999000001"
	if _, err := New(cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("other bank's books opened: %v", err)
	}
}

func FuzzReplay(f *testing.F) {
	f.Add([]byte(`{"seq":1,"type":"bank","at":"2026-01-01T00:00:00Z","bank_code":"0102000001"}` + "\n"))
	f.Add([]byte(`{"seq":1,"type":"open","at":"2026-01-01T00:00:00Z","account":{"pan":"6222021234567890123","balance":100}}
{"seq":2,"type":"debit","at":"2026-01-01T00:00:00Z","debit":{"key":"k","terminal":"T","stan":"000001","pan":"6222021234567890123","amount":40,"code":"00"}}
{"seq":3,"type":"reversal","at":"2026-01-01T00:00:00Z","reversal":{"key":"r","original":"k","terminal":"T","stan":"000001","credited":true}}
`))
	f.Add([]byte("{\"seq\":1,\"type\""))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, _, err := replay(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever replays keeps the books straight and never goes negative.
		if err := l.Check(); err != nil {
			t.Fatal(err)
		}
		for _, a := range l.Accounts {
			if a.Balance < 0 {
				t.Fatalf("negative balance %d", a.Balance)
			}
		}
		_ = recon.WriteSettlement(io.Discard, l.Settlement("20260101"))
	})
}
