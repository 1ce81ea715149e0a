package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
	"github.com/quancun/quancun/recon"
)

const (
	tBank   = "BANK000001"
	tTerm   = "FEP00001"
	tPAN    = "6222021234567890123"
	tAuth   = "QC0000000000000AUTH1"
	tDate   = "20260127"
	tSerial = "0000000012345678"
)

// reconLoad is one load of the command tests' day, with what the bank and the platform did.
type reconLoad struct {
	n        int
	amount   int64
	txnSt    txn.TxnStatus
	write    txn.WriteStatus
	rev      txn.ReversalState
	settle   string
	debit    string // bank D line response, "" none
	reversal string // bank R line response, "" none
	booked   bool
	pwrite   string // platform confirm, "" none
	want     recon.Outcome
}

// reconDay has all five outcomes (3 and 4 by injected bank faults: a reversal the FEP never
// asked for, a debit the bank lost), a cancelled load and a declined one.
var reconDay = []reconLoad{
	{n: 1, amount: 1000, txnSt: txn.TxnS, write: txn.WriteS, settle: "0127", debit: "00", booked: true, pwrite: "S", want: recon.Success},
	{n: 2, amount: 2000, txnSt: txn.TxnS, write: txn.WriteF, settle: "0127", debit: "00", booked: true, pwrite: "F", want: recon.Rewrite},
	{n: 3, amount: 3000, txnSt: txn.TxnS, write: txn.WriteU, settle: "0127", debit: "00", booked: false, want: recon.PlatformMissing},
	{n: 4, amount: 4000, txnSt: txn.TxnS, write: txn.WriteS, settle: "0127", debit: "00", reversal: "00", booked: true, pwrite: "S", want: recon.BankMissing},
	{n: 5, amount: 5000, txnSt: txn.TxnS, write: txn.WriteF, settle: "0127", debit: "96", booked: true, pwrite: "F", want: recon.BankMissingNoCard},
	{n: 6, amount: 600, txnSt: txn.TxnC, rev: txn.ReversalAcked, reversal: "25", want: recon.Cancelled},
	{n: 7, amount: 700, settle: "0127", debit: "51"}, // declined: not in the file
}

func started(n int) time.Time {
	z, _ := time.LoadLocation("Asia/Shanghai")
	return time.Date(2026, 1, 27, 9+n, 0, 0, 0, z)
}

func ref(n int) string { return fmt.Sprintf("%s%012d", tDate, n) }

// writeReconWorld writes the FEP config and store, the bank's settlement file and the
// platform's journal for reconDay; it returns the config path, the settlement file and the
// platform dir.
func writeReconWorld(t *testing.T, ftp string) (cfgPath, settle, platDir string) {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "fep")
	s, err := persistence.Open(store, persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var ops []persistence.Op
	var lines []recon.SettlementLine
	var journal bytes.Buffer
	jl := func(v map[string]any) {
		b, _ := json.Marshal(v)
		journal.Write(append(b, '\n'))
	}
	for _, l := range reconDay {
		id := fmt.Sprintf("KIOSK001-%06d", l.n)
		at := started(l.n)
		stan := fmt.Sprintf("%06d", l.n)
		resp := l.debit
		st := txn.State{ID: id, Phase: txn.PhaseDone, Terminal: "KIOSK001", Amount: l.amount, BankCode: tBank,
			STAN: stan, Ref: ref(l.n), BankResp: resp, SettleDate: l.settle, Txn: l.txnSt, Write: l.write,
			Reversal: l.rev, Started: at}
		rec := loads.Record{V: 1, State: st, Batch: 7, Start: messages.StartLoad{TxnID: id, Payer: messages.BankCard{PAN: tPAN}},
			Debit: &messages.BankDebit{ReqID: id, Bank: tBank, STAN: stan, Amount: l.amount}}
		v, _ := json.Marshal(rec)
		ops = append(ops, persistence.Op{Key: loads.TxnKey(id), Value: v},
			persistence.Op{Key: loads.DayKey(at.Format("20060102"), id), Value: []byte(id)})
		local := at.Local().Format("20060102150405")
		sl := recon.SettlementLine{BankCode: tBank, Terminal: tTerm, STAN: stan, RRN: fmt.Sprintf("%012d", l.n),
			LocalTime: local, PAN: tPAN, Amount: l.amount, SettleDate: tDate}
		if l.debit != "" {
			d := sl
			d.Resp, d.Type = l.debit, recon.SettleDebit
			lines = append(lines, d)
		}
		if l.reversal != "" {
			r := sl
			r.Resp, r.Type = l.reversal, recon.SettleReversal
			lines = append(lines, r)
		}
		jl(map[string]any{"ev": "check", "at": at, "batch": 7, "ref": ref(l.n), "card": tSerial, "amount": l.amount,
			"bank_code": tBank, "kiosk": map[string]string{"terminal": "KIOSK001", "trace": stan, "date": "0127"},
			"init": map[string]any{"serial": l.n, "random": "01020304", "term": "112233445566", "old_balance": 0,
				"key_index": 1, "key_version": 1, "alg": 0, "mac1": "0A0B0C0D"}})
		if l.booked {
			jl(map[string]any{"ev": "book", "at": at.Add(time.Second), "batch": 7, "ref": ref(l.n), "mac2": "AABBCCDD",
				"host_time": at.Format("20060102150405"), "rrn": fmt.Sprintf("%012d", l.n), "auth": "A1", "settle": tDate})
		}
		if l.pwrite != "" {
			jl(map[string]any{"ev": "confirm", "at": at.Add(2 * time.Second), "ref": ref(l.n), "write": l.pwrite})
		}
	}
	// An approved debit no FEP record points to (bank fault: a debit from nowhere).
	lines = append(lines, recon.SettlementLine{BankCode: tBank, Terminal: tTerm, STAN: "999999", RRN: "000000999999",
		LocalTime: started(1).Local().Format("20060102150405"), PAN: tPAN, Amount: 9900, Resp: "00",
		Type: recon.SettleDebit, SettleDate: tDate})
	if err := s.Commit(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var sb bytes.Buffer
	recon.SortSettlement(lines)
	if err := recon.WriteSettlement(&sb, lines); err != nil {
		t.Fatal(err)
	}
	settle = filepath.Join(dir, "SETTLE_"+tBank+"_"+tDate+".txt")
	platDir = filepath.Join(dir, "platform")
	os.MkdirAll(platDir, 0o755)
	if err := os.WriteFile(settle, sb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(platDir, simplatform.JournalFile), journal.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[fep]
data_dir = %q
[psam]
mac_master = "0123456789ABCDEFFEDCBA9876543210"
[[kiosks]]
terminal = "KIOSK001"
psam = "112233445566"
tmk = "00112233445566778899AABBCCDDEEFF"
[platform]
addr = "127.0.0.1:1"
auth_code = %q
ltk = "11111111111111112222222222222222"
[[banks]]
code = %q
addr = "127.0.0.1:2"
zmk = "33333333333333334444444444444444"
terminal = %q
[business_day]
cutover = "23:00"
time_zone = "Asia/Shanghai"
[reconciliation]
ftp_addr = %q
user = "quancun"
password = "quancun"
`, store, tAuth, tBank, tTerm, ftp)
	cfgPath = filepath.Join(dir, "fep.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, settle, platDir
}

const wantReconFile = `6|15600
20260127000000000001|7|6222021234567890123|BANK000001|20260127|1000|20260127100000|S|S
20260127000000000002|7|6222021234567890123|BANK000001|20260127|2000|20260127110000|F|S
20260127000000000003|7|6222021234567890123|BANK000001|20260127|3000|20260127120000|U|S
20260127000000000004|7|6222021234567890123|BANK000001|20260127|4000|20260127130000|S|S
20260127000000000005|7|6222021234567890123|BANK000001|20260127|5000|20260127140000|F|S
20260127000000000006|7|6222021234567890123|BANK000001|20260127|600|20260127150000|F|C
`

func runCmd(t *testing.T, f func(context.Context, *Env, []string) error, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := f(context.Background(), &Env{Stdout: &out, Stderr: &errb}, args)
	return out.String() + errb.String(), err
}

// TestReconFileUpload writes the file from a stopped FEP's store, byte for byte, and
// uploads it to the platform peer's embedded FTP server (tmp name, then rename).
func TestReconFileUpload(t *testing.T) {
	platDir := t.TempDir()
	plat, err := simplatform.New(simplatform.Config{DataDir: platDir, Listen: "127.0.0.1:0",
		FTP: simplatform.FTPConfig{Listen: "127.0.0.1:0"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := plat.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plat.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cfg, _, _ := writeReconWorld(t, plat.FTPAddr().String())
	out := filepath.Join(t.TempDir(), "qc.txt")
	msg, err := runCmd(t, runReconFile, "--date", tDate, "--config", cfg, "--out", out, "--upload", "--upload-timeout", "30s")
	if err != nil {
		t.Fatalf("recon file: %v\n%s", err, msg)
	}
	got, _ := os.ReadFile(out)
	if string(got) != wantReconFile {
		t.Fatalf("file:\n%s\nwant:\n%s", got, wantReconFile)
	}
	name := recon.FileName(tAuth, tDate)
	up, err := os.ReadFile(filepath.Join(plat.UploadDir(), name))
	if err != nil || !bytes.Equal(up, got) {
		t.Fatalf("uploaded %s: %v (%d bytes, want %d)\n%s", name, err, len(up), len(got), msg)
	}
	if _, err := os.Stat(filepath.Join(plat.UploadDir(), name+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary name left on the server: %v", err)
	}
	if !strings.Contains(msg, "header 6|15600") {
		t.Errorf("output: %s", msg)
	}
	// Again: the same bytes (the rename overwrites; a second upload must not change the file).
	if msg, err := runCmd(t, runReconFile, "--date", tDate, "--config", cfg, "--out", out, "--upload"); err != nil {
		t.Fatalf("second run: %v\n%s", err, msg)
	}
	if again, _ := os.ReadFile(filepath.Join(plat.UploadDir(), name)); !bytes.Equal(again, got) {
		t.Fatal("second upload changed the file")
	}
	// Usage errors.
	if _, err := runCmd(t, runReconFile, "--config", cfg); err != errUsage {
		t.Errorf("no --date: %v", err)
	}
	if _, err := runCmd(t, runReconFile, "--date", "2026-01-27", "--config", cfg); err != errUsage {
		t.Errorf("bad --date: %v", err)
	}
}

// TestReconRun classifies a day with all five outcomes, a cancelled load and an unmatched
// bank debit, and checks the report's lines and actions.
func TestReconRun(t *testing.T) {
	cfg, settle, platDir := writeReconWorld(t, "")
	report := filepath.Join(t.TempDir(), "run.txt")
	msg, err := runCmd(t, runReconRun, "--date", tDate, "--config", cfg, "--bank-settlement", settle,
		"--platform-journal", platDir, "--out", report)
	if err != nil {
		t.Fatalf("recon run: %v\n%s", err, msg)
	}
	b, _ := os.ReadFile(report)
	rep := string(b)
	for _, want := range []string{
		"1   platform-missing             1          30.00  book-on-platform",
		"2   rewrite                      1          20.00  leave-for-rewrite",
		"3   bank-missing                 1          40.00  manual",
		"4   bank-missing-no-card         1          50.00  manual",
		"5   success                      1          10.00  none",
		"6   cancelled                    1           6.00  none",
		"7   unmatched-fep                0           0.00  manual",
		"8   unmatched-bank               1          99.00  manual",
		"9   unmatched-platform           0           0.00  manual",
		"every load                   7",
		"NOT BOOKED BY THIS RUN",
		"   20260127000000000003  BANK000001        3000 fen  book-on-platform",
		"FEP txn status S, bank booked=false",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Log("\n" + rep)
	}
	// Every load of the day is in exactly one outcome: each reference appears once.
	for _, l := range reconDay[:6] {
		if n := strings.Count(rep, ref(l.n)); n != 1 {
			t.Errorf("reference %s appears %d times in the report", ref(l.n), n)
		}
	}
	if strings.Contains(rep, ref(7)) {
		t.Error("the declined load is in the report")
	}
	// The same inputs give the same report.
	again := filepath.Join(t.TempDir(), "run2.txt")
	runCmd(t, runReconRun, "--date", tDate, "--config", cfg, "--bank-settlement", settle, "--platform-journal", platDir, "--out", again)
	if b2, _ := os.ReadFile(again); !bytes.Equal(b, b2) {
		t.Error("a second run wrote another report")
	}
}

func TestReportClearing(t *testing.T) {
	cfg, _, _ := writeReconWorld(t, "")
	csv, err := runCmd(t, runReportClearing, "--date", tDate, "--config", cfg, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	// Loads with txn S: 1000+2000+3000+4000+5000 fen; open (F/U): 2000+3000+5000; reversed 600.
	if !strings.Contains(csv, "BANK000001,5,15000,1,600,3,10000") {
		t.Errorf("csv:\n%s", csv)
	}
	text, err := runCmd(t, runReportClearing, "--date", tDate, "--config", cfg)
	if err != nil || !strings.Contains(text, "150.00") {
		t.Errorf("text: %v\n%s", err, text)
	}
	if _, err := runCmd(t, runReportClearing, "--date", tDate, "--config", cfg, "--format", "pdf"); err != errUsage {
		t.Errorf("--format pdf: %v", err)
	}
}
