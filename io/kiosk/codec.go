package kiosk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/quancun/quancun/io/bcd"
	"github.com/quancun/quancun/io/crypt"
)

// Errors of the kiosk codec; check them with errors.Is.
var (
	// ErrFormat reports bytes that are not a message of this link, or a message whose fields
	// break the message table or a field layout. The FEP answers it with FormatError.
	ErrFormat = errors.New("kiosk: format error")
	// ErrVersion reports a header whose protocol version this code does not speak.
	ErrVersion = errors.New("kiosk: unsupported header version")
	// ErrMAC reports an F64 that does not verify. The FEP answers MACError, unsigned.
	ErrMAC = errors.New("kiosk: MAC does not verify")
	// ErrMACMissing reports a signed message without F64, or a response without F64 whose
	// code is not one that may be sent unsigned.
	ErrMACMissing = errors.New("kiosk: MAC missing")
	// ErrWrongKind reports an Unpack into a message type other than the one on the wire.
	ErrWrongKind = errors.New("kiosk: unexpected message kind")
)

// RequestMACer computes the MAC of a kiosk request: the PBOC 3DES MAC (ISO 9797-1 alg 3,
// 80-padding, zero IV, left 4 bytes) under the PSAM's MAC key, which is the MAC master key
// diversified once with the factor 00 00 || PSAM number. On a kiosk it is the PSAM itself
// (801A + 80FA); on the FEP the security module recomputes it. mab is unpadded: padding is
// the implementation's job, as the PSAM's caller pads.
type RequestMACer interface {
	RequestMAC(psam PSAMNo, mab []byte) ([4]byte, error)
}

// ResponseMACer computes the MAC of an FEP response: ANSI X9.19 (zero padding, 8 bytes)
// under the kiosk's MAK from its last sign-in. On the FEP it is the security module holding
// the MAK of terminal; on the kiosk, its PIN pad.
type ResponseMACer interface {
	ResponseMAC(terminal string, mab []byte) ([8]byte, error)
}

// PSAMNo is the 6-byte terminal number of the kiosk's PSAM (file 0016): the "terminal id"
// in the card's MAC1/MAC2/TAC and the factor of the kiosk's request MAC key.
type PSAMNo [6]byte

func (p PSAMNo) String() string { return strings.ToUpper(hex.EncodeToString(p[:])) }

// Factor is the 8-byte diversification factor of the PSAM's request MAC key: 00 00 || number.
func (p PSAMNo) Factor() []byte { return append([]byte{0, 0}, p[:]...) }

// HostTime is the platform's date and time as the card takes it: 7 bytes BCD YYYYMMDDhhmmss.
type HostTime [7]byte

// HostTimeOf packs t (in its own location) as a HostTime.
func HostTimeOf(t time.Time) HostTime {
	var h HostTime
	b, _ := bcd.LBCD.Encode([]byte(t.Format("20060102150405")))
	copy(h[:], b)
	return h
}

// Valid reports whether h is 14 BCD digits of a real date and time.
func (h HostTime) Valid() error {
	_, err := h.Time()
	return err
}

// Time parses h in UTC+8 (the card scheme's clock is China time).
func (h HostTime) Time() (time.Time, error) {
	d, _, err := bcd.LBCD.Decode(h[:], 14)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: host date/time %X: %v", ErrFormat, h[:], err)
	}
	t, err := time.ParseInLocation("20060102150405", string(d), time.FixedZone("CST", 8*3600))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: host date/time %s: %v", ErrFormat, d, err)
	}
	return t, nil
}

func (h HostTime) String() string { return strings.ToUpper(hex.EncodeToString(h[:])) }

// Header is the part before the MTI (spec 7.1): TPDU 60|dest NII|source NII, then the
// 6-byte application header 60|version|status:requirement|00 00 00.
type Header struct {
	Dest, Src uint16 // TPDU network addresses; a response swaps them (Reply)
	Status    byte   // terminal status nibble, kiosk to FEP: 0 normal, 1 test
	Require   byte   // processing requirement nibble, FEP to kiosk: 0 none, 3 sign in again
}

// Reply returns the header of the response to a request that arrived with h.
func (h Header) Reply() Header { return Header{Dest: h.Src, Src: h.Dest} }

// Protocol constants of the header.
const (
	tpduID     = 0x60
	appType    = 0x60
	version    = 0x01
	headerSize = 11
	macSize    = 8
)

func (h Header) append(b []byte) []byte {
	return append(b, tpduID, byte(h.Dest>>8), byte(h.Dest), byte(h.Src>>8), byte(h.Src),
		appType, version, h.Status<<4|h.Require&0x0F, 0, 0, 0)
}

func parseHeader(b []byte) (Header, error) {
	if len(b) < headerSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrFormat, len(b))
	}
	if b[0] != tpduID || b[5] != appType {
		return Header{}, fmt.Errorf("%w: TPDU id %02X / application type %02X", ErrFormat, b[0], b[5])
	}
	if b[6] != version {
		return Header{}, fmt.Errorf("%w: %02X", ErrVersion, b[6])
	}
	if b[7]>>4 > 9 || b[7]&0x0F > 9 || b[8] != 0 || b[9] != 0 || b[10] != 0 {
		return Header{}, fmt.Errorf("%w: header %X", ErrFormat, b[5:11])
	}
	return Header{
		Dest: uint16(b[1])<<8 | uint16(b[2]), Src: uint16(b[3])<<8 | uint16(b[4]),
		Status: b[7] >> 4, Require: b[7] & 0x0F,
	}, nil
}

// Envelope holds the fields every message of the link carries.
type Envelope struct {
	Header   Header
	Trace    string // F11: kiosk trace number, 6 digits; a response echoes its request's
	Date     string // F13: YYYYMMDD; the kiosk's clock in requests, the FEP's in responses
	Time     string // F12: hhmmss, as Date
	Terminal string // F41: kiosk terminal id, 8 characters
	PSAM     PSAMNo // F42
	Batch    uint32 // 60.2: batch from the last sign-in (0 in a first SIGN-IN); 0-999999
}

// Reply holds what every response adds.
type Reply struct {
	Result Code   // F39
	Text   string // F56: reason for the operator (UTF-8), optional
}

func (r Reply) encode(w *wire) error {
	if len(r.Result) != 2 {
		return fmt.Errorf("%w: response code %q", ErrFormat, string(r.Result))
	}
	w.str(fResult, string(r.Result))
	w.str(fText, r.Text)
	return nil
}

func (r *Reply) decode(w *wire) {
	r.Result = Code(w.get(fResult))
	r.Text = w.get(fText)
}

// wire is one moov message under construction or just unpacked.
type wire struct {
	m    *iso8583.Message
	kind kindSpec
}

func (w *wire) str(id int, v string) {
	if v != "" {
		_ = w.m.Field(id, v) // setting a String never fails; packing validates
	}
}

func (w *wire) bin(id int, v []byte) {
	if v != nil {
		_ = w.m.BinaryField(id, v)
	}
}

func (w *wire) has(id int) bool { return w.m.GetField(id) != nil }

func (w *wire) get(id int) string {
	s, _ := w.m.GetString(id)
	return s
}

func (w *wire) getBin(id int) []byte {
	b, _ := w.m.GetBytes(id)
	return b
}

func (w *wire) amount(v int64) error {
	if v <= 0 || v > 999999999999 {
		return fmt.Errorf("%w: amount %d fen", ErrFormat, v)
	}
	w.str(fAmount, fmt.Sprintf("%012d", v))
	return nil
}

func (w *wire) getAmount() (int64, error) {
	v, err := strconv.ParseInt(w.get(fAmount), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: amount: %v", ErrFormat, err)
	}
	return v, nil
}

func (w *wire) ref(r string) error {
	if err := checkRef(r); err != nil {
		return err
	}
	w.str(fReference, r)
	return nil
}

func (e *Envelope) encode(w *wire) error {
	if len(e.Terminal) != 8 {
		return fmt.Errorf("%w: terminal id %q must be 8 characters", ErrFormat, e.Terminal)
	}
	if e.Batch > 999999 {
		return fmt.Errorf("%w: batch %d", ErrFormat, e.Batch)
	}
	net := w.kind.Net
	if net == "" {
		net = "000"
	}
	w.m.MTI(w.kind.MTI)
	w.str(fProc, w.kind.Proc)
	w.str(fTrace, e.Trace)
	w.str(fTime, e.Time)
	w.str(fDate, e.Date)
	w.str(fTerminal, e.Terminal)
	w.bin(fPSAM, e.PSAM[:])
	w.str(fReserved60, fmt.Sprintf("00%06d%s", e.Batch, net))
	return nil
}

func (e *Envelope) decode(w *wire, h Header) {
	e.Header = h
	e.Trace, e.Time, e.Date, e.Terminal = w.get(fTrace), w.get(fTime), w.get(fDate), w.get(fTerminal)
	copy(e.PSAM[:], w.getBin(fPSAM))
	b, _ := strconv.ParseUint(w.get(fReserved60)[2:8], 10, 32) // length checked by identify
	e.Batch = uint32(b)
}

// message is what every typed message implements.
type message interface {
	Kind() Kind
	envelope() *Envelope
	encode(w *wire) error
	decode(w *wire) error
}

// pack builds the message and, when sign is not nil, fills F64 with sign(MAB) where MAB is
// the message from the MTI up to the end of the field before F64 (bitmap bit 64 set).
func pack(m message, sign func(mab []byte) ([]byte, error)) ([]byte, error) {
	ks, ok := m.Kind().spec()
	if !ok {
		return nil, fmt.Errorf("%w: kind %d", ErrFormat, m.Kind())
	}
	w := &wire{m: iso8583.NewMessage(linkSpec), kind: ks}
	if err := m.envelope().encode(w); err != nil {
		return nil, fmt.Errorf("pack %s: %w", ks.Name, err)
	}
	if err := m.encode(w); err != nil {
		return nil, fmt.Errorf("pack %s: %w", ks.Name, err)
	}
	if sign != nil {
		w.bin(fMAC, make([]byte, macSize))
	}
	if err := w.checkPresence(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", ks.Name, err)
	}
	body, err := w.m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w: %v", ks.Name, ErrFormat, err)
	}
	out := m.envelope().Header.append(make([]byte, 0, headerSize+len(body)))
	out = append(out, body...)
	if sign != nil {
		mac, err := sign(out[headerSize : len(out)-macSize])
		if err != nil {
			return nil, fmt.Errorf("pack %s: MAC: %w", ks.Name, err)
		}
		copy(out[len(out)-macSize:], mac)
	}
	return out, nil
}

// checkPresence holds a message to its row of the message table.
func (w *wire) checkPresence() error {
	for id := range w.m.GetFields() {
		if id < 2 {
			continue
		}
		if !slices.Contains(w.kind.Mandatory, id) && !slices.Contains(w.kind.Conditional, id) {
			return fmt.Errorf("%w: %s does not carry field %d", ErrFormat, w.kind.Name, id)
		}
	}
	for _, id := range w.kind.Mandatory {
		if id == fMAC && !w.kind.Request {
			continue
		}
		if !w.has(id) {
			return fmt.Errorf("%w: %s without mandatory field %d", ErrFormat, w.kind.Name, id)
		}
	}
	return nil
}

// decoded is one unpacked message before it is given a Go type.
type decoded struct {
	hdr Header
	w   *wire
	mab []byte // nil when there is no F64
	mac []byte
}

// decode unpacks and identifies b. The moov unpacker is third-party code fed by the network;
// a panic inside it is turned into ErrFormat so one bad frame cannot stop the FEP.
func decode(b []byte) (d *decoded, err error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	m := iso8583.NewMessage(linkSpec)
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: unpack panicked: %v", ErrFormat, r)
			}
		}()
		if uerr := m.Unpack(b[headerSize:]); uerr != nil {
			err = fmt.Errorf("%w: %v", ErrFormat, uerr)
		}
	}()
	if err != nil {
		return nil, err
	}
	w := &wire{m: m}
	if w.kind, err = identify(w); err != nil {
		return nil, err
	}
	if err := w.checkPresence(); err != nil {
		return nil, err
	}
	d = &decoded{hdr: h, w: w}
	if w.has(fMAC) {
		d.mac = w.getBin(fMAC)
		if !bytes.Equal(d.mac, b[len(b)-macSize:]) {
			return nil, fmt.Errorf("%w: bytes after field 64", ErrFormat)
		}
		d.mab = b[headerSize : len(b)-macSize]
	} else {
		// No F64 to anchor the end: repack to refuse trailing bytes. Only unsigned
		// responses take this path, so its cost does not matter.
		again, perr := m.Pack()
		if perr != nil || !bytes.Equal(again, b[headerSize:]) {
			return nil, fmt.Errorf("%w: trailing or non-canonical bytes", ErrFormat)
		}
	}
	return d, nil
}

func identify(w *wire) (kindSpec, error) {
	mti, _ := w.m.GetMTI()
	f60 := w.get(fReserved60)
	if len(f60) != 11 {
		return kindSpec{}, fmt.Errorf("%w: MTI %s: field 60 %q is not 11 digits", ErrFormat, mti, f60)
	}
	proc, net := w.get(fProc), f60[8:]
	for _, k := range kindTable {
		if k.MTI != mti {
			continue
		}
		if (k.Proc != "" && k.Proc == proc && net == "000") || (k.Net != "" && k.Net == net && proc == "") {
			return k, nil
		}
	}
	return kindSpec{}, fmt.Errorf("%w: no message MTI %s, F3 %q, 60.3 %q", ErrFormat, mti, proc, net)
}

// into decodes d into m, which must be of the kind on the wire.
func (d *decoded) into(m message) error {
	if m.Kind() != d.w.kind.Kind {
		return fmt.Errorf("%w: %s on the wire, want %s", ErrWrongKind, d.w.kind.Name, m.Kind())
	}
	m.envelope().decode(d.w, d.hdr)
	if err := m.decode(d.w); err != nil {
		return fmt.Errorf("unpack %s: %w", d.w.kind.Name, err)
	}
	return nil
}

func unpackInto(b []byte, m message) error {
	d, err := decode(b)
	if err != nil {
		return err
	}
	return d.into(m)
}

func (d *decoded) verifyRequest(v RequestMACer) error {
	if d.mac == nil {
		return ErrMACMissing
	}
	var psam PSAMNo
	copy(psam[:], d.w.getBin(fPSAM))
	mac, err := v.RequestMAC(psam, d.mab)
	if err != nil {
		return fmt.Errorf("kiosk: request MAC of PSAM %s: %w", psam, err)
	}
	want := append(mac[:], 0, 0, 0, 0)
	if !crypt.Equal(want, d.mac) {
		return fmt.Errorf("%w: %s from PSAM %s", ErrMAC, d.w.kind.Name, psam)
	}
	return nil
}

func (d *decoded) verifyResponse(v ResponseMACer) error {
	if d.mac == nil {
		info, ok := Code(d.w.get(fResult)).Info()
		if ok && info.Unsigned {
			return nil
		}
		return fmt.Errorf("%w: %s with code %q", ErrMACMissing, d.w.kind.Name, d.w.get(fResult))
	}
	term := d.w.get(fTerminal)
	mac, err := v.ResponseMAC(term, d.mab)
	if err != nil {
		return fmt.Errorf("kiosk: response MAC for terminal %s: %w", term, err)
	}
	if !crypt.Equal(mac[:], d.mac) {
		return fmt.Errorf("%w: %s to terminal %s", ErrMAC, d.w.kind.Name, term)
	}
	return nil
}

func requestSigner(psam PSAMNo, s RequestMACer) func([]byte) ([]byte, error) {
	return func(mab []byte) ([]byte, error) {
		if s == nil {
			return nil, ErrMACMissing
		}
		mac, err := s.RequestMAC(psam, mab)
		if err != nil {
			return nil, err
		}
		return append(mac[:], 0, 0, 0, 0), nil
	}
}

// responseSigner signs with s; a nil s leaves F64 out, which only the codes marked Unsigned
// allow.
func responseSigner(e *Envelope, r Reply, s ResponseMACer) (func([]byte) ([]byte, error), error) {
	if s == nil {
		if info, ok := r.Result.Info(); ok && info.Unsigned {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: code %q must be signed", ErrMACMissing, string(r.Result))
	}
	term := e.Terminal
	return func(mab []byte) ([]byte, error) {
		mac, err := s.ResponseMAC(term, mab)
		return mac[:], err
	}, nil
}

// Request is a message from a kiosk.
type Request interface {
	Kind() Kind
	Pack(s RequestMACer) ([]byte, error)
}

// EnvelopeOf returns the envelope (header, trace, date and time, terminal, PSAM, batch) of
// any request or response of this package, nil for anything else: links address answers
// and log lines by it without a type switch of their own.
func EnvelopeOf(m interface{ Kind() Kind }) *Envelope {
	if e, ok := m.(message); ok {
		return e.envelope()
	}
	return nil
}

// Response is a message from the FEP.
type Response interface {
	Kind() Kind
	Pack(s ResponseMACer) ([]byte, error)
}

// ReadRequest unpacks a kiosk request of any kind and verifies its MAC with v. On ErrMAC
// the decoded request is returned too, so the FEP can address its MACError response.
func ReadRequest(b []byte, v RequestMACer) (Request, error) {
	d, err := decode(b)
	if err != nil {
		return nil, err
	}
	if !d.w.kind.Request {
		return nil, fmt.Errorf("%w: %s is not a request", ErrWrongKind, d.w.kind.Name)
	}
	m := newMessage(d.w.kind.Kind)
	if err := d.into(m); err != nil {
		return nil, err
	}
	return m.(Request), d.verifyRequest(v)
}

// ReadResponse unpacks an FEP response of any kind and verifies its MAC with v. A response
// the FEP may send unsigned (CodeInfo.Unsigned) passes without F64; it is never an approval.
// A SIGN-IN RESPONSE is signed with the MAK it delivers: unpack it with
// (*SignInResponse).Unpack, install the keys, then call VerifyResponse.
func ReadResponse(b []byte, v ResponseMACer) (Response, error) {
	d, err := decode(b)
	if err != nil {
		return nil, err
	}
	if d.w.kind.Request {
		return nil, fmt.Errorf("%w: %s is not a response", ErrWrongKind, d.w.kind.Name)
	}
	m := newMessage(d.w.kind.Kind)
	if err := d.into(m); err != nil {
		return nil, err
	}
	return m.(Response), d.verifyResponse(v)
}

// VerifyRequest checks the PSAM MAC of a packed request.
func VerifyRequest(b []byte, v RequestMACer) error {
	d, err := decode(b)
	if err != nil {
		return err
	}
	return d.verifyRequest(v)
}

// VerifyResponse checks the MAK MAC of a packed response.
func VerifyResponse(b []byte, v ResponseMACer) error {
	d, err := decode(b)
	if err != nil {
		return err
	}
	return d.verifyResponse(v)
}

// Identify reports which message b is without checking its MAC.
func Identify(b []byte) (Kind, error) {
	d, err := decode(b)
	if err != nil {
		return 0, err
	}
	return d.w.kind.Kind, nil
}

func checkRef(r string) error {
	if len(r) != 20 {
		return fmt.Errorf("%w: reference %q must be 20 digits", ErrFormat, r)
	}
	for i := 0; i < len(r); i++ {
		if r[i] < '0' || r[i] > '9' {
			return fmt.Errorf("%w: reference %q must be 20 digits", ErrFormat, r)
		}
	}
	return nil
}

func packRef(r string) ([]byte, error) {
	if err := checkRef(r); err != nil {
		return nil, err
	}
	return bcd.LBCD.Encode([]byte(r))
}

func unpackRef(b []byte) (string, error) {
	d, _, err := bcd.LBCD.Decode(b, 20)
	if err != nil {
		return "", fmt.Errorf("%w: reference: %v", ErrFormat, err)
	}
	return string(d), nil
}

// MaskPAN keeps the first 6 and last 4 digits, as every log of the switch does.
func MaskPAN(pan string) string {
	if len(pan) < 11 {
		return strings.Repeat("*", len(pan))
	}
	return pan[:6] + strings.Repeat("*", len(pan)-10) + pan[len(pan)-4:]
}
