package simbank

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/quancun/quancun/recon"
)

// SettlementName is the settlement file of a bank and accounting date (YYYYMMDD).
func SettlementName(bankCode, date string) string {
	return fmt.Sprintf("SETTLE_%s_%s.txt", bankCode, date)
}

// Settlement is what the bank reports for an accounting date, in the format of recon
// (docs/reconciliation.md, "The bank's settlement file"): a D line for every 0200 decided
// with that settlement date, approved or declined, and an R line for every first reversal
// received with that settlement date. An R line carries the original debit's local time so
// the two share a recon.BankKey; for a reversal of a debit the bank never had (25) it carries
// the reversal's own. Declined lines that recon's format cannot express (amount 0, a PAN
// or terminal id out of format) are left out: no money moved for them. Approved ones are
// always listed, and recon.WriteSettlement refuses the file if one is malformed.
func (l *Ledger) Settlement(date string) []recon.SettlementLine {
	var out []recon.SettlementLine
	add := func(line recon.SettlementLine, moved bool) {
		if moved || line.Validate() == nil {
			out = append(out, line)
		}
	}
	stamp := func(t time.Time) string { return t.Format("20060102150405") }
	for _, d := range l.Debits {
		if d.SettleDate != date {
			continue
		}
		add(recon.SettlementLine{BankCode: l.BankCode, Terminal: d.Terminal, STAN: d.STAN, RRN: d.RRN,
			LocalTime: stamp(d.Received), PAN: d.PAN, Amount: d.Amount, Resp: d.Code,
			Type: recon.SettleDebit, SettleDate: d.SettleDate}, d.Approved())
	}
	for _, v := range l.Reversals {
		if v.SettleDate != date {
			continue
		}
		line := recon.SettlementLine{BankCode: l.BankCode, Terminal: v.Terminal, STAN: v.STAN, RRN: v.RRN,
			LocalTime: stamp(v.Received), PAN: v.PAN, Amount: v.Amount, Resp: v.Code,
			Type: recon.SettleReversal, SettleDate: v.SettleDate}
		if d := l.byKey[v.Original]; d != nil {
			line.LocalTime = stamp(d.Received)
		}
		add(line, v.Credited)
	}
	recon.SortSettlement(out)
	return out
}

// WriteSettlement reads the ledger of dir and writes the settlement file of the accounting
// date (YYYYMMDD) into dir with recon.WriteSettlement, through a temporary name and a rename
// so a reader never sees half a file. The same journal always gives the same bytes. It
// returns the path and the contents.
func WriteSettlement(dir, date string) (string, []byte, error) {
	if _, err := time.Parse("20060102", date); err != nil {
		return "", nil, fmt.Errorf("simbank: settlement date %q: want YYYYMMDD", date)
	}
	l, err := LoadLedger(dir)
	if err != nil {
		return "", nil, err
	}
	if l.BankCode == "" {
		return "", nil, fmt.Errorf("simbank: %s holds no bank journal", dir)
	}
	var body bytes.Buffer
	if err := recon.WriteSettlement(&body, l.Settlement(date)); err != nil {
		return "", nil, fmt.Errorf("simbank: settlement %s: %w", date, err)
	}
	path := filepath.Join(dir, SettlementName(l.BankCode, date))
	tmp := path + ".tmp"
	if err := writeSynced(tmp, body.Bytes()); err != nil {
		return "", nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", nil, fmt.Errorf("simbank: settlement: %w", err)
	}
	return path, body.Bytes(), nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("simbank: settlement: %w", err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("simbank: settlement: %w", err)
	}
	return nil
}
