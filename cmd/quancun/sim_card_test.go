package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quancun/quancun/io/card/vcard"
)

func simRun(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), &Env{Stdout: &o, Stderr: &e}, args)
	return code, o.String(), e.String()
}

func TestSimCardInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	code, out, errOut := simRun("sim", "card", "--init", path, "--serial", "0000000012345678", "--balance", "5000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "0000000012345678") {
		t.Errorf("stdout %q does not name the serial", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := vcard.ParseCardFile(b)
	if err != nil {
		t.Fatal(err)
	}
	// Spec 9.2: the keys diversified for serial 0000000012345678 from the demo masters.
	if got := strings.ToUpper(string(simHex(t, st.LoadKeys[0].Key))); got != "3ECEA84455E3E0F66522F0ABB69CB30A" {
		t.Errorf("DLK %s", got)
	}
	if got := string(simHex(t, st.TACKey)); got != "4A7A62B4C9BF7199D7E11613B1EBE0A1" {
		t.Errorf("DTK %s", got)
	}
	if got := string(simHex(t, st.EF15)); got != demoEF15 || st.Balance != 5000 || st.OnlineSerial != 0 {
		t.Errorf("ef15 %s balance %d serial %d", got, st.Balance, st.OnlineSerial)
	}

	// A card file is money: never overwritten.
	if code, _, errOut := simRun("sim", "card", "--init", path, "--balance", "1"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("second --init: exit %d, %q; want 1 and 'exists'", code, errOut)
	}
}

func TestSimCardInitSerial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	if code, _, errOut := simRun("sim", "card", "--init", path, "--serial", "00000000ABCDEF01", "--balance", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, _ := os.ReadFile(path)
	st, err := vcard.ParseCardFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(simHex(t, st.EF15[12:20])); got != "00000000ABCDEF01" {
		t.Errorf("app serial in 0015 = %s", got)
	}
}

func TestSimCardUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"sim", "card"}, 2},
		{[]string{"sim", "card", "--help"}, 0},
		{[]string{"sim", "card", "--init", filepath.Join(dir, "a"), "--card", "x"}, 2},
		{[]string{"sim", "card", "--init", filepath.Join(dir, "b"), "--serial", "123"}, 1},
		{[]string{"sim", "card", "--init", filepath.Join(dir, "c"), "--balance", "200000"}, 1},
		{[]string{"sim", "card", "--card", filepath.Join(dir, "missing.json")}, 1},
		{[]string{"sim", "psam"}, 2},
		{[]string{"sim", "psam", "--psam", filepath.Join(dir, "missing.json")}, 1},
	} {
		if code, _, errOut := simRun(tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
	}
}

func simHex(t *testing.T, h vcard.Hex) []byte {
	t.Helper()
	b, err := h.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
