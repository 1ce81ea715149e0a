package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quancun/quancun/bench/simkiosk/kiosktest"
	"github.com/quancun/quancun/io/card/vcard"
)

const testTMK = "00112233445566778899AABBCCDDEEFF"

func mustHexCLI(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kioskFixture makes a card directory with two demo cards (made by `sim card --init`), a
// PSAM file beside them and a running FEP stand-in.
func kioskFixture(t *testing.T) (dir string, fep *kiosktest.FEP) {
	t.Helper()
	dir = t.TempDir()
	for i, serial := range []string{"0000000012345678", "0000000012345679"} {
		path := filepath.Join(dir, []string{"a.json", "b.json"}[i])
		if code, _, errOut := simRun("sim", "card", "--init", path, "--serial", serial, "--balance", "5000"); code != 0 {
			t.Fatalf("sim card --init: %s", errOut)
		}
	}
	psam := vcard.PSAMState{TerminalID: mustHexCLI(t, "112233445566"), EF15: make(vcard.Hex, 14),
		Keys: []vcard.PSAMKey{{Usage: 0x27, Index: 0x01, Key: mustHexCLI(t, "0123456789ABCDEFFEDCBA9876543210")}}}
	if err := vcard.SavePSAMFile(filepath.Join(dir, "psam.json"), psam); err != nil {
		t.Fatal(err)
	}
	fep, err := kiosktest.Start(kiosktest.Config{TMK: mustHexCLI(t, testTMK),
		PSAMMaster: mustHexCLI(t, "0123456789ABCDEFFEDCBA9876543210"),
		MDLK:       mustHexCLI(t, demoMDLK), MTK: mustHexCLI(t, demoMTK), PIN: "123456",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fep.Close)
	return dir, fep
}

func runKiosk(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = runSimKiosk(context.Background(), &Env{Stdout: &o, Stderr: &e}, args)
	return o.String(), e.String(), err
}

func TestSimKioskScript(t *testing.T) {
	dir, fep := kioskFixture(t)
	script := filepath.Join(t.TempDir(), "loads.toml")
	if err := os.WriteFile(script, []byte(`
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
card = "b.json"
amount = 500
pull = "after-commit"
expect = "00"
expect_write = "U"

[[step]]
card = "b.json"
amount = 100
expect = "00"
expect_write = "S"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runKiosk(t, "--fep", fep.Addr(), "--terminal", "KIOSK001", "--tmk", testTMK,
		"--psam", filepath.Join(dir, "psam.json"), "--cards", dir, "--script", script)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "summary: loads=3 errors=0 mismatches=0") {
		t.Fatalf("output:\n%s", out)
	}
	if !strings.Contains(lines[1], "write=U") || !strings.Contains(lines[2], "applied=true") {
		t.Fatalf("output:\n%s", out)
	}
	if strings.Contains(out+errOut, "6222021234567890123") || strings.Contains(out+errOut, "123456\"") {
		t.Fatal("PAN or PIN in the output")
	}
	// The credits are in the card files.
	for name, want := range map[string]uint32{"a.json": 6000, "b.json": 5600} {
		c, err := vcard.LoadCard(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.State().Balance; got != want {
			t.Errorf("%s balance %d, want %d", name, got, want)
		}
	}
}

func TestSimKioskRandomAndMismatch(t *testing.T) {
	dir, fep := kioskFixture(t)
	out, _, err := runKiosk(t, "--fep", fep.Addr(), "--terminal", "KIOSK002", "--tmk", testTMK,
		"--psam", filepath.Join(dir, "psam.json"), "--cards", dir, "--random", "6", "--seed", "3")
	if err != nil || !strings.Contains(out, "summary: loads=6 errors=0") {
		t.Fatalf("%v\n%s", err, out)
	}
	// A wrong PIN under --random: every load is declined, which is not an error...
	out, _, err = runKiosk(t, "--fep", fep.Addr(), "--terminal", "KIOSK002", "--tmk", testTMK,
		"--psam", filepath.Join(dir, "psam.json"), "--cards", dir, "--random", "2", "--pin", "654321")
	if err != nil || !strings.Contains(out, "codes=[55:2]") {
		t.Fatalf("%v\n%s", err, out)
	}
	// ...but in a script that expects 00 it is a mismatch and exit status 1.
	script := filepath.Join(t.TempDir(), "s.toml")
	if err := os.WriteFile(script, []byte("[[step]]\ncard=\"a.json\"\namount=10\nbank_code=\"0102000001\"\npan=\"6222021234567890123\"\npin=\"000000\"\nexpect=\"00\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = runKiosk(t, "--fep", fep.Addr(), "--terminal", "KIOSK002", "--tmk", testTMK,
		"--psam", filepath.Join(dir, "psam.json"), "--cards", dir, "--script", script)
	if !errors.Is(err, errRunFailed) || !strings.Contains(out, "MISMATCH") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestSimKioskUsage(t *testing.T) {
	code, _, errOut := simRunKiosk(t, "--help")
	if code != 0 || !strings.Contains(errOut, "--script") || !strings.Contains(errOut, "re-write F, resolve U") {
		t.Fatalf("help: exit %d\n%s", code, errOut)
	}
	for _, args := range [][]string{
		{},
		{"--fep", "x:1", "--terminal", "SHORT"},
		{"--fep", "x:1", "--terminal", "KIOSK001", "--tmk", "00", "--psam", "p", "--cards", "d", "--random", "1"},
		{"--fep", "x:1", "--terminal", "KIOSK001", "--tmk", testTMK, "--psam", "p", "--cards", "d"},
	} {
		_, errOut, err := runKiosk(t, args...)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v", args, err)
		}
		if strings.Contains(errOut, testTMK) {
			t.Errorf("%v: TMK echoed", args)
		}
	}
}

// simRunKiosk runs the command through runSimKiosk with run's exit-code mapping.
func simRunKiosk(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	out, errOut, err := runKiosk(t, args...)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0, out, errOut
	case errors.Is(err, errUsage):
		return 2, out, errOut
	}
	return 1, out, errOut
}
