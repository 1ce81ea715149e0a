// Package fepstore reads the FEP's own store (actors/loads records in persistence) into the
// plain values of package recon: the reconciliation file's records of one accounting date
// and, for each, the bank key the FEP sent its 0200 under.
//
// It only reads. It never writes the store, never decides a money rule (the file columns come
// from txn.State.Reconciliation) and never opens a socket. The caller opens the store: the
// FEP's scheduled job passes its live store; `quancun recon` opens the directory of a stopped
// FEP (Badger holds a directory lock, so opening a running FEP's store fails with a clear error).
package fepstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/persistence"
	"github.com/quancun/quancun/recon"
)

// Scanner is the part of persistence.Store this package needs.
type Scanner interface {
	Scan(prefix []byte, fn func(key, value []byte) error) error
	Get(key []byte) ([]byte, error)
}

// Options select and render one accounting date.
type Options struct {
	// AcctDate is the accounting date T, YYYYMMDD.
	AcctDate string
	// BusinessDate gives the FEP's business date (YYYYMMDD) at an instant: the accounting
	// date of a load the bank gave no settlement date for (cutover.Resolver.DateAt).
	BusinessDate func(time.Time) string
	// Zone renders timestamps and completes the year of an MMDD settlement date; the
	// business day's zone (Asia/Shanghai by default). Nil: UTC.
	Zone *time.Location
	// Terminals maps a bank code to the terminal id (F41) of the FEP's link to that bank:
	// with the STAN and the local date it makes the recon.BankKey of a debit.
	Terminals map[string]string
	// Progress, when set, is called every ProgressEvery records read (and once at the end).
	Progress      func(read int)
	ProgressEvery int // default 1000
}

// ScanDays are the start days (DayKey) read for accounting date T: T-3 .. T+1. A load's
// accounting date is its bank settlement date (at most a day or two after the load) or the
// business date (at most a day after the local calendar date), so every load of T started
// within this window; reading the window instead of the whole store keeps the job O(day).
const scanFrom, scanTo = -3, 1

// Read returns the file records of opts.AcctDate (in file order) and each record's bank key
// by reference. Loads that are not listed (declined, never sent, still unanswered) are left
// out; so are loads of other accounting dates.
func Read(s Scanner, opts Options) ([]recon.Record, map[string]recon.BankKey, error) {
	day, err := time.Parse("20060102", opts.AcctDate)
	if err != nil {
		return nil, nil, fmt.Errorf("fepstore: accounting date %q: want YYYYMMDD", opts.AcctDate)
	}
	if opts.Zone == nil {
		opts.Zone = time.UTC
	}
	if opts.BusinessDate == nil {
		return nil, nil, errors.New("fepstore: no business date resolver")
	}
	every := opts.ProgressEvery
	if every <= 0 {
		every = 1000
	}
	var recs []recon.Record
	keys := map[string]recon.BankKey{}
	seen := map[string]bool{}
	read := 0
	for off := scanFrom; off <= scanTo; off++ {
		d := day.AddDate(0, 0, off).Format("20060102")
		err := s.Scan(loads.DayPrefix(d), func(_, id []byte) error {
			if seen[string(id)] {
				return nil
			}
			seen[string(id)] = true
			v, err := s.Get(loads.TxnKey(string(id)))
			if errors.Is(err, persistence.ErrNotFound) {
				return nil // index written with the record; a missing one is a torn index entry
			}
			if err != nil {
				return err
			}
			r, err := loads.DecodeRecord(v)
			if err != nil {
				return err
			}
			read++
			if opts.Progress != nil && read%every == 0 {
				opts.Progress(read)
			}
			rec, key, ok := FileRecord(r, opts)
			if !ok || rec.AcctDate != opts.AcctDate {
				return nil
			}
			recs = append(recs, rec)
			if key != (recon.BankKey{}) {
				keys[rec.Ref] = key
			}
			return nil
		})
		if err != nil && !errors.Is(err, persistence.ErrStop) {
			return nil, nil, fmt.Errorf("fepstore: read day %s: %w", d, err)
		}
	}
	if opts.Progress != nil {
		opts.Progress(read)
	}
	recon.SortRecords(recs)
	return recs, keys, nil
}

// FileRecord maps one stored load to its file line; ok is false for a load the file does
// not list. The key is zero when the FEP holds no 0200 for the load.
//
// Columns: the reference, batch, full PAN (masking is the writer's choice), bank code and
// amount as stored; write and txn status from txn.State.Reconciliation; the accounting date
// from AcctDate; the timestamp is the load's start (State.Started) in opts.Zone, the one
// instant every listed load has (reversed ones never got a MAC2 time).
func FileRecord(r loads.Record, opts Options) (recon.Record, recon.BankKey, bool) {
	s := r.State
	fr := s.Reconciliation()
	if !fr.Listed || s.Ref == "" {
		return recon.Record{}, recon.BankKey{}, false
	}
	zone := opts.Zone
	if zone == nil {
		zone = time.UTC
	}
	rec := recon.Record{
		Ref:       s.Ref,
		Batch:     r.Batch,
		PAN:       r.Start.Payer.PAN,
		BankCode:  s.BankCode,
		AcctDate:  AcctDate(s.SettleDate, s.Started, zone, opts.BusinessDate),
		Amount:    s.Amount,
		Timestamp: s.Started.In(zone).Format("20060102150405"),
		Write:     fr.Write[0],
		Txn:       fr.Txn[0],
	}
	if r.Settled != nil && rec.Txn == recon.TxnOK {
		// Re-written (or proved applied) after the load ended F/U: DESIGN 8 lists it as S.
		rec.Write = recon.WriteOK
	}
	var key recon.BankKey
	if r.Debit != nil && s.STAN != "" {
		term := opts.Terminals[s.BankCode]
		// The bank keys a debit by the date it received it, in its own clock; the FEP's
		// nearest value is the load's start in the process's local zone, which is what
		// the sim bank (and a bank host in the same zone) uses.
		key = recon.BankKey{BankCode: s.BankCode, Terminal: term, STAN: s.STAN,
			LocalDate: s.Started.Local().Format("20060102")}
	}
	return rec, key, true
}

// AcctDate is a load's accounting date: the bank's settlement date (0210 F15) when the bank
// gave one, else the FEP's business date when the load started. F15 is MMDD (a full
// YYYYMMDD passes through): it gets the year that puts it nearest to the load's start in
// zone, so a load of 31 December settling on 0102 settles in the next year, and one of 2
// January settling on 1231 in the previous one. The platform link completes the year the
// same way for BOOK (nearest to the BOOK, seconds later), so both files agree.
func AcctDate(settle string, started time.Time, zone *time.Location, business func(time.Time) string) string {
	switch len(settle) {
	case 8:
		return settle
	case 4:
		return CompleteYear(settle, started.In(zone))
	}
	return business(started)
}

// CompleteYear puts MMDD in the year (of near-1, near, near+1) nearest to near; "" when MMDD
// is no calendar day in any of them.
func CompleteYear(mmdd string, near time.Time) string {
	best, bestGap := "", time.Duration(-1)
	for y := near.Year() - 1; y <= near.Year()+1; y++ {
		d, err := time.ParseInLocation("20060102", fmt.Sprintf("%04d%s", y, mmdd), near.Location())
		if err != nil {
			continue
		}
		if gap := d.Sub(near).Abs(); bestGap < 0 || gap < bestGap {
			best, bestGap = d.Format("20060102"), gap
		}
	}
	return best
}
