package simbank

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const exampleConfig = `
listen = "127.0.0.1:0"
data_dir = "bank-a"
bank_code = "0102000001"
dialect = "cups-advice-x919"
zmk = "00112233445566778899AABBCCDDEEFF"
settle_date = "tomorrow"

[faults]
latency = "5ms"
jitter = "2ms"
drop_rate = 0.01
timeout_pans = ["6222021234567890003"]
seed = 7

[[accounts]]
pan = "6222021234567890123"
pin = "123456"
balance = 100000

[[accounts]]
pan = "6222021234567890002"
pin = "1111"
balance = 0
blocked = true
block_code = "62"
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dialect != "cups-advice-x919" || c.Faults.Latency != 5*time.Millisecond || c.Faults.DropRate != 0.01 ||
		len(c.Accounts) != 2 || c.Accounts[1].BlockCode != "62" || c.Accounts[0].BlockCode != DefaultBlockCode ||
		c.MaxPINTries != 3 || c.MatchWindow != DefaultMatchWindow || c.Faults.LateDelay != DefaultLateDelay ||
		c.AcquirerID != DefaultAcquirerID {
		t.Fatalf("%+v", c)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bank.toml")
	os.WriteFile(path, []byte(exampleConfig), 0o644)
	lc, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if lc.DataDir != filepath.Join(dir, "bank-a") {
		t.Fatalf("data_dir %s", lc.DataDir)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	base := "data_dir = \"d\"\nbank_code = \"0102000001\"\nzmk = \"00112233445566778899AABBCCDDEEFF\"\n"
	if _, err := ParseConfig([]byte(base)); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for name, extra := range map[string]string{
		"typo":        "drop_rate = 0.5\n", // belongs under [faults]
		"short code":  "bank_code = \"01\"\n",
		"dialect":     "dialect = \"martian\"\n",
		"rate":        "[faults]\ndrop_rate = 1.5\n",
		"pan":         "[[accounts]]\npan = \"12ab\"\n",
		"pin":         "[[accounts]]\npan = \"6222021234567890123\"\npin = \"12\"\n",
		"balance":     "[[accounts]]\npan = \"6222021234567890123\"\nbalance = -1\n",
		"settle":      "settle_date = \"1340\"\n",
		"negative":    "[faults]\nlatency = \"-1s\"\n",
		"timeout pan": "[faults]\ntimeout_pans = [\"x\"]\n",
		"pin tries":   "max_pin_tries = 100\n",
		"twice":       "[[accounts]]\npan = \"6222021234567890123\"\n[[accounts]]\npan = \"6222021234567890123\"\n",
		"not toml":    "= = =\n",
	} {
		in := base + extra
		if strings.HasPrefix(extra, "bank_code") {
			in = strings.Replace(base, "bank_code = \"0102000001\"\n", extra, 1)
		}
		if _, err := ParseConfig([]byte(in)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := ParseConfig([]byte("bank_code = \"0102000001\"\nzmk = \"00112233445566778899AABBCCDDEEFF\"\n")); err == nil {
		t.Error("no data_dir accepted")
	}
	if _, err := ParseConfig([]byte("data_dir = \"d\"\nbank_code = \"0102000001\"\nzmk = \"0011223344556677\"\n")); err == nil {
		t.Error("short zmk accepted")
	}
	if _, err := ParseConfig([]byte("data_dir = \"d\"\nbank_code = \"0102000001\"\nzmk = \"0011223344556677001122334455667 7\"\n")); err == nil {
		t.Error("bad zmk accepted")
	}
}

func TestSettleRule(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	for rule, want := range map[string]string{"today": "20261231", "tomorrow": "20270101", "0102": "20270102", "1230": "20261230"} {
		r, err := parseSettleRule(rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.date(at); got != want {
			t.Errorf("%s: %s, want %s", rule, got, want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(exampleConfig))
	f.Add([]byte("data_dir = \"d\"\nbank_code = \"0102000001\"\nzmk = \"00112233445566778899AABBCCDDEEFF\"\n"))
	f.Add([]byte("[faults]\ndrop_rate = nan\n"))
	f.Add([]byte("settle_date = \"0229\"\nmatch_window = 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// Whatever parses is usable: validation holds and the dialect exists.
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config fails validation: %v", err)
		}
		if _, err := DialectByName(c.Dialect); err != nil {
			t.Fatal(err)
		}
		if r, err := parseSettleRule(c.SettleDate); err != nil || len(r.date(time.Now())) != 8 {
			t.Fatalf("settle rule %q", c.SettleDate)
		}
	})
}
