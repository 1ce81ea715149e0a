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
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/recon"
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

	// The reconciliation outputs are in the world dir; the file follows DESIGN 8 and its
	// S rows are exactly what the banks' ledgers say they took.
	checkReconFile(t, filepath.Join(dir, "day"), out.String())

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

// checkReconFile reads the QC file the day left: it parses (recon.ParseFile checks every
// field), its header matches its rows, and the sum of its S rows equals the banks' net
// debits (approved minus reversed) from their own ledgers.
func checkReconFile(t *testing.T, day, summary string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(day, "QC_"+world.AuthCode+"_*.txt"))
	if len(files) != 1 {
		t.Fatalf("reconciliation files in %s: %v, want one", day, files)
	}
	date := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(files[0]), "QC_"+world.AuthCode+"_"), ".txt")
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	recs, h, err := recon.ParseFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v\n%s", files[0], err, b)
	}
	var total, sumS int64
	for _, r := range recs {
		total += r.Amount
		if r.Txn == recon.TxnOK {
			sumS += r.Amount
		}
		if r.AcctDate != date {
			t.Errorf("row %s has accounting date %s in the file of %s", r.Ref, r.AcctDate, date)
		}
	}
	if h.Count != len(recs) || h.Total != total {
		t.Errorf("header %d|%d, rows %d summing to %d", h.Count, h.Total, len(recs), total)
	}
	var net int64
	for _, code := range demo.Banks {
		l, err := simbank.LoadLedger(filepath.Join(day, "bank-"+code))
		if err != nil {
			t.Fatal(err)
		}
		net += l.Totals().Net
	}
	if sumS != net || net == 0 {
		t.Errorf("file S rows sum to %d fen, banks' net debits %d fen\n%s", sumS, net, b)
	}
	_, run, text, html := demo.ReconFiles(date)
	for _, f := range []string{filepath.Base(files[0]), run, text, html} {
		if _, err := os.Stat(filepath.Join(day, f)); err != nil {
			t.Errorf("reconciliation output %s: %v", f, err)
		}
		if !strings.Contains(summary, filepath.Join(day, f)) {
			t.Errorf("the summary does not say where %s is", f)
		}
	}
	if rep, _ := os.ReadFile(filepath.Join(day, run)); !bytes.Contains(rep, []byte("5   success")) {
		t.Errorf("run report:\n%s", rep)
	}
}
