// Package recon builds, reads and checks the T+2 reconciliation of loads (DESIGN section 8,
// docs/reconciliation.md): the FEP's reconciliation file, the bank's settlement file, the
// classification of every load into the seed's five outcomes, and the clearing report.
//
// It is pure: it takes plain records and writes to an io.Writer it is given. It never opens
// files, sockets or clocks, so every result is a function of its inputs and the files it
// writes are byte-for-byte reproducible (a re-upload on the same day must give the same bytes).
package recon

import (
	"errors"
	"fmt"
	"time"
)

// Write (card-write) statuses of a load, as in the file.
const (
	WriteOK     byte = 'S' // the card was credited
	WriteFailed byte = 'F' // the credit failed (and every reversed load)
	WriteUnsure byte = 'U' // the card was pulled midway; the result is unknown
)

// Transaction (bank) statuses of a load, as in the file.
const (
	TxnOK       byte = 'S' // the bank approved the debit
	TxnReversed byte = 'C' // the debit was reversed (also a timed-out debit that was reversed)
)

// Sentinel errors; every error of this package wraps one of them, so callers test with
// errors.Is and people read the details.
var (
	// ErrInvalid marks a record or line whose field breaks the format.
	ErrInvalid = errors.New("recon: invalid field")
	// ErrSyntax marks a file that cannot be read as the format (wrong field count, header).
	ErrSyntax = errors.New("recon: syntax error")
	// ErrMismatch marks a file whose header disagrees with its lines.
	ErrMismatch = errors.New("recon: header mismatch")
	// ErrDuplicate marks the same reference number (or bank key) twice.
	ErrDuplicate = errors.New("recon: duplicate")
)

// Record is one line of the reconciliation file: one load whose debit reached the bank and
// ended approved (TxnOK) or reversed (TxnReversed). Declined loads are never records.
type Record struct {
	Ref       string // platform reference number, 20 digits
	Batch     uint32 // platform batch number of the sign-in the load ran under
	PAN       string // bank card number, 12-19 digits, or masked 6+4 (see MaskPAN)
	BankCode  string // the platform's code of the bank, exactly 10 letters or digits
	AcctDate  string // accounting date, YYYYMMDD
	Amount    int64  // fen, > 0
	Timestamp string // YYYYMMDDhhmmss of the load
	Write     byte   // WriteOK, WriteFailed or WriteUnsure
	Txn       byte   // TxnOK or TxnReversed
}

// FileName is the name the platform expects for the file of one accounting date.
func FileName(authCode, acctDate string) string {
	return "QC_" + authCode + "_" + acctDate + ".txt"
}

// MaskChar replaces the middle digits of a masked PAN. '*' cannot occur in a digit string,
// so a reader can tell a masked PAN from a full one.
const MaskChar = '*'

// MaskPAN keeps the first 6 and last 4 digits and replaces the rest with MaskChar, keeping
// the length (so the masked file still shows the card number's length). A string that is
// too short to mask is returned all masked.
func MaskPAN(pan string) string {
	if len(pan) <= 10 {
		return repeat(MaskChar, len(pan))
	}
	return pan[:6] + repeat(MaskChar, len(pan)-10) + pan[len(pan)-4:]
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// Validate checks every field against the format. A reversed load must have write status F:
// a reversed load was never written to a card (DESIGN 8).
func (r Record) Validate() error {
	if err := digits("reference", r.Ref, 20, 20); err != nil {
		return err
	}
	if err := checkPAN(r.PAN); err != nil {
		return err
	}
	if err := checkBankCode(r.BankCode); err != nil {
		return err
	}
	if err := checkDate("accounting date", r.AcctDate); err != nil {
		return err
	}
	if r.Amount <= 0 {
		return fmt.Errorf("%w: amount %d fen: must be > 0", ErrInvalid, r.Amount)
	}
	if err := checkTimestamp("timestamp", r.Timestamp); err != nil {
		return err
	}
	switch r.Write {
	case WriteOK, WriteFailed, WriteUnsure:
	default:
		return fmt.Errorf("%w: write status %q: want S, F or U", ErrInvalid, r.Write)
	}
	switch r.Txn {
	case TxnOK:
	case TxnReversed:
		if r.Write != WriteFailed {
			return fmt.Errorf("%w: reference %s: reversed load with write status %c: must be F", ErrInvalid, r.Ref, r.Write)
		}
	default:
		return fmt.Errorf("%w: txn status %q: want S or C", ErrInvalid, r.Txn)
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func digits(what, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("%w: %s %q: want %d..%d digits", ErrInvalid, what, s, minLen, maxLen)
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return fmt.Errorf("%w: %s %q: not all digits", ErrInvalid, what, s)
		}
	}
	return nil
}

func alnum(what, s string, n int) error {
	if len(s) != n {
		return fmt.Errorf("%w: %s %q: want exactly %d letters or digits", ErrInvalid, what, s, n)
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return fmt.Errorf("%w: %s %q: only letters and digits allowed", ErrInvalid, what, s)
		}
	}
	return nil
}

// checkBankCode refuses anything but exactly 10 letters or digits: the platform assigns
// exactly 10 characters, so a shorter code is a configuration error, never padded.
func checkBankCode(s string) error { return alnum("bank code", s, 10) }

// isMasked reports whether pan has the MaskPAN shape: 6 digits, MaskChars, 4 digits.
func isMasked(pan string) bool {
	if len(pan) < 12 || len(pan) > 19 {
		return false
	}
	for i := 0; i < len(pan); i++ {
		c := pan[i]
		if i < 6 || i >= len(pan)-4 {
			if !isDigit(c) {
				return false
			}
		} else if c != MaskChar {
			return false
		}
	}
	return true
}

// checkPAN accepts a full PAN (12-19 digits) or its masked form.
func checkPAN(pan string) error {
	if isMasked(pan) {
		return nil
	}
	if err := digits("bank card number", pan, 12, 19); err != nil {
		return fmt.Errorf("%w (or masked 6%c4)", err, MaskChar)
	}
	return nil
}

func checkDate(what, s string) error {
	if len(s) != 8 || digits(what, s, 8, 8) != nil {
		return fmt.Errorf("%w: %s %q: want YYYYMMDD", ErrInvalid, what, s)
	}
	if _, err := time.Parse("20060102", s); err != nil {
		return fmt.Errorf("%w: %s %q: not a calendar date", ErrInvalid, what, s)
	}
	return nil
}

func checkTimestamp(what, s string) error {
	if len(s) != 14 || digits(what, s, 14, 14) != nil {
		return fmt.Errorf("%w: %s %q: want YYYYMMDDhhmmss", ErrInvalid, what, s)
	}
	if _, err := time.Parse("20060102150405", s); err != nil {
		return fmt.Errorf("%w: %s %q: not a date and time", ErrInvalid, what, s)
	}
	return nil
}
