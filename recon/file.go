package recon

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Header is the first line of the reconciliation file.
type Header struct {
	Count int   // number of record lines
	Total int64 // sum in fen of the Amount of every record, reversed (C) ones included
}

// FileOptions controls how WriteFile renders records.
type FileOptions struct {
	// MaskPAN writes card numbers as MaskPAN does (6 digits, MaskChar..., 4 digits). The
	// platform's file needs full numbers; masked copies are for people and logs.
	MaskPAN bool
}

// maxLine bounds one line of any file this package reads; real lines are < 120 bytes.
const maxLine = 4096

// SortRecords puts records in file order: by Timestamp, then by reference number. The
// reference number is unique, so the order is total and the file's bytes are deterministic.
func SortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), cmp.Compare(a.Ref, b.Ref))
	})
}

// WriteFile writes the reconciliation file: the header, then one line per record in
// SortRecords order, ASCII with LF line ends. The header total is the sum of all records,
// reversed ones included: DESIGN 8 says "total amount of all records", and the platform
// uses it as a checksum of the lines, not as money moved. Nothing is written when a record
// is invalid or two records share a reference number.
func WriteFile(w io.Writer, recs []Record, opts FileOptions) error {
	sorted := slices.Clone(recs)
	SortRecords(sorted)
	var total int64
	seen := make(map[string]bool, len(sorted))
	for i, r := range sorted {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("record %d (reference %q): %w", i+1, r.Ref, err)
		}
		if !opts.MaskPAN && isMasked(r.PAN) {
			return fmt.Errorf("%w: reference %s: masked card number but the file wants it full", ErrInvalid, r.Ref)
		}
		if seen[r.Ref] {
			return fmt.Errorf("%w: reference %s", ErrDuplicate, r.Ref)
		}
		seen[r.Ref] = true
		if total > maxTotal-r.Amount {
			return fmt.Errorf("%w: total amount overflows", ErrInvalid)
		}
		total += r.Amount
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d|%d\n", len(sorted), total)
	for _, r := range sorted {
		pan := r.PAN
		if opts.MaskPAN {
			pan = MaskPAN(pan)
		}
		fmt.Fprintf(&b, "%s|%d|%s|%s|%s|%d|%s|%c|%c\n",
			r.Ref, r.Batch, pan, r.BankCode, r.AcctDate, r.Amount, r.Timestamp, r.Write, r.Txn)
	}
	_, err := w.Write(b.Bytes())
	return err
}

const maxTotal = int64(^uint64(0) >> 1)

// ParseFile reads a reconciliation file strictly: LF line ends, every field valid, no
// duplicate reference, header count and total equal to the lines'. Errors name the line
// (1 is the header). Rows may come in any order; the returned slice keeps the file's order.
func ParseFile(r io.Reader) ([]Record, Header, error) {
	lines, err := readLines(r)
	if err != nil {
		return nil, Header{}, err
	}
	if len(lines) == 0 {
		return nil, Header{}, fmt.Errorf("%w: empty file: want a header line", ErrSyntax)
	}
	h, err := parseHeader(lines[0])
	if err != nil {
		return nil, Header{}, fmt.Errorf("line 1: %w", err)
	}
	recs := make([]Record, 0, len(lines)-1)
	seen := make(map[string]int, len(lines)-1)
	var total int64
	for i, ln := range lines[1:] {
		no := i + 2
		rec, err := parseRecord(ln)
		if err != nil {
			return nil, Header{}, fmt.Errorf("line %d: %w", no, err)
		}
		if prev, ok := seen[rec.Ref]; ok {
			return nil, Header{}, fmt.Errorf("line %d: %w: reference %s also on line %d", no, ErrDuplicate, rec.Ref, prev)
		}
		seen[rec.Ref] = no
		if total > maxTotal-rec.Amount {
			return nil, Header{}, fmt.Errorf("line %d: %w: total amount overflows", no, ErrInvalid)
		}
		total += rec.Amount
		recs = append(recs, rec)
	}
	if h.Count != len(recs) {
		return nil, Header{}, fmt.Errorf("line 1: %w: count %d, file has %d records", ErrMismatch, h.Count, len(recs))
	}
	if h.Total != total {
		return nil, Header{}, fmt.Errorf("line 1: %w: total %d fen, records sum to %d", ErrMismatch, h.Total, total)
	}
	return recs, h, nil
}

func parseHeader(ln string) (Header, error) {
	f := strings.Split(ln, "|")
	if len(f) != 2 {
		return Header{}, fmt.Errorf("%w: header has %d fields, want 2 (count|total)", ErrSyntax, len(f))
	}
	n, err := parseUint("record count", f[0], 1<<31-1)
	if err != nil {
		return Header{}, err
	}
	t, err := parseUint("total amount", f[1], uint64(maxTotal))
	if err != nil {
		return Header{}, err
	}
	return Header{Count: int(n), Total: int64(t)}, nil
}

func parseRecord(ln string) (Record, error) {
	f := strings.Split(ln, "|")
	if len(f) != 9 {
		return Record{}, fmt.Errorf("%w: %d fields, want 9", ErrSyntax, len(f))
	}
	batch, err := parseUint("batch number", f[1], 1<<32-1)
	if err != nil {
		return Record{}, err
	}
	amt, err := parseUint("amount", f[5], uint64(maxTotal))
	if err != nil {
		return Record{}, err
	}
	rec := Record{Ref: f[0], Batch: uint32(batch), PAN: f[2], BankCode: f[3], AcctDate: f[4],
		Amount: int64(amt), Timestamp: f[6]}
	if rec.Write, err = oneChar("write status", f[7]); err != nil {
		return Record{}, err
	}
	if rec.Txn, err = oneChar("txn status", f[8]); err != nil {
		return Record{}, err
	}
	return rec, rec.Validate()
}

func oneChar(what, s string) (byte, error) {
	if len(s) != 1 {
		return 0, fmt.Errorf("%w: %s %q: want one character", ErrInvalid, what, s)
	}
	return s[0], nil
}

// parseUint reads a canonical decimal: digits only, no sign, no leading zero (so each value
// has exactly one spelling and a parsed file re-writes to the same bytes).
func parseUint(what, s string, max uint64) (uint64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: %s %q: want a decimal number without leading zeros", ErrInvalid, what, s)
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, fmt.Errorf("%w: %s %q: not a decimal number", ErrInvalid, what, s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%w: %s %q: out of range (max %d)", ErrInvalid, what, s, max)
	}
	return v, nil
}

// readLines splits r into lines. Every line must end in LF (no CR, no missing final LF), be
// printable ASCII and non-empty: a file that was cut short or re-encoded in transit fails
// here, with its line number, instead of being half read.
func readLines(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	var lines []string
	for no := 1; ; no++ {
		ln, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(ln) > maxLine {
			return nil, fmt.Errorf("line %d: %w: longer than %d bytes", no, ErrSyntax, maxLine)
		}
		if err == io.EOF {
			if len(ln) > 0 {
				return nil, fmt.Errorf("line %d: %w: no LF at the end (file cut short?)", no, ErrSyntax)
			}
			return lines, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: read: %w", no, err)
		}
		body := ln[:len(ln)-1]
		if len(body) == 0 {
			return nil, fmt.Errorf("line %d: %w: empty line", no, ErrSyntax)
		}
		for _, c := range body {
			if c == '\r' {
				return nil, fmt.Errorf("line %d: %w: CR in line (want LF line ends)", no, ErrSyntax)
			}
			if c < 0x20 || c > 0x7e {
				return nil, fmt.Errorf("line %d: %w: byte 0x%02x is not printable ASCII", no, ErrSyntax, c)
			}
		}
		lines = append(lines, string(body))
	}
}
