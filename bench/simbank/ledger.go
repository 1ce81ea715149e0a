package simbank

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// JournalName is the journal file inside the data dir.
const JournalName = "journal.jsonl"

// ErrJournal marks a journal that cannot be replayed.
var ErrJournal = errors.New("simbank: bad journal")

// Account is one bank account as the ledger knows it.
type Account struct {
	PAN       string `json:"pan"`
	Opening   int64  `json:"opening"` // fen, from the open record
	Balance   int64  `json:"balance"` // fen, after every debit and reversal
	Blocked   bool   `json:"blocked"`
	BlockCode string `json:"block_code,omitempty"`
	PINTries  int    `json:"pin_tries"` // consecutive wrong PINs
}

// Debit is one 0200 the bank decided (approved or declined), as journaled. Key is the
// matching key of the 0210 we sent (bank.Key: 0200/terminal/STAN/F13), the same string the
// FEP computes with bank.KeyOf on that 0210.
type Debit struct {
	Key        string    `json:"key"`
	Terminal   string    `json:"terminal"` // F41 without padding
	STAN       string    `json:"stan"`     // F11, 6 digits
	PAN        string    `json:"pan"`
	Amount     int64     `json:"amount"` // fen
	Code       string    `json:"code"`   // F39 we answered
	RRN        string    `json:"rrn"`
	AuthCode   string    `json:"auth_code,omitempty"`
	LocalDate  string    `json:"local_date"`  // F13 MMDD we sent
	LocalTime  string    `json:"local_time"`  // F12 hhmmss we sent
	SettleDate string    `json:"settle_date"` // YYYYMMDD; F15 is its MMDD
	Received   time.Time `json:"received"`
	PINTries   int       `json:"pin_tries"` // the account's wrong-PIN count after this debit

	// Set by replay, never journaled with the debit.
	Reversed   bool      `json:"-"`
	ReversedBy *Reversal `json:"-"`
}

// Approved reports an approved debit (money moved).
func (d *Debit) Approved() bool { return d.Code == "00" }

// Reversal is the first reversal (0400/0420) the bank received for a terminal+STAN, with
// what it did; repeats are answered from it and not journaled again.
type Reversal struct {
	Key        string    `json:"key"`      // 0400/terminal/STAN/F13 of our answer
	Original   string    `json:"original"` // the Debit.Key reversed, "" when unknown
	Terminal   string    `json:"terminal"`
	STAN       string    `json:"stan"`
	PAN        string    `json:"pan"`
	Amount     int64     `json:"amount"`
	MTI        string    `json:"mti"`      // as first received: 0400, 0401, 0420, 0421
	Reason     string    `json:"reason"`   // F39 of the request
	Code       string    `json:"code"`     // F39 we answered
	Credited   bool      `json:"credited"` // the original's amount went back to the account
	RRN        string    `json:"rrn"`
	LocalDate  string    `json:"local_date"`
	LocalTime  string    `json:"local_time"`
	SettleDate string    `json:"settle_date"` // YYYYMMDD
	Received   time.Time `json:"received"`
}

// accountRecord opens an account or changes its status; Balance counts only when opening.
type accountRecord struct {
	PAN       string `json:"pan"`
	Balance   int64  `json:"balance,omitempty"`
	Blocked   bool   `json:"blocked"`
	BlockCode string `json:"block_code,omitempty"`
}

// record is one journal line. Exactly one of the pointers is set, matching Type.
type record struct {
	Seq      int64          `json:"seq"`
	Type     string         `json:"type"` // bank, open, status, debit, reversal
	At       time.Time      `json:"at"`
	BankCode string         `json:"bank_code,omitempty"`
	Account  *accountRecord `json:"account,omitempty"`
	Debit    *Debit         `json:"debit,omitempty"`
	Reversal *Reversal      `json:"reversal,omitempty"`
}

// Ledger is the bank's books, rebuilt from the journal: what the money check reads
// (LoadLedger) and what the server keeps in memory. It holds no PINs: those live only in
// the config.
type Ledger struct {
	BankCode  string
	Accounts  map[string]*Account // by PAN
	Debits    []*Debit            // every decided 0200, in journal order
	Reversals []*Reversal         // every first reversal, in journal order
	Seq       int64               // of the last record

	byKey   map[string]*Debit    // Debit.Key
	bySlot  map[string]*Debit    // terminal/STAN: the latest debit
	revSlot map[string]*Reversal // terminal/STAN: the latest reversal
}

func newLedger() *Ledger {
	return &Ledger{Accounts: map[string]*Account{}, byKey: map[string]*Debit{},
		bySlot: map[string]*Debit{}, revSlot: map[string]*Reversal{}}
}

func slot(terminal, stan string) string { return terminal + "/" + stan }

// Totals is the bank's side of the money check.
type Totals struct {
	Approved, ApprovedSum int64 // approved debits (count, fen), reversed or not
	Reversed, ReversedSum int64 // of those, reversed (credited back)
	Net                   int64 // ApprovedSum - ReversedSum: what the bank really took
}

// Totals sums the approved debits and the reversals that credited them back.
func (l *Ledger) Totals() Totals {
	var t Totals
	for _, d := range l.Debits {
		if !d.Approved() {
			continue
		}
		t.Approved++
		t.ApprovedSum += d.Amount
		if d.Reversed {
			t.Reversed++
			t.ReversedSum += d.Amount
		}
	}
	t.Net = t.ApprovedSum - t.ReversedSum
	return t
}

// Balance is the account's balance and whether the account exists.
func (l *Ledger) Balance(pan string) (int64, bool) {
	a := l.Accounts[pan]
	if a == nil {
		return 0, false
	}
	return a.Balance, true
}

// Debit finds a debit by its key (bank.Key string of the 0210).
func (l *Ledger) Debit(key string) *Debit { return l.byKey[key] }

// Find returns the latest debit of a terminal and STAN (nil if none): what the FEP's money
// check uses when it knows only the request it sent.
func (l *Ledger) Find(terminal, stan string) *Debit { return l.bySlot[slot(terminal, stan)] }

// PANs lists the accounts in order.
func (l *Ledger) PANs() []string {
	out := make([]string, 0, len(l.Accounts))
	for p := range l.Accounts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Check verifies the books balance: opening balances minus the net debits equal the
// current balances. A replay that fails it has a bug or a hand-edited journal.
func (l *Ledger) Check() error {
	var open, now int64
	for _, a := range l.Accounts {
		open += a.Opening
		now += a.Balance
	}
	if net := l.Totals().Net; open-net != now {
		return fmt.Errorf("%w: opening %d - net debits %d != balances %d", ErrJournal, open, net, now)
	}
	return nil
}

// apply folds one record into the ledger, checking it could have been written by a bank
// that keeps its books straight.
func (l *Ledger) apply(r *record) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: record %d: "+format, append([]any{ErrJournal, r.Seq}, a...)...)
	}
	if r.Seq != l.Seq+1 {
		return bad("sequence after %d", l.Seq)
	}
	switch r.Type {
	case "bank":
		if r.BankCode == "" {
			return bad("bank record without bank_code")
		}
		l.BankCode = r.BankCode
	case "open", "status":
		a := r.Account
		if a == nil || !validPAN(a.PAN) {
			return bad("%s record without a valid account", r.Type)
		}
		acc := l.Accounts[a.PAN]
		if r.Type == "open" {
			if acc != nil {
				return bad("account %s opened twice", maskPAN(a.PAN))
			}
			if a.Balance < 0 || a.Balance > maxAmount {
				return bad("opening balance %d", a.Balance)
			}
			acc = &Account{PAN: a.PAN, Opening: a.Balance, Balance: a.Balance}
			l.Accounts[a.PAN] = acc
		} else if acc == nil {
			return bad("status of unknown account %s", maskPAN(a.PAN))
		}
		acc.Blocked, acc.BlockCode = a.Blocked, a.BlockCode
	case "debit":
		d := r.Debit
		if d == nil || d.Key == "" || l.byKey[d.Key] != nil {
			return bad("debit missing or key repeated")
		}
		if d.Amount < 0 || d.Amount > maxAmount || d.PINTries < 0 {
			return bad("debit amount %d", d.Amount)
		}
		d.Reversed, d.ReversedBy = false, nil
		if acc := l.Accounts[d.PAN]; acc != nil {
			acc.PINTries = d.PINTries
			if d.Approved() {
				if acc.Balance < d.Amount {
					return bad("debit %s overdraws %s", d.Key, maskPAN(d.PAN))
				}
				acc.Balance -= d.Amount
			}
		} else if d.Approved() {
			return bad("approved debit %s for unknown account", d.Key)
		}
		l.Debits = append(l.Debits, d)
		l.byKey[d.Key] = d
		l.bySlot[slot(d.Terminal, d.STAN)] = d
	case "reversal":
		v := r.Reversal
		if v == nil || v.Key == "" {
			return bad("reversal missing")
		}
		if v.Credited {
			d := l.byKey[v.Original]
			if d == nil || !d.Approved() || d.Reversed {
				return bad("reversal credits %q, which is not an approved, unreversed debit", v.Original)
			}
			acc := l.Accounts[d.PAN]
			if acc == nil {
				return bad("reversal for unknown account")
			}
			acc.Balance += d.Amount
			d.Reversed, d.ReversedBy = true, v
		}
		l.Reversals = append(l.Reversals, v)
		l.revSlot[slot(v.Terminal, v.STAN)] = v
	default:
		return bad("unknown type %q", r.Type)
	}
	l.Seq = r.Seq
	return nil
}

// replay reads journal lines into a new ledger. A last line without its newline is a write
// the crash interrupted (nothing was answered for it, since we answer after the fsync): it
// is ignored, and good is the length of the journal without it. Any other bad line is an
// error.
func replay(r io.Reader) (l *Ledger, good int64, err error) {
	l = newLedger()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return l, good, nil // a torn tail, or nothing
		}
		if err != nil {
			return nil, 0, fmt.Errorf("simbank: read journal: %w", err)
		}
		good += int64(len(line))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec record
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, 0, fmt.Errorf("%w: after record %d: %w", ErrJournal, l.Seq, err)
		}
		if err := l.apply(&rec); err != nil {
			return nil, 0, err
		}
	}
}

// LoadLedger reads the journal of a data dir, read-only: safe while the bank runs (a record
// being written is simply not seen yet). A dir without a journal is an empty ledger.
func LoadLedger(dir string) (*Ledger, error) {
	f, err := os.Open(filepath.Join(dir, JournalName))
	if errors.Is(err, os.ErrNotExist) {
		return newLedger(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("simbank: open journal: %w", err)
	}
	defer f.Close()
	l, _, err := replay(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return l, nil
}

// journal is the append-only file. Every record is fsynced before append returns, and the
// server answers only after that: what the FEP was told is always on disk.
type journal struct {
	f *os.File
}

// openJournal replays the journal of dir (creating dir and file as needed), cuts off a torn
// last line and positions for appending.
func openJournal(dir string) (*journal, *Ledger, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("simbank: data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, JournalName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("simbank: open journal: %w", err)
	}
	l, good, err := replay(f)
	if err == nil {
		err = l.Check()
	}
	if err == nil {
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return &journal{f: f}, l, nil
}

// append writes and syncs one record, then applies it to l. The caller holds the ledger
// lock, so records are in sequence order.
func (j *journal) append(l *Ledger, r *record) error {
	r.Seq = l.Seq + 1
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("simbank: journal: %w", err)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("simbank: journal write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("simbank: journal sync: %w", err)
	}
	return l.apply(r)
}

func (j *journal) close() error { return j.f.Close() }
