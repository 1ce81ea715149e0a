package simplatform

import "github.com/quancun/quancun/recon"

// ReconEntries exports the journal as reconciliation reads it (recon.Classify's platform
// side): one entry per reference issued, booked or not, in issue order. The accounting date
// is the bank settlement date the FEP sent with BOOK, else the date of the CARD CHECK (China
// time); a booked load never confirmed has recon.WriteNone.
func (j *Journal) ReconEntries() []recon.JournalEntry {
	out := make([]recon.JournalEntry, 0, len(j.order))
	for _, ref := range j.order {
		l := j.loads[ref]
		date := l.SettleDate
		if date == "" {
			date = l.CheckedAt.In(chinaTime).Format("20060102")
		}
		out = append(out, recon.JournalEntry{Ref: l.Ref, CardSerial: l.Card, Amount: l.Amount, Booked: l.Booked,
			Write: l.Write, BankCode: l.BankCode, AcctDate: date})
	}
	return out
}
