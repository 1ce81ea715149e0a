package recon

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func rec(ref string, ts string, amt int64, w, txn byte) Record {
	return Record{Ref: ref, Batch: 7, PAN: "6222021234567890123", BankCode: "BANK000001",
		AcctDate: ts[:8], Amount: amt, Timestamp: ts, Write: w, Txn: txn}
}

// The example of docs/reconciliation.md: rows sorted by timestamp then reference, total over
// all rows including the reversed one.
const exampleFile = "3|15000\n" +
	"20101201000000000002|7|6222021234567890123|BANK000001|20101201|5000|20101201093000|S|S\n" +
	"20101201000000000001|7|6222021234567890123|BANK000001|20101201|2000|20101201144035|F|C\n" +
	"20101201000000000003|7|6222021234567890123|BANK000001|20101201|8000|20101201144035|U|S\n"

func exampleRecords() []Record {
	return []Record{
		rec("20101201000000000003", "20101201144035", 8000, 'U', 'S'),
		rec("20101201000000000001", "20101201144035", 2000, 'F', 'C'),
		rec("20101201000000000002", "20101201093000", 5000, 'S', 'S'),
	}
}

func TestWriteFileExample(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFile(&b, exampleRecords(), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if b.String() != exampleFile {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), exampleFile)
	}
	recs, h, err := ParseFile(strings.NewReader(exampleFile))
	if err != nil {
		t.Fatal(err)
	}
	if h != (Header{Count: 3, Total: 15000}) || len(recs) != 3 || recs[1].Txn != 'C' {
		t.Fatalf("parsed %+v %+v", h, recs)
	}
}

func TestWriteFileMasked(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFile(&b, exampleRecords()[:1], FileOptions{MaskPAN: true}); err != nil {
		t.Fatal(err)
	}
	want := "1|8000\n20101201000000000003|7|622202*********0123|BANK000001|20101201|8000|20101201144035|U|S\n"
	if b.String() != want {
		t.Fatalf("got %q want %q", b.String(), want)
	}
	recs, _, err := ParseFile(&b)
	if err != nil {
		t.Fatal(err)
	}
	// A masked file cannot be written as a full one: the digits are gone.
	if err := WriteFile(&bytes.Buffer{}, recs, FileOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("writing masked PAN in full: err %v, want ErrInvalid", err)
	}
}

func TestWriteFileEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFile(&b, nil, FileOptions{}); err != nil || b.String() != "0|0\n" {
		t.Fatalf("got %q, %v", b.String(), err)
	}
}

func TestFileName(t *testing.T) {
	if got := FileName("ABCDEFGHIJ0123456789", "20101201"); got != "QC_ABCDEFGHIJ0123456789_20101201.txt" {
		t.Fatal(got)
	}
}

func TestWriteFileRejects(t *testing.T) {
	good := rec("20101201000000000001", "20101201144035", 100, 'S', 'S')
	cases := map[string]func(r *Record){
		"short ref":        func(r *Record) { r.Ref = "123" },
		"letter in ref":    func(r *Record) { r.Ref = "2010120100000000000A" },
		"short bank code":  func(r *Record) { r.BankCode = "BANK1" },
		"bank code pipe":   func(r *Record) { r.BankCode = "BANK|00001" },
		"pan letters":      func(r *Record) { r.PAN = "62220212345678A" },
		"pan short":        func(r *Record) { r.PAN = "12345678901" },
		"bad date":         func(r *Record) { r.AcctDate = "20101301" },
		"bad timestamp":    func(r *Record) { r.Timestamp = "20101201246035" },
		"zero amount":      func(r *Record) { r.Amount = 0 },
		"negative amount":  func(r *Record) { r.Amount = -5 },
		"write status":     func(r *Record) { r.Write = 'X' },
		"txn status":       func(r *Record) { r.Txn = 'D' },
		"reversed written": func(r *Record) { r.Txn = 'C'; r.Write = 'S' },
		"reversed unsure":  func(r *Record) { r.Txn = 'C'; r.Write = 'U' },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			r := good
			mut(&r)
			var b bytes.Buffer
			err := WriteFile(&b, []Record{good2(), r}, FileOptions{})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			if b.Len() != 0 {
				t.Fatalf("wrote %q on error", b.String())
			}
		})
	}
	if err := WriteFile(&bytes.Buffer{}, []Record{good, good}, FileOptions{}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate ref: %v", err)
	}
}

func good2() Record { return rec("20101201000000000009", "20101201000001", 1, 'S', 'S') }

func TestParseFileErrors(t *testing.T) {
	row := "20101201000000000002|7|6222021234567890123|BANK000001|20101201|5000|20101201093000|S|S"
	cases := []struct {
		name, in string
		want     error
		line     string
	}{
		{"empty", "", ErrSyntax, ""},
		{"no final LF", "1|5000\n" + row, ErrSyntax, "line 2"},
		{"CRLF", "1|5000\r\n" + row + "\r\n", ErrSyntax, "line 1"},
		{"blank line", "1|5000\n\n" + row + "\n", ErrSyntax, "line 2"},
		{"count", "2|5000\n" + row + "\n", ErrMismatch, "line 1"},
		{"total", "1|5001\n" + row + "\n", ErrMismatch, "line 1"},
		{"leading zero", "01|5000\n" + row + "\n", ErrInvalid, "line 1"},
		{"header fields", "1|5000|x\n" + row + "\n", ErrSyntax, "line 1"},
		{"row fields", "1|5000\n" + row + "|x\n", ErrSyntax, "line 2"},
		{"dup", "2|10000\n" + row + "\n" + row + "\n", ErrDuplicate, "line 3"},
		{"bad status", "1|5000\n" + strings.Replace(row, "|S|S", "|S|X", 1) + "\n", ErrInvalid, "line 2"},
		{"batch overflow", "1|5000\n" + strings.Replace(row, "|7|", "|4294967296|", 1) + "\n", ErrInvalid, "line 2"},
		{"non-ascii", "1|5000\n" + strings.Replace(row, "BANK000001", "BANK00000\xe9", 1) + "\n", ErrSyntax, "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseFile(strings.NewReader(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.line) {
				t.Fatalf("err %q does not name %q", err, c.line)
			}
		})
	}
}

func genRecord(t *rapid.T, ref string) Record {
	ts := rapid.SampledFrom([]string{"20101201000000", "20101201144035", "20101202235959", "20240229120000"}).Draw(t, "ts")
	txn := rapid.SampledFrom([]byte{TxnOK, TxnReversed}).Draw(t, "txn")
	w := WriteFailed
	if txn == TxnOK {
		w = rapid.SampledFrom([]byte{WriteOK, WriteFailed, WriteUnsure}).Draw(t, "write")
	}
	return Record{
		Ref:       ref,
		Batch:     rapid.Uint32().Draw(t, "batch"),
		PAN:       rapid.StringMatching(`[0-9]{12,19}`).Draw(t, "pan"),
		BankCode:  rapid.StringMatching(`[A-Za-z0-9]{10}`).Draw(t, "bank"),
		AcctDate:  ts[:8],
		Amount:    rapid.Int64Range(1, 1<<40).Draw(t, "amount"),
		Timestamp: ts,
		Write:     w,
		Txn:       txn,
	}
}

func TestFileRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		refs := rapid.SliceOfDistinct(rapid.StringMatching(`[0-9]{20}`), func(s string) string { return s }).Draw(t, "refs")
		recs := make([]Record, len(refs))
		for i, r := range refs {
			recs[i] = genRecord(t, r)
		}
		var b bytes.Buffer
		if err := WriteFile(&b, recs, FileOptions{}); err != nil {
			t.Fatal(err)
		}
		got, h, err := ParseFile(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		want := append([]Record(nil), recs...)
		SortRecords(want)
		if h.Count != len(want) || len(got) != len(want) {
			t.Fatalf("count %d/%d want %d", h.Count, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("record %d: got %+v want %+v", i, got[i], want[i])
			}
		}
		// Deterministic: input order does not change the bytes.
		rev := append([]Record(nil), recs...)
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		var b2 bytes.Buffer
		if err := WriteFile(&b2, rev, FileOptions{}); err != nil || !bytes.Equal(b.Bytes(), b2.Bytes()) {
			t.Fatalf("bytes depend on input order: %v", err)
		}
	})
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(exampleFile))
	f.Add([]byte("0|0\n"))
	f.Add([]byte("1|8000\n20101201000000000003|7|622202*********0123|BANK000001|20101201|8000|20101201144035|U|S\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, h, err := ParseFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		mask := false
		for _, r := range recs {
			mask = mask || isMasked(r.PAN)
		}
		// What parses must write back (masked or not) and parse to the same records.
		var b bytes.Buffer
		if err := WriteFile(&b, recs, FileOptions{MaskPAN: mask}); err != nil {
			t.Fatalf("parsed file does not write back: %v", err)
		}
		again, h2, err := ParseFile(&b)
		if err != nil || h2 != h || len(again) != len(recs) {
			t.Fatalf("re-parse: %v %+v %+v", err, h, h2)
		}
		SortRecords(recs)
		for i := range recs {
			if mask {
				recs[i].PAN = MaskPAN(recs[i].PAN)
			}
			if again[i] != recs[i] {
				t.Fatalf("record %d changed: %+v -> %+v", i, recs[i], again[i])
			}
		}
	})
}
