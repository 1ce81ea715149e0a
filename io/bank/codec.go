package bank

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// prefixLen is TPDU + header, the bytes before the MTI.
const prefixLen = 5 + 6

// Message is one typed bank message (SignOn, Debit, ReversalResponse, ...). Only this
// package's types implement it: the set of messages is the protocol.
type Message interface {
	mti(d *Dialect) string
	put(d *Dialect, w *writer)
	get(d *Dialect, r *reader)
	macRequired() bool
}

// Fields is one decoded ISO 8583 body: values as the spec's field types give them, i.e.
// digit strings for n (leading zeros kept), text for an/ans without the trailing pad, bytes
// for b.
type Fields struct {
	MTI     string
	present uint64 // bit 63 = field 1
	vals    [65][]byte
}

// Has reports whether field id is present.
func (f *Fields) Has(id int) bool {
	return id >= 1 && id <= 64 && f.present&(1<<(64-id)) != 0
}

// Get returns field id as a string, "" when absent.
func (f *Fields) Get(id int) string {
	if !f.Has(id) {
		return ""
	}
	return string(f.vals[id])
}

// Bytes returns field id's value, nil when absent. The slice is the Fields' own.
func (f *Fields) Bytes(id int) []byte {
	if !f.Has(id) {
		return nil
	}
	return f.vals[id]
}

// IDs lists the present fields in order.
func (f *Fields) IDs() []int {
	ids := make([]int, 0, bits.OnesCount64(f.present))
	for i := 2; i <= 64; i++ {
		if f.Has(i) {
			ids = append(ids, i)
		}
	}
	return ids
}

// decodeBody decodes MTI, bitmap and fields, insisting the fields end exactly at the end of
// body: the length prefix of the frame is the only delimiter, so anything after the last
// field means the two sides disagree about the format.
func decodeBody(spec *iso8583.MessageSpec, body []byte) (*Fields, error) {
	f := new(Fields)
	mti := field.NewInstanceOf(spec.Fields[0])
	off, err := mti.Unpack(body)
	if err != nil {
		return nil, fmt.Errorf("%w: MTI: %w", ErrFormat, err)
	}
	if f.MTI, err = mti.String(); err != nil || !isMTI(f.MTI) {
		return nil, fmt.Errorf("%w: MTI %q", ErrFormat, f.MTI)
	}
	if len(body) < off+8 {
		return nil, fmt.Errorf("%w: no bitmap", ErrShort)
	}
	f.present = binary.BigEndian.Uint64(body[off:])
	off += 8
	if f.present&(1<<63) != 0 {
		return nil, ErrSecondaryBitmap
	}
	for id := 2; id <= 64; id++ {
		if !f.Has(id) {
			continue
		}
		sf, ok := spec.Fields[id]
		if !ok {
			return nil, fmt.Errorf("%w: %d", ErrUnknownField, id)
		}
		fl := field.NewInstanceOf(sf)
		n, err := fl.Unpack(body[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: field %d: %w", ErrFormat, id, err)
		}
		if f.vals[id], err = fl.Bytes(); err != nil {
			return nil, fmt.Errorf("%w: field %d: %w", ErrFormat, id, err)
		}
		off += n
	}
	if off != len(body) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTrailing, len(body)-off)
	}
	return f, nil
}

// Frame is one received payload decoded: TPDU, header, the fields and the typed message.
type Frame struct {
	TPDU   TPDU
	Header Header
	Fields *Fields
	Msg    Message // nil from DecodeFields
	mab    []byte  // MTI .. last field before F64, when F64 is present
}

// VerifyMAC checks F64 over the MAB (MTI through the field before F64). What the FEP does with
// every 0210 and 0410 before believing it.
func (f *Frame) VerifyMAC(v Verifier) error {
	if !f.Fields.Has(64) {
		return ErrNoMAC
	}
	if err := v.VerifyMAC(f.mab, f.Fields.Bytes(64)); err != nil {
		return fmt.Errorf("bank: %s STAN %s: %w", f.Fields.MTI, f.Fields.Get(11), err)
	}
	return nil
}

// DecodeFields splits a payload (TPDU | header | MTI | bitmap | fields, the bytes inside one
// io/frame frame) into its parts without choosing a message type.
func (d *Dialect) DecodeFields(payload []byte) (*Frame, error) {
	if len(payload) < prefixLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrShort, len(payload))
	}
	fr := &Frame{}
	copy(fr.TPDU[:], payload)
	copy(fr.Header[:], payload[5:])
	body := payload[prefixLen:]
	var err error
	if fr.Fields, err = decodeBody(d.Spec, body); err != nil {
		return nil, err
	}
	if fr.Fields.Has(64) {
		fr.mab = body[:len(body)-8]
	}
	return fr, nil
}

// Decode decodes a payload into a typed message chosen by MTI (and F60.3 for network
// management). An MTI or code the dialect does not know is ErrUnknownMessage.
func (d *Dialect) Decode(payload []byte) (*Frame, error) {
	fr, err := d.DecodeFields(payload)
	if err != nil {
		return nil, err
	}
	msg := d.newMessage(fr.Fields)
	if msg == nil {
		return nil, fmt.Errorf("%w: MTI %s F60 %q", ErrUnknownMessage, fr.Fields.MTI, fr.Fields.Get(60))
	}
	r := &reader{f: fr.Fields}
	msg.get(d, r)
	if r.err != nil {
		return nil, r.err
	}
	fr.Msg = msg
	return fr, nil
}

// Unpack decodes a payload into msg, which must be of the type the MTI says.
func (d *Dialect) Unpack(payload []byte, msg Message) (*Frame, error) {
	fr, err := d.DecodeFields(payload)
	if err != nil {
		return nil, err
	}
	r := &reader{f: fr.Fields}
	msg.get(d, r)
	if r.err != nil {
		return nil, r.err
	}
	fr.Msg = msg
	return fr, nil
}

// VerifyMAC decodes a payload and checks its MAC; see Frame.VerifyMAC.
func (d *Dialect) VerifyMAC(payload []byte, v Verifier) error {
	fr, err := d.DecodeFields(payload)
	if err != nil {
		return err
	}
	return fr.VerifyMAC(v)
}

func (d *Dialect) newMessage(f *Fields) Message {
	code := ""
	if v := f.Get(60); len(v) >= 11 {
		code = v[8:11]
	}
	switch f.MTI {
	case "0200":
		return &Debit{}
	case "0210":
		return &DebitResponse{}
	case d.ReversalMTI, d.RepeatMTI:
		return &Reversal{}
	case responseMTI(d.ReversalMTI):
		return &ReversalResponse{}
	}
	switch {
	case f.MTI == d.SignOnMTI && code == d.SignOnCode:
		return &SignOn{}
	case f.MTI == responseMTI(d.SignOnMTI) && code == d.SignOnCode:
		return &SignOnResponse{}
	case f.MTI == d.EchoMTI && code == d.EchoCode:
		return &Echo{}
	case f.MTI == responseMTI(d.EchoMTI) && code == d.EchoCode:
		return &EchoResponse{}
	case f.MTI == d.SignOffMTI && code == d.SignOffCode:
		return &SignOff{}
	case f.MTI == responseMTI(d.SignOffMTI) && code == d.SignOffCode:
		return &SignOffResponse{}
	}
	return nil
}

// Pack encodes a message that carries no MAC (network management) into a payload:
// TPDU | header | MTI | bitmap | fields. Requests carry the dialect's TPDU, responses the
// swapped one. Messages that need a MAC are refused: use PackMACed.
func (d *Dialect) Pack(msg Message) ([]byte, error) {
	if msg.macRequired() {
		return nil, fmt.Errorf("%w: %s must be MACed", ErrNoMAC, msg.mti(d))
	}
	return d.pack(msg, nil)
}

// PackMACed encodes msg with F64: the bitmap announces bit 64, the MAB is MTI through the last
// field before F64, and F64 is what m returns for it (8 bytes).
func (d *Dialect) PackMACed(msg Message, m MACer) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: no MACer", ErrNoMAC)
	}
	return d.pack(msg, m)
}

func (d *Dialect) pack(msg Message, m MACer) ([]byte, error) {
	mti := msg.mti(d)
	im := iso8583.NewMessage(d.Spec)
	im.MTI(mti)
	w := &writer{m: im}
	msg.put(d, w)
	if m != nil {
		w.bin(64, make([]byte, 8))
	}
	if w.err != nil {
		return nil, fmt.Errorf("bank: pack %s: %w", mti, w.err)
	}
	body, err := im.Pack()
	if err != nil {
		return nil, fmt.Errorf("bank: pack %s: %w: %w", mti, ErrFormat, err)
	}
	tpdu := d.TPDU
	if mti[2]&1 == 1 {
		tpdu = tpdu.Swap()
	}
	out := make([]byte, 0, prefixLen+len(body))
	out = append(out, tpdu[:]...)
	out = append(out, d.Header[:]...)
	out = append(out, body...)
	if m != nil {
		mac, err := m.MAC(out[prefixLen : len(out)-8])
		if err != nil {
			return nil, fmt.Errorf("bank: MAC of %s: %w", mti, err)
		}
		if len(mac) != 8 {
			return nil, fmt.Errorf("bank: MAC of %s is %d bytes, F64 needs 8", mti, len(mac))
		}
		copy(out[len(out)-8:], mac)
	}
	return out, nil
}

// writer sets fields on a moov message and keeps the first error.
type writer struct {
	m   *iso8583.Message
	err error
}

func (w *writer) str(id int, s string) {
	if w.err == nil {
		if err := w.m.Field(id, s); err != nil {
			w.err = fmt.Errorf("%w: field %d: %w", ErrFormat, id, err)
		}
	}
}

// opt sets a conditional field only when it has a value.
func (w *writer) opt(id int, s string) {
	if s != "" {
		w.str(id, s)
	}
}

func (w *writer) bin(id int, b []byte) {
	if w.err == nil {
		if err := w.m.BinaryField(id, b); err != nil {
			w.err = fmt.Errorf("%w: field %d: %w", ErrFormat, id, err)
		}
	}
}

func (w *writer) optBin(id int, b []byte) {
	if len(b) > 0 {
		w.bin(id, b)
	}
}

// num writes a fixed-width number with its leading zeros.
func (w *writer) num(id int, v uint64, width int) {
	s := strconv.FormatUint(v, 10)
	if len(s) > width {
		if w.err == nil {
			w.err = fmt.Errorf("%w: field %d: %d has more than %d digits", ErrFormat, id, v, width)
		}
		return
	}
	for len(s) < width {
		s = "0" + s
	}
	w.str(id, s)
}

func (w *writer) amount(id int, fen int64) {
	if fen < 0 {
		if w.err == nil {
			w.err = fmt.Errorf("%w: field %d: negative amount", ErrFormat, id)
		}
		return
	}
	w.num(id, uint64(fen), 12)
}

// reader reads typed values from decoded fields and keeps the first error.
type reader struct {
	f   *Fields
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// expect checks the MTI is one of mtis.
func (r *reader) expect(mtis ...string) {
	for _, m := range mtis {
		if r.f.MTI == m {
			return
		}
	}
	r.fail(fmt.Errorf("%w: got %s, want %v", ErrMTI, r.f.MTI, mtis))
}

func (r *reader) str(id int) string {
	if !r.f.Has(id) {
		r.fail(fmt.Errorf("%w: %s field %d", ErrMissing, r.f.MTI, id))
		return ""
	}
	return r.f.Get(id)
}

func (r *reader) opt(id int) string { return r.f.Get(id) }

func (r *reader) bin(id int) []byte {
	if !r.f.Has(id) {
		r.fail(fmt.Errorf("%w: %s field %d", ErrMissing, r.f.MTI, id))
		return nil
	}
	return append([]byte(nil), r.f.Bytes(id)...)
}

// optBin returns nil for an absent or empty field: both pack as absent.
func (r *reader) optBin(id int) []byte {
	if len(r.f.Bytes(id)) == 0 {
		return nil
	}
	return append([]byte(nil), r.f.Bytes(id)...)
}

func (r *reader) num(id int) uint64 {
	s := r.str(id)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		r.fail(fmt.Errorf("%w: field %d: %w", ErrFormat, id, err))
	}
	return v
}

func (r *reader) amount(id int) int64 {
	v := r.num(id)
	if v > 999_999_999_999 {
		r.fail(fmt.Errorf("%w: field %d: amount too large", ErrFormat, id))
	}
	return int64(v)
}
