package recon

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Settlement line types.
const (
	SettleDebit    byte = 'D' // a 0200 debit the bank received
	SettleReversal byte = 'R' // a 0400/0401 reversal the bank received, keyed by the debit it reverses
)

// RespApproved is the ISO 8583 response code for an approved debit or an applied reversal.
const RespApproved = "00"

// BankKey identifies one debit at a bank: the FEP's terminal id, STAN and local date it sent
// in the 0200 (DESIGN 7 matches bank responses the same way). The FEP knows this key for every
// debit it sent, even one whose answer never came, which an RRN (assigned by the bank) is not.
type BankKey struct {
	BankCode  string // the platform's 10-char bank code
	Terminal  string // terminal id, 8 letters or digits
	STAN      string // system trace audit number, 6 digits
	LocalDate string // YYYYMMDD, the date part of the request's local date and time
}

func (k BankKey) String() string {
	return k.BankCode + "/" + k.Terminal + "/" + k.STAN + "/" + k.LocalDate
}

// SettlementLine is one line of a bank's settlement file: what the bank host did with one
// debit or one reversal. A reversal line carries the key of the debit it reverses (terminal,
// STAN and local date/time of the original 0200, as in field 90), so a debit and its reversal
// share a Key.
type SettlementLine struct {
	BankCode   string // 10 letters or digits
	Terminal   string // 8 letters or digits
	STAN       string // 6 digits
	RRN        string // retrieval reference number the bank assigned, 12 letters or digits
	LocalTime  string // YYYYMMDDhhmmss of the original debit request
	PAN        string // full (or masked 6+4) bank card number
	Amount     int64  // fen, > 0
	Resp       string // response code the bank gave, 2 letters or digits; "00" approved/applied
	Type       byte   // SettleDebit or SettleReversal
	SettleDate string // YYYYMMDD the bank settles the line on
}

// Key is the debit this line is about.
func (l SettlementLine) Key() BankKey {
	d := l.LocalTime
	if len(d) >= 8 {
		d = d[:8]
	}
	return BankKey{BankCode: l.BankCode, Terminal: l.Terminal, STAN: l.STAN, LocalDate: d}
}

// Approved reports whether the bank approved the debit or applied the reversal.
func (l SettlementLine) Approved() bool { return l.Resp == RespApproved }

// Validate checks every field against the format.
func (l SettlementLine) Validate() error {
	if err := checkBankCode(l.BankCode); err != nil {
		return err
	}
	if err := alnum("terminal id", l.Terminal, 8); err != nil {
		return err
	}
	if err := digits("STAN", l.STAN, 6, 6); err != nil {
		return err
	}
	if err := alnum("RRN", l.RRN, 12); err != nil {
		return err
	}
	if err := checkTimestamp("local date and time", l.LocalTime); err != nil {
		return err
	}
	if err := checkPAN(l.PAN); err != nil {
		return err
	}
	if l.Amount <= 0 {
		return fmt.Errorf("%w: amount %d fen: must be > 0", ErrInvalid, l.Amount)
	}
	if err := alnum("response code", l.Resp, 2); err != nil {
		return err
	}
	if l.Type != SettleDebit && l.Type != SettleReversal {
		return fmt.Errorf("%w: type %q: want D or R", ErrInvalid, l.Type)
	}
	return checkDate("settlement date", l.SettleDate)
}

// SortSettlement puts lines in file order: local time, bank, terminal, STAN, then D before R.
// (key, type) is unique in a file, so the order is total.
func SortSettlement(lines []SettlementLine) {
	slices.SortFunc(lines, func(a, b SettlementLine) int {
		return cmp.Or(cmp.Compare(a.LocalTime, b.LocalTime), cmp.Compare(a.BankCode, b.BankCode),
			cmp.Compare(a.Terminal, b.Terminal), cmp.Compare(a.STAN, b.STAN), cmp.Compare(a.Type, b.Type))
	})
}

type settleID struct {
	k BankKey
	t byte
}

// WriteSettlement writes a settlement file: header `<line count>|<sum of all amounts>`, then
// one line per SettlementLine in SortSettlement order, ASCII, LF. Like the reconciliation
// file's, the header total is a checksum over every line, declined and reversals included.
func WriteSettlement(w io.Writer, lines []SettlementLine) error {
	sorted := slices.Clone(lines)
	SortSettlement(sorted)
	var total int64
	seen := make(map[settleID]bool, len(sorted))
	for i, l := range sorted {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("settlement line %d (%s): %w", i+1, l.Key(), err)
		}
		id := settleID{l.Key(), l.Type}
		if seen[id] {
			return fmt.Errorf("%w: %c line for %s", ErrDuplicate, l.Type, l.Key())
		}
		seen[id] = true
		if total > maxTotal-l.Amount {
			return fmt.Errorf("%w: total amount overflows", ErrInvalid)
		}
		total += l.Amount
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d|%d\n", len(sorted), total)
	for _, l := range sorted {
		fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s|%d|%s|%c|%s\n",
			l.BankCode, l.Terminal, l.STAN, l.RRN, l.LocalTime, l.PAN, l.Amount, l.Resp, l.Type, l.SettleDate)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ParseSettlement reads a settlement file as strictly as ParseFile reads a reconciliation
// file; errors name the line.
func ParseSettlement(r io.Reader) ([]SettlementLine, error) {
	lines, err := readLines(r)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: empty file: want a header line", ErrSyntax)
	}
	h, err := parseHeader(lines[0])
	if err != nil {
		return nil, fmt.Errorf("line 1: %w", err)
	}
	out := make([]SettlementLine, 0, len(lines)-1)
	seen := make(map[settleID]int, len(lines)-1)
	var total int64
	for i, ln := range lines[1:] {
		no := i + 2
		l, err := parseSettlementLine(ln)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", no, err)
		}
		id := settleID{l.Key(), l.Type}
		if prev, ok := seen[id]; ok {
			return nil, fmt.Errorf("line %d: %w: %c line for %s also on line %d", no, ErrDuplicate, l.Type, l.Key(), prev)
		}
		seen[id] = no
		if total > maxTotal-l.Amount {
			return nil, fmt.Errorf("line %d: %w: total amount overflows", no, ErrInvalid)
		}
		total += l.Amount
		out = append(out, l)
	}
	if h.Count != len(out) {
		return nil, fmt.Errorf("line 1: %w: count %d, file has %d lines", ErrMismatch, h.Count, len(out))
	}
	if h.Total != total {
		return nil, fmt.Errorf("line 1: %w: total %d fen, lines sum to %d", ErrMismatch, h.Total, total)
	}
	return out, nil
}

func parseSettlementLine(ln string) (SettlementLine, error) {
	f := strings.Split(ln, "|")
	if len(f) != 10 {
		return SettlementLine{}, fmt.Errorf("%w: %d fields, want 10", ErrSyntax, len(f))
	}
	amt, err := parseUint("amount", f[6], uint64(maxTotal))
	if err != nil {
		return SettlementLine{}, err
	}
	l := SettlementLine{BankCode: f[0], Terminal: f[1], STAN: f[2], RRN: f[3], LocalTime: f[4],
		PAN: f[5], Amount: int64(amt), Resp: f[7], SettleDate: f[9]}
	if l.Type, err = oneChar("type", f[8]); err != nil {
		return SettlementLine{}, err
	}
	return l, l.Validate()
}
