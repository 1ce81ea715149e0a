package fepstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/quancun/quancun/actors/cutover"
	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
	"github.com/quancun/quancun/recon"
	"github.com/quancun/quancun/recon/fepstore"
)

const (
	bankCode = "BANK000001"
	pan      = "6222021234567890123"
)

// load is one stored load of the test day.
type load struct {
	ref, started, settle string
	amount               int64
	phase                txn.Phase
	txnSt                txn.TxnStatus
	write                txn.WriteStatus
	rev                  txn.ReversalState
	resp                 string
	sent                 bool // a 0200 was sent (Debit recorded)
}

func zone(t *testing.T) *time.Location {
	z, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// Day writes the loads as the transaction actors would: the record at txn/<id> and the day
// index at day/<YYYYMMDD of the start>/<id>.
func writeDay(t *testing.T, s *persistence.Store, z *time.Location, ls []load) {
	t.Helper()
	var ops []persistence.Op
	for i, l := range ls {
		started, err := time.ParseInLocation("2006-01-02 15:04:05", l.started, z)
		if err != nil {
			t.Fatal(err)
		}
		id := "KIOSK001-" + l.ref[14:]
		st := txn.State{ID: id, Phase: l.phase, Terminal: "KIOSK001", KioskTrace: l.ref[14:], Amount: l.amount,
			BankCode: bankCode, MaskedPAN: "622202*********0123", STAN: "0000" + l.ref[18:], BankDate: started.Format("0102"),
			Ref: l.ref, BankResp: l.resp, SettleDate: l.settle, Txn: l.txnSt, Write: l.write, Reversal: l.rev,
			Started: started}
		rec := loads.Record{V: 1, State: st, Batch: uint32(7 + i/4),
			Start: messages.StartLoad{TxnID: id, Terminal: "KIOSK001", Amount: l.amount, BankCode: bankCode,
				Payer: messages.BankCard{PAN: pan}}}
		if l.sent {
			rec.Debit = &messages.BankDebit{ReqID: id, Bank: bankCode, STAN: st.STAN, Terminal: "KIOSK001", Amount: l.amount, Ref: l.ref}
		}
		v, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, persistence.Op{Key: loads.TxnKey(id), Value: v},
			persistence.Op{Key: loads.DayKey(started.Format("20060102"), id), Value: []byte(id)})
	}
	if err := s.Commit(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
}

// testDay has every kind of load: approved and written, reversed after approval, timed out
// then reversed (no F15: the business date decides), declined, F, U, still at the bank,
// and loads at the edges of the accounting date.
var testDay = []load{
	{ref: "20260127000000000001", started: "2026-01-27 09:30:00", settle: "0127", amount: 5000, phase: txn.PhaseDone, txnSt: txn.TxnS, write: txn.WriteS, resp: "00", sent: true},
	{ref: "20260127000000000002", started: "2026-01-27 10:00:00", settle: "0127", amount: 2000, phase: txn.PhaseDone, txnSt: txn.TxnC, write: txn.WriteNone, rev: txn.ReversalAcked, resp: "00", sent: true},
	{ref: "20260127000000000003", started: "2026-01-27 11:00:00", amount: 700, phase: txn.PhaseDone, txnSt: txn.TxnC, rev: txn.ReversalAcked, sent: true},
	{ref: "20260127000000000004", started: "2026-01-27 11:30:00", settle: "0127", amount: 900, phase: txn.PhaseDone, resp: "51", sent: true},
	{ref: "20260127000000000005", started: "2026-01-27 12:00:00", settle: "0127", amount: 1500, phase: txn.PhaseDone, txnSt: txn.TxnS, write: txn.WriteF, resp: "00", sent: true},
	{ref: "20260127000000000006", started: "2026-01-27 13:00:00", settle: "20260127", amount: 2500, phase: txn.PhaseDone, txnSt: txn.TxnS, write: txn.WriteU, resp: "00", sent: true},
	{ref: "20260127000000000008", started: "2026-01-27 14:00:00", amount: 300, phase: txn.PhaseSentToBank, sent: true},
	// After the 23:00 cutover: business date the 28th.
	{ref: "20260127000000000009", started: "2026-01-27 23:30:00", amount: 400, phase: txn.PhaseDone, txnSt: txn.TxnC, rev: txn.ReversalAcked, sent: true},
	{ref: "20260127000000000010", started: "2026-01-27 23:10:00", settle: "0128", amount: 600, phase: txn.PhaseDone, txnSt: txn.TxnS, write: txn.WriteS, resp: "00", sent: true},
	// The evening before, but the bank settled it on the 27th.
	{ref: "20260126000000000007", started: "2026-01-26 22:00:00", settle: "0127", amount: 800, phase: txn.PhaseDone, txnSt: txn.TxnS, write: txn.WriteS, resp: "00", sent: true},
}

const wantFile = `6|12500
20260126000000000007|9|6222021234567890123|BANK000001|20260127|800|20260126220000|S|S
20260127000000000001|7|6222021234567890123|BANK000001|20260127|5000|20260127093000|S|S
20260127000000000002|7|6222021234567890123|BANK000001|20260127|2000|20260127100000|F|C
20260127000000000003|7|6222021234567890123|BANK000001|20260127|700|20260127110000|F|C
20260127000000000005|8|6222021234567890123|BANK000001|20260127|1500|20260127120000|F|S
20260127000000000006|8|6222021234567890123|BANK000001|20260127|2500|20260127130000|U|S
`

func openStore(t *testing.T) *persistence.Store {
	s, err := persistence.Open(t.TempDir(), persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFileFromStore(t *testing.T) {
	z := zone(t)
	s := openStore(t)
	writeDay(t, s, z, testDay)
	cal, err := cutover.Section{}.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	res, err := cutover.NewResolver(s, cal)
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	recs, keys, err := fepstore.Read(s, fepstore.Options{AcctDate: "20260127", BusinessDate: res.DateAt, Zone: z,
		Terminals: map[string]string{bankCode: "FEP00001"}, ProgressEvery: 4, Progress: func(n int) { progress = append(progress, n) }})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := recon.WriteFile(&b, recs, recon.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if b.String() != wantFile {
		t.Fatalf("file:\n%s\nwant:\n%s", b.String(), wantFile)
	}
	// The same store gives the same bytes again.
	recs2, _, _ := fepstore.Read(s, fepstore.Options{AcctDate: "20260127", BusinessDate: res.DateAt, Zone: z})
	var b2 bytes.Buffer
	recon.WriteFile(&b2, recs2, recon.FileOptions{})
	if !bytes.Equal(b.Bytes(), b2.Bytes()) {
		t.Fatal("second read gives other bytes")
	}
	// It parses, and its masked form keeps 6+4.
	if _, h, err := recon.ParseFile(bytes.NewReader(b.Bytes())); err != nil || h.Count != 6 || h.Total != 12500 {
		t.Fatalf("ParseFile: %+v %v", h, err)
	}
	var m bytes.Buffer
	if err := recon.WriteFile(&m, recs, recon.FileOptions{MaskPAN: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(m.Bytes(), []byte("|622202*********0123|")) || bytes.Contains(m.Bytes(), []byte(pan)) {
		t.Fatalf("masked file:\n%s", m.String())
	}
	// Every listed load carries the bank key of its 0200.
	k := keys["20260127000000000001"]
	started, _ := time.ParseInLocation("2006-01-02 15:04:05", "2026-01-27 09:30:00", z)
	want := recon.BankKey{BankCode: bankCode, Terminal: "FEP00001", STAN: "000001", LocalDate: started.Local().Format("20060102")}
	if k != want || len(keys) != 6 {
		t.Fatalf("key %+v (of %d), want %+v", k, len(keys), want)
	}
	// The window of start days T-3..T+1 read 10 loads; progress every 4 and once at the end.
	if len(progress) != 3 || progress[0] != 4 || progress[2] != 10 {
		t.Errorf("progress %v", progress)
	}

	// The 28th: the late loads of the 27th evening.
	recs28, _, err := fepstore.Read(s, fepstore.Options{AcctDate: "20260128", BusinessDate: res.DateAt, Zone: z})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs28) != 2 || recs28[0].Ref != "20260127000000000010" || recs28[1].Ref != "20260127000000000009" {
		t.Fatalf("the 28th: %+v", recs28)
	}
}

func TestCompleteYear(t *testing.T) {
	z := zone(t)
	near := func(s string) time.Time {
		v, _ := time.ParseInLocation("20060102", s, z)
		return v
	}
	for _, c := range []struct{ mmdd, near, want string }{
		{"0127", "20260127", "20260127"},
		{"0102", "20261231", "20270102"},
		{"1231", "20270102", "20261231"},
		{"0229", "20280301", "20280229"},
		{"1341", "20260101", ""},
	} {
		if got := fepstore.CompleteYear(c.mmdd, near(c.near)); got != c.want {
			t.Errorf("CompleteYear(%s near %s) = %q, want %q", c.mmdd, c.near, got, c.want)
		}
	}
	biz := func(time.Time) string { return "BUSINESS" }
	if got := fepstore.AcctDate("", near("20260127"), z, biz); got != "BUSINESS" {
		t.Errorf("no F15: %s", got)
	}
	if got := fepstore.AcctDate("20250101", near("20260127"), z, biz); got != "20250101" {
		t.Errorf("full date: %s", got)
	}
}

func FuzzCompleteYear(f *testing.F) {
	f.Add("0127", int64(1769472000))
	f.Add("0229", int64(0))
	f.Fuzz(func(t *testing.T, mmdd string, sec int64) {
		near := time.Unix(sec%(1<<40), 0).UTC()
		got := fepstore.CompleteYear(mmdd, near)
		if got == "" {
			return
		}
		d, err := time.Parse("20060102", got)
		if err != nil || got[4:] != mmdd {
			t.Fatalf("CompleteYear(%q) = %q", mmdd, got)
		}
		limit := 190 * 24 * time.Hour // half a year and a bit: the nearest year
		if mmdd == "0229" {
			limit = 2 * 366 * 24 * time.Hour // the nearest leap year of three
		}
		if gap := d.Sub(near).Abs(); gap > limit {
			t.Fatalf("CompleteYear(%q near %v) = %s, %v away", mmdd, near, got, gap)
		}
	})
}

// A load that ended F and was re-written later is listed S (DESIGN 8: "a re-write on T+1
// shows as S"); without the settlement note it stays F.
func TestSettledLoadIsListedWritten(t *testing.T) {
	z := zone(t)
	started := time.Date(2026, 1, 27, 12, 0, 0, 0, z)
	r := loads.Record{State: txn.State{ID: "K1", Phase: txn.PhaseDone, Ref: "20260127000000000009", Amount: 700,
		BankCode: "BANKA00001", STAN: "000009", BankResp: "00", SettleDate: "0127", Txn: txn.TxnS, Write: txn.WriteF,
		Outcome: txn.OutcomeUnwritten, Started: started}}
	r.Start.Payer.PAN = "6222021234567890123"
	rec, _, ok := fepstore.FileRecord(r, fepstore.Options{Zone: z})
	if !ok || rec.Write != recon.WriteFailed {
		t.Fatalf("unwritten load: %+v %v, want listed F", rec, ok)
	}
	r.Settled = &loads.Settled{At: started.Add(24 * time.Hour), How: "rewrite"}
	if rec, _, ok = fepstore.FileRecord(r, fepstore.Options{Zone: z}); !ok || rec.Write != recon.WriteOK || rec.Txn != recon.TxnOK {
		t.Fatalf("re-written load: %+v %v, want listed S/S", rec, ok)
	}
}
