package demo_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/demo"
	"github.com/quancun/quancun/bench/moneycheck"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/card/vcard"
)

// TestScriptedDay runs the whole demo day across real processes (platform, two banks, the
// FEP killed and restarted) and requires the money check from the peers' books to pass.
func TestScriptedDay(t *testing.T) {
	if testing.Short() {
		t.Skip("the scripted day takes about half a minute")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "quancun")
	build := exec.Command("go", "build", "-o", bin, "github.com/quancun/quancun/cmd/quancun")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	report, err := demo.Run(ctx, demo.Options{Bin: bin, Dir: filepath.Join(dir, "day"), Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !report.Passed() {
		t.Fatal(report.Line())
	}
	// Every flow of the day happened and was judged: the summary names each.
	for _, want := range []string{"wrong PIN", "insufficient funds", "blocked card", "bank timeout, reversed",
		"re-write first", "U found applied", "load while the platform is down", "load after the FEP restart"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "[BAD]") {
		t.Error("a step of the day got an unexpected answer")
	}
	// The books the check read are on disk, as `--out` promises.
	for _, f := range []string{"platform/journal.jsonl", "fep.log", "platform.log"} {
		if _, err := os.Stat(filepath.Join(dir, "day", f)); err != nil {
			t.Errorf("artefact %s: %v", f, err)
		}
	}
	if r := report; r.BankNet["BANKA00001"] == 0 || r.Written == 0 {
		t.Errorf("the day moved no money: %+v", r)
	}

	// The check can fail: the same books with one card one fen richer must fail it,
	// naming the card.
	day := filepath.Join(dir, "day")
	path := world.CardPath(day, "card-C")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := vcard.ParseCardFile(b)
	if err != nil {
		t.Fatal(err)
	}
	st.Balance++
	if err := vcard.SaveCardFile(path, st); err != nil {
		t.Fatal(err)
	}
	in, err := world.ReadBooks(day, demo.Banks, demo.Cards)
	if err != nil {
		t.Fatal(err)
	}
	if r := moneycheck.Check(in); r.Passed() || !strings.Contains(r.Line(), "money check: FAILED: card 0000000033445566") {
		t.Fatalf("tampered card not caught: %s", r.Line())
	}
}
