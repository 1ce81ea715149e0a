package fep

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/actors/terminal"
)

const minimal = `
[psam]
mac_master = "0123456789ABCDEFFEDCBA9876543210"
[[kiosks]]
terminal = "KIOSK001"
psam = "112233445566"
tmk = "00112233445566778899AABBCCDDEEFF"
[platform]
addr = "127.0.0.1:1"
auth_code = "QC0000000000000AUTH1"
ltk = "11111111111111112222222222222222"
[[banks]]
code = "0102000001"
addr = "127.0.0.1:2"
zmk = "33333333333333334444444444444444"
terminal = "QCFEP001"
`

func TestExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../testdata/fep.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Kiosks) != 2 || len(c.Banks) != 1 || c.Limits.Confirm.Duration != 120*time.Second ||
		c.PSAM.KeyUsage != 0x27 || c.Platform.AuthCode != "QC0000000000000AUTH1" {
		t.Fatalf("%+v", c)
	}
	// KIOSK002 has no tmk: derived from the demo master, and not equal to another kiosk's.
	k2, err := c.TMK(1)
	if err != nil || len(k2) != 16 {
		t.Fatalf("derived TMK: %v", err)
	}
	k1, _ := c.TMK(0)
	if string(k1) == string(k2) {
		t.Fatal("derived TMK equals the configured one")
	}
}

func TestDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	f := c.FEP
	if f.Node != DefaultNode || f.DataDir != DefaultDataDir || f.KioskListen != DefaultKioskListen ||
		f.LogLevel != "info" || f.HeartbeatTimeout.Duration != terminal.DefaultHeartbeatTimeout ||
		c.PSAM.KeyIndex != 1 || c.Limits.KioskLoad.Duration != terminal.DefaultLoadTimeout ||
		c.Limits.Drain.Duration != DefaultDrain {
		t.Fatalf("defaults: %+v %+v", f, c.Limits)
	}
	m, demo, err := c.Master()
	if err != nil || !demo || len(m) != 16 {
		t.Fatalf("demo master: %v %v", demo, err)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct{ edit, key string }{
		{`[fep]` + "\n" + `log_level = "loud"`, "fep.log_level"},
		{`[fep]` + "\n" + `master_key = "00"`, "fep.master_key"},
		{`[fep]` + "\n" + `master_key = "0000000000000000` + `0000000000000000"`, "fep.master_key"},
		{`[fep]` + "\n" + `heartbeat_timeout = "soon"`, "heartbeat_timeout"},
		{`[fep]` + "\n" + `nodename = "x"`, "fep.nodename"},
		{`[fep]` + "\n" + `node = "a b"`, "fep.node"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(minimal + c.edit))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: want error naming %s, got %v", c.edit, c.key, err)
		}
	}
	replace := []struct{ old, new, key string }{
		{`auth_code = "QC0000000000000AUTH1"`, `auth_code = "short"`, "platform.auth_code"},
		{`addr = "127.0.0.1:1"`, `addr = ""`, "platform.addr"},
		{`terminal = "KIOSK001"`, `terminal = "K1"`, "kiosks[0].terminal"},
		{`psam = "112233445566"`, `psam = "1122"`, "kiosks[0].psam"},
		{`tmk = "00112233445566778899AABBCCDDEEFF"`, ``, "kiosks[0].tmk"},
		{`code = "0102000001"`, `code = "01"`, "banks[0].code"},
		{`zmk = "33333333333333334444444444444444"`, `zmk = "xyz"`, "banks[0].zmk"},
		{`terminal = "QCFEP001"`, `terminal = "QCFEP001"` + "\n" + `dialect = "iso93"`, "banks[0].dialect"},
		{`mac_master = "0123456789ABCDEFFEDCBA9876543210"`, ``, "psam.mac_master"},
	}
	for _, r := range replace {
		_, err := ParseConfig([]byte(strings.Replace(minimal, r.old, r.new, 1)))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), r.key) {
			t.Errorf("%q: want error naming %s, got %v", r.new, r.key, err)
		}
	}
	if _, err := ParseConfig([]byte(minimal + "[[kiosks]]\nterminal = \"KIOSK001\"\npsam = \"112233445567\"\ntmk = \"00112233445566778899AABBCCDDEEFF\"\n")); err == nil ||
		!strings.Contains(err.Error(), "kiosks[1].terminal") {
		t.Errorf("duplicate terminal: %v", err)
	}
}

func TestMasterKeyFile(t *testing.T) {
	p := t.TempDir() + "/master.hex"
	os.WriteFile(p, []byte("00112233445566778899AABBCCDDEEFF\n"), 0o600)
	c, err := ParseConfig([]byte(minimal + "[fep]\nmaster_key_file = \"" + p + "\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, demo, err := c.Master()
	if err != nil || demo || m[0] != 0x00 || m[15] != 0xFF {
		t.Fatalf("%X %v %v", m, demo, err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimal))
	if b, err := os.ReadFile("../../testdata/fep.example.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("[fep]\nheartbeat_timeout = \"-5s\"\n"))
	f.Add([]byte("[[kiosks]]\n[[banks]]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not ErrConfig: %v", err)
			}
			return
		}
		// A config that parses can be used: keys decode, TMKs derive.
		if _, _, err := c.Master(); err != nil && c.FEP.MasterKeyFile == "" {
			t.Fatalf("parsed config without usable master: %v", err)
		}
		for i := range c.Kiosks {
			if _, err := c.TMK(i); err != nil {
				t.Fatalf("kiosk %d: %v", i, err)
			}
		}
	})
}
