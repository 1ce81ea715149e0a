package loads

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
)

// The stored record is binary (format version 2): a JSON record cost the FEP ~7 % of its CPU
// per load to encode and ~4 % to decode (docs/performance.md). Layout:
//
//	'Q' 'R' 2, then every field of Record in the fixed order of appendRecord:
//	strings and byte slices as uvarint length + bytes, integers as (u)varints,
//	fixed arrays raw, times as a length byte + time.Time.AppendBinary (zone offset kept,
//	monotonic reading dropped, as JSON did), optional parts as a 0/1 byte then the part.
//
// A field added to any of the encoded structs must be added to appendRecord and
// readRecord in the same place (TestRecordCodecCoversEveryField fails otherwise); a
// change of layout bumps binaryVersion. Version 1 records (JSON, {"v":1,...}) are still read.
const (
	binaryVersion = recordVersion
	magic0        = 'Q'
	magic1        = 'R'
)

// encodeRecord is the stored form of r.
func encodeRecord(r Record) []byte {
	return appendRecord(make([]byte, 0, 640), r)
}

func appendRecord(b []byte, r Record) []byte {
	b = append(b, magic0, magic1, binaryVersion)
	b = appendState(b, &r.State)
	b = appendStart(b, &r.Start)
	b = binary.AppendUvarint(b, uint64(r.Batch))
	if r.Debit == nil {
		b = append(b, 0)
	} else {
		d := r.Debit
		b = append(b, 1)
		b = appendStr(b, d.ReqID)
		b = appendStr(b, d.Bank)
		b = appendStr(b, d.STAN)
		b = appendStr(b, d.Terminal)
		b = appendStr(b, d.Merchant)
		b = binary.AppendVarint(b, d.Amount)
		b = appendStr(b, d.Ref)
		b = appendPayer(b, &d.Payer)
	}
	if r.Reply == nil {
		b = append(b, 0)
	} else {
		p := r.Reply
		b = append(b, 1)
		b = appendStr(b, p.TxnID)
		b = appendStr(b, p.Terminal)
		b = appendStr(b, p.KioskTrace)
		b = appendStr(b, p.Result)
		b = appendStr(b, p.Code)
		b = appendStr(b, p.Ref)
		b = append(b, p.MAC2[:]...)
		b = appendStr(b, p.HostTime)
		b = appendStr(b, p.RRN)
		b = appendStr(b, p.AuthCode)
	}
	if r.Settled == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendTime(b, r.Settled.At)
		b = appendStr(b, r.Settled.How)
		b = appendStr(b, r.Settled.TAC)
	}
	return b
}

func appendState(b []byte, s *txn.State) []byte {
	for _, v := range [...]string{s.ID, string(s.Phase), s.Terminal, s.KioskTrace, s.CardSerial} {
		b = appendStr(b, v)
	}
	b = binary.AppendVarint(b, s.Amount)
	for _, v := range [...]string{s.BankCode, s.MaskedPAN, s.STAN, s.BankDate, s.Ref, s.BankResp, s.RRN,
		s.AuthCode, s.SettleDate, s.MAC2, s.HostTime, s.TAC, string(s.Write), string(s.Txn),
		string(s.Reversal), s.RevWhy, s.RevCode, string(s.Kiosk), string(s.Outcome)} {
		b = appendStr(b, v)
	}
	b = binary.AppendVarint(b, int64(s.BookAttempts))
	b = binary.AppendVarint(b, int64(s.ConfirmAttempts))
	l := &s.Limits
	for _, d := range [...]time.Duration{l.Check, l.Bank, l.Kiosk, l.BookFirst, l.BookMax, l.Confirm,
		l.ConfirmFirst, l.ConfirmMax} {
		b = binary.AppendVarint(b, int64(d))
	}
	for _, t := range [...]*time.Time{&s.Started, &s.CheckDeadline, &s.BankDeadline, &s.KioskDeadline,
		&s.BookRetryAt, &s.ConfirmDeadline, &s.ConfirmRetryAt, &s.Finished} {
		b = appendTime(b, *t)
	}
	return b
}

func appendStart(b []byte, m *messages.StartLoad) []byte {
	b = appendStr(b, m.TxnID)
	b = appendStr(b, m.Terminal)
	b = appendStr(b, m.KioskTrace)
	b = binary.AppendVarint(b, m.Amount)
	b = appendStr(b, m.BankCode)
	c := &m.Card
	b = append(b, c.AppSerial[:]...)
	b = appendStr(b, c.CityCode)
	b = binary.AppendUvarint(b, uint64(c.OldBalance))
	b = binary.AppendUvarint(b, uint64(c.Serial))
	b = append(b, c.KeyIndex, c.KeyVersion, c.AlgID)
	b = append(b, c.Random[:]...)
	b = append(b, c.MAC1[:]...)
	b = append(b, c.TermID[:]...)
	return appendPayer(b, &m.Payer)
}

func appendPayer(b []byte, p *messages.BankCard) []byte {
	b = appendStr(b, p.PAN)
	b = appendStr(b, p.Track2)
	b = appendStr(b, p.Expiry)
	b = appendStr(b, p.EntryMode)
	b = appendStr(b, p.CardSeq)
	b = binary.AppendUvarint(b, uint64(len(p.PINBlock)))
	b = append(b, p.PINBlock...)
	return appendStr(b, p.PINKey)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime writes a kind byte (0 the zero time, 1 UTC, 2 with its zone offset), then
// Unix seconds, nanoseconds and (kind 2) the offset in seconds. Like JSON, it keeps the
// instant and the offset, not the zone's name or the monotonic reading.
func appendTime(b []byte, t time.Time) []byte {
	var kind byte = 2
	switch {
	case t == time.Time{}:
		return append(b, 0)
	case t.Location() == time.UTC:
		kind = 1
	}
	b = append(b, kind)
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	if kind == 2 {
		_, off := t.Zone()
		b = binary.AppendVarint(b, int64(off))
	}
	return b
}

// DecodeRecord reads a stored Record: the binary format, or a version 1 (JSON) record.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) >= 3 && b[0] == magic0 && b[1] == magic1 {
		if b[2] != binaryVersion {
			return Record{}, fmt.Errorf("decode txn record: version %d, want %d", b[2], binaryVersion)
		}
		r, err := readRecord(b[3:])
		if err != nil {
			return Record{}, fmt.Errorf("decode txn record: %w", err)
		}
		return r, nil
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("decode txn record: %w", err)
	}
	if r.V != jsonVersion {
		return Record{}, fmt.Errorf("decode txn record %s: version %d, want %d", r.State.ID, r.V, jsonVersion)
	}
	return r, nil
}

var errShort = errors.New("truncated")

// reader decodes the binary record. Strings are cut out of one copy of the input (one
// allocation for all of them); the first error sticks and later reads return zero values.
type reader struct {
	s   string
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := uvarintString(r.s[r.off:])
	if n <= 0 {
		r.fail(fmt.Errorf("bad varint at %d", r.off))
		return 0
	}
	r.off += n
	return v
}

func uvarintString(s string) (uint64, int) {
	var x uint64
	var sh uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -1
			}
			return x | uint64(c)<<sh, i + 1
		}
		x |= uint64(c&0x7f) << sh
		sh += 7
	}
	return 0, 0
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) bounded(max uint64, what string) uint64 {
	v := r.uvarint()
	if v > max {
		r.fail(fmt.Errorf("%s %d out of range", what, v))
		return 0
	}
	return v
}

func (r *reader) take(n uint64) string {
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.off) {
		r.fail(errShort)
		return ""
	}
	v := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *reader) str() string { return r.take(r.uvarint()) }

func (r *reader) byte1() byte {
	v := r.take(1)
	if v == "" {
		return 0
	}
	return v[0]
}

func (r *reader) flag() bool {
	switch r.byte1() {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail(fmt.Errorf("bad presence byte at %d", r.off-1))
		return false
	}
}

func (r *reader) fixed(dst []byte) { copy(dst, r.take(uint64(len(dst)))) }

func (r *reader) time() time.Time {
	kind := r.byte1()
	if kind == 0 || r.err != nil {
		return time.Time{}
	}
	sec := r.varint()
	nsec := r.bounded(999_999_999, "nanoseconds")
	switch kind {
	case 1:
		return time.Unix(sec, int64(nsec)).UTC()
	case 2:
		off := r.varint()
		if off < -24*3600 || off > 24*3600 {
			r.fail(fmt.Errorf("zone offset %d out of range", off))
			return time.Time{}
		}
		t := time.Unix(sec, int64(nsec)) // Local, as a JSON time with the local offset decodes
		if _, local := t.Zone(); int64(local) != off {
			t = t.In(time.FixedZone("", int(off)))
		}
		return t
	default:
		r.fail(fmt.Errorf("bad time kind %d", kind))
		return time.Time{}
	}
}

func readRecord(b []byte) (Record, error) {
	r := &reader{s: string(b)}
	rec := Record{V: recordVersion}
	readState(r, &rec.State)
	readStart(r, &rec.Start)
	rec.Batch = uint32(r.bounded(1<<32-1, "batch"))
	if r.flag() {
		d := &messages.BankDebit{}
		d.ReqID, d.Bank, d.STAN, d.Terminal, d.Merchant = r.str(), r.str(), r.str(), r.str(), r.str()
		d.Amount = r.varint()
		d.Ref = r.str()
		readPayer(r, &d.Payer)
		rec.Debit = d
	}
	if r.flag() {
		p := &messages.LoadReply{}
		p.TxnID, p.Terminal, p.KioskTrace, p.Result, p.Code, p.Ref = r.str(), r.str(), r.str(), r.str(), r.str(), r.str()
		r.fixed(p.MAC2[:])
		p.HostTime, p.RRN, p.AuthCode = r.str(), r.str(), r.str()
		rec.Reply = p
	}
	if r.flag() {
		s := &Settled{}
		s.At = r.time()
		s.How, s.TAC = r.str(), r.str()
		rec.Settled = s
	}
	if r.err == nil && r.off != len(r.s) {
		r.fail(fmt.Errorf("%d bytes after the record", len(r.s)-r.off))
	}
	if r.err != nil {
		return Record{}, r.err
	}
	return rec, nil
}

func readState(r *reader, s *txn.State) {
	s.ID, s.Phase, s.Terminal, s.KioskTrace, s.CardSerial = r.str(), txn.Phase(r.str()), r.str(), r.str(), r.str()
	s.Amount = r.varint()
	s.BankCode, s.MaskedPAN, s.STAN, s.BankDate, s.Ref, s.BankResp, s.RRN = r.str(), r.str(), r.str(), r.str(), r.str(), r.str(), r.str()
	s.AuthCode, s.SettleDate, s.MAC2, s.HostTime, s.TAC = r.str(), r.str(), r.str(), r.str(), r.str()
	s.Write, s.Txn, s.Reversal = txn.WriteStatus(r.str()), txn.TxnStatus(r.str()), txn.ReversalState(r.str())
	s.RevWhy, s.RevCode, s.Kiosk, s.Outcome = r.str(), r.str(), txn.KioskResult(r.str()), txn.Outcome(r.str())
	s.BookAttempts = int(r.varint())
	s.ConfirmAttempts = int(r.varint())
	l := &s.Limits
	for _, d := range [...]*time.Duration{&l.Check, &l.Bank, &l.Kiosk, &l.BookFirst, &l.BookMax, &l.Confirm,
		&l.ConfirmFirst, &l.ConfirmMax} {
		*d = time.Duration(r.varint())
	}
	for _, t := range [...]*time.Time{&s.Started, &s.CheckDeadline, &s.BankDeadline, &s.KioskDeadline,
		&s.BookRetryAt, &s.ConfirmDeadline, &s.ConfirmRetryAt, &s.Finished} {
		*t = r.time()
	}
}

func readStart(r *reader, m *messages.StartLoad) {
	m.TxnID, m.Terminal, m.KioskTrace = r.str(), r.str(), r.str()
	m.Amount = r.varint()
	m.BankCode = r.str()
	c := &m.Card
	r.fixed(c.AppSerial[:])
	c.CityCode = r.str()
	c.OldBalance = uint32(r.bounded(1<<32-1, "old balance"))
	c.Serial = uint16(r.bounded(1<<16-1, "serial"))
	c.KeyIndex, c.KeyVersion, c.AlgID = r.byte1(), r.byte1(), r.byte1()
	r.fixed(c.Random[:])
	r.fixed(c.MAC1[:])
	r.fixed(c.TermID[:])
	readPayer(r, &m.Payer)
}

func readPayer(r *reader, p *messages.BankCard) {
	p.PAN, p.Track2, p.Expiry, p.EntryMode, p.CardSeq = r.str(), r.str(), r.str(), r.str(), r.str()
	if pin := r.str(); pin != "" {
		p.PINBlock = []byte(pin)
	}
	p.PINKey = r.str()
}
