package recon

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func clearingRecords() []Record {
	r := func(ref, bank string, amt int64, w, txn byte) Record {
		x := rec(ref, "20101201120000", amt, w, txn)
		x.BankCode = bank
		return x
	}
	return []Record{
		r("00000000000000000001", "BANK000002", 1000, 'S', 'S'),
		r("00000000000000000002", "BANK000001", 2000, 'S', 'S'),
		r("00000000000000000003", "BANK000001", 3000, 'U', 'S'),
		r("00000000000000000004", "BANK000001", 4000, 'F', 'C'),
		r("00000000000000000005", "BANK000001", 500, 'F', 'S'),
		func() Record {
			x := r("00000000000000000006", "BANK000001", 99999, 'S', 'S')
			x.AcctDate = "20101202"
			return x
		}(),
	}
}

func TestClearing(t *testing.T) {
	got := Clearing(clearingRecords(), "20101201")
	want := []ClearingLine{
		{AcctDate: "20101201", BankCode: "BANK000001", LoadCount: 3, LoadAmount: 5500, ReversedCount: 1, ReversedAmount: 4000, OpenCount: 2, OpenAmount: 3500},
		{AcctDate: "20101201", BankCode: "BANK000002", LoadCount: 1, LoadAmount: 1000},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v want %+v", i, got[i], want[i])
		}
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 123456: "1234.56", -5: "-0.05", -9223372036854775808: "-92233720368547758.08"} {
		if got := Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %s, want %s", fen, got, want)
		}
	}
}

func TestClearingTextAndCSV(t *testing.T) {
	lines := Clearing(clearingRecords(), "20101201")
	var txt bytes.Buffer
	if err := WriteClearingText(&txt, lines); err != nil {
		t.Fatal(err)
	}
	out := txt.String()
	for _, want := range []string{"BANK000001", "55.00", "40.00", "35.00", "TOTAL", "65.00"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	var c bytes.Buffer
	if err := WriteClearingCSV(&c, lines); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][1] != "BANK000001" || rows[1][3] != "5500" || rows[2][3] != "1000" {
		t.Fatalf("csv rows %v", rows)
	}
}

// domValues reads every element with an id from the page, parsed as XML, into id -> attrs.
func domValues(t *testing.T, page []byte) map[string]map[string]string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	d.AutoClose = nil
	d.Entity = xml.HTMLEntity
	out := map[string]map[string]string{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attrs := map[string]string{"tag": se.Name.Local}
		for _, a := range se.Attr {
			attrs[a.Name.Local] = a.Value
		}
		if id := attrs["id"]; id != "" {
			if _, dup := out[id]; dup {
				t.Fatalf("id %q twice", id)
			}
			out[id] = attrs
		}
	}
}

func TestClearingHTML(t *testing.T) {
	lines := Clearing(clearingRecords(), "20101201")
	var b bytes.Buffer
	if err := WriteClearingHTML(&b, lines); err != nil {
		t.Fatal(err)
	}
	page := b.Bytes()
	for _, bad := range []string{"<script", "http://", "https://", "src=", "<link"} {
		if bytes.Contains(bytes.ReplaceAll(page, []byte(`xmlns="http://www.w3.org/2000/svg"`), nil), []byte(bad)) {
			t.Errorf("page refers to outside assets or scripts: %q", bad)
		}
	}
	dom := domValues(t, page)
	checks := map[string][2]string{
		"load-amount-BANK000001":     {"data-fen", "5500"},
		"load-count-BANK000001":      {"data-count", "3"},
		"reversed-amount-BANK000001": {"data-fen", "4000"},
		"open-amount-BANK000001":     {"data-fen", "3500"},
		"load-amount-BANK000002":     {"data-fen", "1000"},
		"load-amount-total":          {"data-fen", "6500"},
		"open-count-total":           {"data-count", "2"},
	}
	for id, kv := range checks {
		el, ok := dom[id]
		if !ok {
			t.Errorf("no element #%s", id)
			continue
		}
		if el[kv[0]] != kv[1] {
			t.Errorf("#%s %s=%q, want %q", id, kv[0], el[kv[0]], kv[1])
		}
	}
	for _, id := range []string{"chart-BANK000001", "chart-BANK000002", "acct-date"} {
		if _, ok := dom[id]; !ok {
			t.Errorf("no element #%s", id)
		}
	}
	if n := bytes.Count(page, []byte("<svg")); n != 2 {
		t.Errorf("%d charts, want one per bank (2)", n)
	}
	var again bytes.Buffer
	if err := WriteClearingHTML(&again, lines); err != nil || !bytes.Equal(page, again.Bytes()) {
		t.Error("HTML output is not deterministic")
	}
}
