package kiosk

import (
	"encoding/binary"
	"fmt"
)

// part is one fixed-length piece of a binary private field. A layout is a list of parts;
// pack and unpack walk it, and the docs print it, so the byte layout exists in one place.
type part[T any] struct {
	Name string
	Len  int
	Desc string
	get  func(*T) []byte
	set  func(*T, []byte) error
}

type layout[T any] []part[T]

// size is the packed length of the layout.
func (l layout[T]) size() int {
	n := 0
	for _, p := range l {
		n += p.Len
	}
	return n
}

func (l layout[T]) pack(v *T) []byte {
	out := make([]byte, 0, l.size())
	for _, p := range l {
		b := p.get(v)
		// get always returns exactly p.Len bytes; pad/cut defensively so a mistake shows in
		// a test as a wrong value, never as a shifted layout.
		fixed := make([]byte, p.Len)
		copy(fixed, b)
		out = append(out, fixed...)
	}
	return out
}

func (l layout[T]) unpack(b []byte, v *T) error {
	if len(b) != l.size() {
		return fmt.Errorf("%w: %d bytes, layout needs %d", ErrFormat, len(b), l.size())
	}
	off := 0
	for _, p := range l {
		if err := p.set(v, b[off:off+p.Len]); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		off += p.Len
	}
	return nil
}

// Accessor helpers for the layouts.
func u32get(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16get(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// CardID is the e-purse card's identity from file 0015 (spec 1.2): F45.
type CardID struct {
	AppSerial [8]byte // application serial number, 0015[12:20]; the key diversification factor
	City      [2]byte // city code, 0015[2:4]
	CardType  byte    // card main type, 0015[28]
}

var cardIDLayout = layout[CardID]{
	{"app serial", 8, "application serial number, 0015 offset 12", func(c *CardID) []byte { return c.AppSerial[:] },
		func(c *CardID, b []byte) error { copy(c.AppSerial[:], b); return nil }},
	{"city code", 2, "0015 offset 2", func(c *CardID) []byte { return c.City[:] },
		func(c *CardID, b []byte) error { copy(c.City[:], b); return nil }},
	{"card type", 1, "card main type, 0015 offset 28", func(c *CardID) []byte { return []byte{c.CardType} },
		func(c *CardID, b []byte) error { c.CardType = b[0]; return nil }},
}

// InitData is what INITIALIZE FOR LOAD returned (spec 2.1) plus the key index the kiosk
// sent: F57. The platform recomputes MAC1 from it; the terminal number and amount of the
// INIT are F42 and F4 of the same message.
type InitData struct {
	KeyIndex   byte   // DLK index sent in INIT FOR LOAD
	OldBalance uint32 // fen
	Serial     uint16 // online transaction serial, before increment
	KeyVersion byte
	AlgID      byte
	Random     [4]byte
	MAC1       [4]byte
}

var initLayout = layout[InitData]{
	{"key index", 1, "DLK index used in INITIALIZE FOR LOAD", func(d *InitData) []byte { return []byte{d.KeyIndex} },
		func(d *InitData, b []byte) error { d.KeyIndex = b[0]; return nil }},
	{"old balance", 4, "unsigned BE, fen", func(d *InitData) []byte { return u32get(d.OldBalance) },
		func(d *InitData, b []byte) error { d.OldBalance = binary.BigEndian.Uint32(b); return nil }},
	{"online serial", 2, "unsigned BE, before increment", func(d *InitData) []byte { return u16get(d.Serial) },
		func(d *InitData, b []byte) error { d.Serial = binary.BigEndian.Uint16(b); return nil }},
	{"key version", 1, "", func(d *InitData) []byte { return []byte{d.KeyVersion} },
		func(d *InitData, b []byte) error { d.KeyVersion = b[0]; return nil }},
	{"algorithm id", 1, "", func(d *InitData) []byte { return []byte{d.AlgID} },
		func(d *InitData, b []byte) error { d.AlgID = b[0]; return nil }},
	{"card random", 4, "", func(d *InitData) []byte { return d.Random[:] },
		func(d *InitData, b []byte) error { copy(d.Random[:], b); return nil }},
	{"MAC1", 4, "", func(d *InitData) []byte { return d.MAC1[:] },
		func(d *InitData, b []byte) error { copy(d.MAC1[:], b); return nil }},
}

// Credit is what the kiosk sends the card in CREDIT FOR LOAD (spec 2.5): F59.
type Credit struct {
	HostTime HostTime // the platform's date/time that MAC2 covers
	MAC2     [4]byte
}

var creditLayout = layout[Credit]{
	{"host date/time", 7, "BCD YYYYMMDDhhmmss, the platform's clock", func(c *Credit) []byte { return c.HostTime[:] },
		func(c *Credit, b []byte) error { copy(c.HostTime[:], b); return c.HostTime.Valid() }},
	{"MAC2", 4, "", func(c *Credit) []byte { return c.MAC2[:] },
		func(c *Credit, b []byte) error { copy(c.MAC2[:], b); return nil }},
}

// WriteStatus is the outcome of CREDIT FOR LOAD as the kiosk saw it.
type WriteStatus byte

// Write statuses (seed section 5).
const (
	Written WriteStatus = 'S' // 9000 + TAC
	Failed  WriteStatus = 'F' // the card answered and did not apply the credit
	Unknown WriteStatus = 'U' // no answer: card pulled, reader error
)

func (s WriteStatus) valid() error {
	switch s {
	case Written, Failed, Unknown:
		return nil
	}
	return fmt.Errorf("%w: write status %q", ErrFormat, byte(s))
}

// WriteResult is the kiosk's report of CREDIT FOR LOAD: F47.
type WriteResult struct {
	Status     WriteStatus
	SW         uint16  // card status word of CREDIT FOR LOAD, 0 when none (U)
	TAC        [4]byte // zero unless S
	NewBalance uint32  // fen, from GET BALANCE after the credit; 0 unless S
}

var writeLayout = layout[WriteResult]{
	{"write status", 1, "ASCII S, F or U", func(w *WriteResult) []byte { return []byte{byte(w.Status)} },
		func(w *WriteResult, b []byte) error { w.Status = WriteStatus(b[0]); return w.Status.valid() }},
	{"card SW", 2, "status word of CREDIT FOR LOAD, 0000 if none", func(w *WriteResult) []byte { return u16get(w.SW) },
		func(w *WriteResult, b []byte) error { w.SW = binary.BigEndian.Uint16(b); return nil }},
	{"TAC", 4, "zero unless S", func(w *WriteResult) []byte { return w.TAC[:] },
		func(w *WriteResult, b []byte) error { copy(w.TAC[:], b); return nil }},
	{"new balance", 4, "unsigned BE fen, 0 unless S", func(w *WriteResult) []byte { return u32get(w.NewBalance) },
		func(w *WriteResult, b []byte) error { w.NewBalance = binary.BigEndian.Uint32(b); return nil }},
}

// EvidenceMethod says where U-resolution evidence came from (spec 4).
type EvidenceMethod byte

// Evidence methods.
const (
	ByProve EvidenceMethod = 'P' // GET TRANSACTION PROVE (805A) returned MAC2'||TAC
	ByLog   EvidenceMethod = 'L' // a 0018 log record
	NoProof EvidenceMethod = 'N' // neither available (record rotated out): the platform's ledger decides
)

// Evidence is what the kiosk observed on a card whose online serial moved past the serial of
// a U load: F46. The platform decides applied / not applied from it.
type Evidence struct {
	Serial uint16 // S' from a fresh INITIALIZE FOR LOAD
	Method EvidenceMethod
	MAC2   [4]byte  // from 805A, zero otherwise
	TAC    [4]byte  // from 805A, zero otherwise
	Record [23]byte // the 0018 record with the U load's serial when Method is L, zero otherwise
}

var evidenceLayout = layout[Evidence]{
	{"observed serial", 2, "S' from a fresh INITIALIZE FOR LOAD", func(e *Evidence) []byte { return u16get(e.Serial) },
		func(e *Evidence, b []byte) error { e.Serial = binary.BigEndian.Uint16(b); return nil }},
	{"method", 1, "ASCII P (805A), L (0018 record) or N (none)", func(e *Evidence) []byte { return []byte{byte(e.Method)} },
		func(e *Evidence, b []byte) error {
			e.Method = EvidenceMethod(b[0])
			switch e.Method {
			case ByProve, ByLog, NoProof:
				return nil
			}
			return fmt.Errorf("%w: evidence method %q", ErrFormat, b[0])
		}},
	{"MAC2'", 4, "from 805A, zero otherwise", func(e *Evidence) []byte { return e.MAC2[:] },
		func(e *Evidence, b []byte) error { copy(e.MAC2[:], b); return nil }},
	{"TAC", 4, "from 805A, zero otherwise", func(e *Evidence) []byte { return e.TAC[:] },
		func(e *Evidence, b []byte) error { copy(e.TAC[:], b); return nil }},
	{"0018 record", 23, "the record with the load's serial (method L), zero otherwise", func(e *Evidence) []byte { return e.Record[:] },
		func(e *Evidence, b []byte) error { copy(e.Record[:], b); return nil }},
}

// Pending is one booked load of a card that is not known to be on it (write status F or U):
// one entry of F61. It holds what a kiosk needs to run the U resolution of spec section 4,
// whichever kiosk did the original load.
type Pending struct {
	Reference  string // 20 digits
	Amount     uint32 // fen
	Status     WriteStatus
	Serial     uint16 // online serial of the original INIT
	OldBalance uint32 // B0 of the original INIT
	TermID     [6]byte
	HostTime   HostTime
	MAC2       [4]byte
}

var pendingLayout = layout[Pending]{
	{"reference", 10, "20 digits BCD", func(p *Pending) []byte { b, _ := packRef(p.Reference); return b },
		func(p *Pending, b []byte) error { r, err := unpackRef(b); p.Reference = r; return err }},
	{"amount", 4, "unsigned BE fen", func(p *Pending) []byte { return u32get(p.Amount) },
		func(p *Pending, b []byte) error { p.Amount = binary.BigEndian.Uint32(b); return nil }},
	{"write status", 1, "ASCII F or U", func(p *Pending) []byte { return []byte{byte(p.Status)} },
		func(p *Pending, b []byte) error { p.Status = WriteStatus(b[0]); return p.Status.valid() }},
	{"online serial", 2, "serial of the original INIT", func(p *Pending) []byte { return u16get(p.Serial) },
		func(p *Pending, b []byte) error { p.Serial = binary.BigEndian.Uint16(b); return nil }},
	{"old balance", 4, "B0 of the original INIT, fen", func(p *Pending) []byte { return u32get(p.OldBalance) },
		func(p *Pending, b []byte) error { p.OldBalance = binary.BigEndian.Uint32(b); return nil }},
	{"terminal number", 6, "PSAM number used in the original INIT", func(p *Pending) []byte { return p.TermID[:] },
		func(p *Pending, b []byte) error { copy(p.TermID[:], b); return nil }},
	{"host date/time", 7, "BCD, covered by the MAC2 issued", func(p *Pending) []byte { return p.HostTime[:] },
		func(p *Pending, b []byte) error { copy(p.HostTime[:], b); return p.HostTime.Valid() }},
	{"MAC2", 4, "the MAC2 issued last for this load", func(p *Pending) []byte { return p.MAC2[:] },
		func(p *Pending, b []byte) error { copy(p.MAC2[:], b); return nil }},
}

// MaxPending bounds F61: a card with more unfinished loads than this is a case for people.
const MaxPending = 20

func packPending(list []Pending) ([]byte, error) {
	if len(list) > MaxPending {
		return nil, fmt.Errorf("%w: %d pending loads, at most %d", ErrFormat, len(list), MaxPending)
	}
	out := []byte{byte(len(list))}
	for i := range list {
		if err := checkRef(list[i].Reference); err != nil {
			return nil, err
		}
		out = append(out, pendingLayout.pack(&list[i])...)
	}
	return out, nil
}

func unpackPending(b []byte) ([]Pending, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty pending list", ErrFormat)
	}
	n, sz := int(b[0]), pendingLayout.size()
	if n > MaxPending || len(b) != 1+n*sz {
		return nil, fmt.Errorf("%w: pending list of %d bytes for %d entries", ErrFormat, len(b), n)
	}
	out := make([]Pending, n)
	for i := range out {
		if err := pendingLayout.unpack(b[1+i*sz:1+(i+1)*sz], &out[i]); err != nil {
			return nil, fmt.Errorf("pending entry %d: %w", i, err)
		}
	}
	return out, nil
}

// WorkingKeys are the kiosk's session keys as the 0810 delivers them (spec 7.5): each
// double-length key encrypted under the kiosk's TMK (3DES ECB) with its 4-byte check value.
// This package never sees a clear key.
type WorkingKeys struct {
	PIK    [16]byte
	PIKKCV [4]byte
	MAK    [16]byte
	MAKKCV [4]byte
}

var keysLayout = layout[WorkingKeys]{
	{"E_TMK(PIK)", 16, "3DES ECB under the kiosk TMK", func(k *WorkingKeys) []byte { return k.PIK[:] },
		func(k *WorkingKeys, b []byte) error { copy(k.PIK[:], b); return nil }},
	{"KCV(PIK)", 4, "left 4 bytes of 3DES_PIK(0000000000000000)", func(k *WorkingKeys) []byte { return k.PIKKCV[:] },
		func(k *WorkingKeys, b []byte) error { copy(k.PIKKCV[:], b); return nil }},
	{"E_TMK(MAK)", 16, "3DES ECB under the kiosk TMK", func(k *WorkingKeys) []byte { return k.MAK[:] },
		func(k *WorkingKeys, b []byte) error { copy(k.MAK[:], b); return nil }},
	{"KCV(MAK)", 4, "left 4 bytes of 3DES_MAK(0000000000000000)", func(k *WorkingKeys) []byte { return k.MAKKCV[:] },
		func(k *WorkingKeys, b []byte) error { copy(k.MAKKCV[:], b); return nil }},
}
