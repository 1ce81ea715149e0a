package recon

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ClearingLine is what one bank owes the operator's load account for one accounting date
// (seed section 6): the finance staff check the account against LoadAmount.
type ClearingLine struct {
	AcctDate string
	BankCode string
	// Loads are the records with txn status S: debited at the bank and booked, so their money
	// must reach the load account whatever the card-write status.
	LoadCount  int
	LoadAmount int64 // fen
	// Reversed are the records with txn status C: no money moves for them.
	ReversedCount  int
	ReversedAmount int64 // fen
	// Open are the Loads not yet on their card (write F or U): owed to the card holder as a
	// re-write; already included in LoadCount/LoadAmount.
	OpenCount  int
	OpenAmount int64 // fen
}

// Clearing sums the records of accounting date acctDate per bank, in bank-code order. Records
// of other dates are left out, so a caller can pass a whole journal.
func Clearing(recs []Record, acctDate string) []ClearingLine {
	by := map[string]*ClearingLine{}
	for _, r := range recs {
		if r.AcctDate != acctDate {
			continue
		}
		l := by[r.BankCode]
		if l == nil {
			l = &ClearingLine{AcctDate: acctDate, BankCode: r.BankCode}
			by[r.BankCode] = l
		}
		switch r.Txn {
		case TxnOK:
			l.LoadCount++
			l.LoadAmount += r.Amount
			if r.Write != WriteOK {
				l.OpenCount++
				l.OpenAmount += r.Amount
			}
		case TxnReversed:
			l.ReversedCount++
			l.ReversedAmount += r.Amount
		}
	}
	out := make([]ClearingLine, 0, len(by))
	for _, l := range by {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b ClearingLine) int { return cmp.Compare(a.BankCode, b.BankCode) })
	return out
}

// Yuan renders fen as yuan with two decimals ("12.34", "-0.05"), by integer arithmetic.
func Yuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign, u = "-", uint64(-(fen+1))+1
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

func clearingTotal(lines []ClearingLine) ClearingLine {
	t := ClearingLine{BankCode: "TOTAL"}
	for _, l := range lines {
		t.AcctDate = l.AcctDate
		t.LoadCount += l.LoadCount
		t.LoadAmount += l.LoadAmount
		t.ReversedCount += l.ReversedCount
		t.ReversedAmount += l.ReversedAmount
		t.OpenCount += l.OpenCount
		t.OpenAmount += l.OpenAmount
	}
	return t
}

// WriteClearingText writes a fixed-width report for people, with a TOTAL line.
func WriteClearingText(w io.Writer, lines []ClearingLine) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %-10s %7s %16s %7s %16s %7s %16s\n",
		"date", "bank", "loads", "load yuan", "revs", "reversed yuan", "open", "open yuan")
	for _, l := range append(slices.Clone(lines), clearingTotal(lines)) {
		fmt.Fprintf(&b, "%-8s %-10s %7d %16s %7d %16s %7d %16s\n", l.AcctDate, l.BankCode,
			l.LoadCount, Yuan(l.LoadAmount), l.ReversedCount, Yuan(l.ReversedAmount), l.OpenCount, Yuan(l.OpenAmount))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteClearingCSV writes one row per bank with amounts in fen (machines should not parse
// decimals), after a header row. No TOTAL row: a spreadsheet sums itself.
func WriteClearingCSV(w io.Writer, lines []ClearingLine) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"acct_date", "bank_code", "load_count", "load_fen", "reversed_count", "reversed_fen", "open_count", "open_fen"}}
	for _, l := range lines {
		rows = append(rows, []string{l.AcctDate, l.BankCode,
			strconv.Itoa(l.LoadCount), strconv.FormatInt(l.LoadAmount, 10),
			strconv.Itoa(l.ReversedCount), strconv.FormatInt(l.ReversedAmount, 10),
			strconv.Itoa(l.OpenCount), strconv.FormatInt(l.OpenAmount, 10)})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("clearing csv: %w", err)
	}
	return nil
}

// bar is one bar of the SVG chart; coordinates are precomputed so the template stays dumb.
type bar struct {
	Label, Class string
	X, Y, W, H   int
	Fen          int64
}

type htmlBank struct {
	ClearingLine
	ID   string // BankCode, or "total": safe in ids (letters and digits only)
	Bars []bar
}

type htmlPage struct {
	AcctDate string
	Banks    []htmlBank
	Total    htmlBank
}

const chartW, chartH, barW = 240, 120, 60

// WriteClearingHTML writes a self-contained page (no scripts, styles or images from outside):
// one inline SVG bar chart per bank (loads, reversed, open, scaled to the largest of the
// three) and a table. Every figure cell carries id "<field>-<bank>" and data-fen/data-count,
// so a test or a script reads totals from the DOM instead of scraping text. The page is also
// well-formed XML, which lets tests parse it with encoding/xml.
func WriteClearingHTML(w io.Writer, lines []ClearingLine) error {
	p := htmlPage{}
	mk := func(l ClearingLine, id string) htmlBank {
		hb := htmlBank{ClearingLine: l, ID: id}
		vals := []struct {
			label, class string
			fen          int64
		}{{"loads", "load", l.LoadAmount}, {"reversed", "rev", l.ReversedAmount}, {"open", "open", l.OpenAmount}}
		maxFen := int64(1)
		for _, v := range vals {
			maxFen = max(maxFen, v.fen)
		}
		for i, v := range vals {
			h := int(v.fen * (chartH - 20) / maxFen)
			hb.Bars = append(hb.Bars, bar{Label: v.label, Class: v.class, X: 10 + i*(barW+15), Y: chartH - 15 - h, W: barW, H: h, Fen: v.fen})
		}
		return hb
	}
	for _, l := range lines {
		p.AcctDate = l.AcctDate
		p.Banks = append(p.Banks, mk(l, l.BankCode))
	}
	p.Total = mk(clearingTotal(lines), "total")
	if err := clearingTmpl.Execute(w, p); err != nil {
		return fmt.Errorf("clearing html: %w", err)
	}
	return nil
}

var clearingTmpl = template.Must(template.New("clearing").Funcs(template.FuncMap{"yuan": Yuan}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>Clearing {{.AcctDate}}</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #999; padding: 4px 8px; text-align: right; }
.load { fill: #2e7d32; } .rev { fill: #9e9e9e; } .open { fill: #ef6c00; }
figure { display: inline-block; margin: 0 1em 1em 0; }
</style>
</head>
<body>
<h1>Clearing for accounting date <span id="acct-date">{{.AcctDate}}</span></h1>
<p>Amounts in yuan; data-fen attributes hold fen. Loads must reach the operator's load account; open loads are included in loads and wait for their card re-write.</p>
{{range .Banks}}<figure id="chart-{{.ID}}">
<svg xmlns="http://www.w3.org/2000/svg" width="240" height="120" viewBox="0 0 240 120" role="img" aria-label="bank {{.BankCode}}">
{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" data-fen="{{.Fen}}"><title>{{.Label}} {{yuan .Fen}}</title></rect>
<text x="{{.X}}" y="115" font-size="10">{{.Label}}</text>
{{end}}</svg>
<figcaption>{{.BankCode}}</figcaption>
</figure>
{{end}}<table id="clearing">
<thead><tr><th>bank</th><th>loads</th><th>load amount</th><th>reversed</th><th>reversed amount</th><th>open</th><th>open amount</th></tr></thead>
<tbody>
{{range .Banks}}{{template "row" .}}{{end}}</tbody>
<tfoot>
{{template "row" .Total}}</tfoot>
</table>
</body>
</html>
{{define "row"}}<tr id="row-{{.ID}}" data-bank="{{.BankCode}}">
<th scope="row">{{.BankCode}}</th>
<td id="load-count-{{.ID}}" data-count="{{.LoadCount}}">{{.LoadCount}}</td>
<td id="load-amount-{{.ID}}" data-fen="{{.LoadAmount}}">{{yuan .LoadAmount}}</td>
<td id="reversed-count-{{.ID}}" data-count="{{.ReversedCount}}">{{.ReversedCount}}</td>
<td id="reversed-amount-{{.ID}}" data-fen="{{.ReversedAmount}}">{{yuan .ReversedAmount}}</td>
<td id="open-count-{{.ID}}" data-count="{{.OpenCount}}">{{.OpenCount}}</td>
<td id="open-amount-{{.ID}}" data-fen="{{.OpenAmount}}">{{yuan .OpenAmount}}</td>
</tr>
{{end}}`))
