package platform

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quancun/quancun/io/crypt"
)

// Errors of the platform codec; check them with errors.Is.
var (
	// ErrFormat reports bytes that are not a message of this format or break its tables.
	ErrFormat = errors.New("platform: format error")
	// ErrVersion reports a header version this code does not speak (answer VersionRefused).
	ErrVersion = errors.New("platform: unsupported version")
	// ErrMAC reports a MAC that does not verify under the key given.
	ErrMAC = errors.New("platform: MAC does not verify")
	// ErrMACMissing reports an all-zero MAC on a message that must be signed.
	ErrMACMissing = errors.New("platform: MAC missing")
)

// Layout constants. The header is fixed so a receiver can pick the key (by type and batch)
// before it reads the body; the MAC is last so it covers everything before it.
const (
	Version    = 1
	headerSize = 21
	macSize    = 8
	magic0     = 'Q'
	magic1     = 'P'
)

// MACer computes the 8-byte ANSI X9.19 MAC (zero padding) of data under one key: the
// sign-in key for SIGN-IN and its response, the current dynamic key for everything else.
// On the FEP it is the security module; the platform peer may use SoftMAC.
type MACer interface {
	MAC(data []byte) ([8]byte, error)
}

// Type is the message type byte; a response is its request's type with bit 7 set.
type Type uint8

// The message types.
const (
	TypeSignIn        Type = 0x01
	TypeSignOut       Type = 0x02
	TypeHeartbeat     Type = 0x03
	TypeCardCheck     Type = 0x10
	TypeBook          Type = 0x11
	TypeConfirm       Type = 0x12
	TypePendingQuery  Type = 0x13
	TypeRewrite       Type = 0x14
	TypeResolve       Type = 0x15
	responseBit       Type = 0x80
	TypeSignInResp         = TypeSignIn | responseBit
	TypeSignOutResp        = TypeSignOut | responseBit
	TypeHeartbeatResp      = TypeHeartbeat | responseBit
	TypeCardCheckResp      = TypeCardCheck | responseBit
	TypeBookResp           = TypeBook | responseBit
	TypeConfirmResp        = TypeConfirm | responseBit
	TypePendingResp        = TypePendingQuery | responseBit
	TypeRewriteResp        = TypeRewrite | responseBit
	TypeResolveResp        = TypeResolve | responseBit
)

// IsResponse reports whether t is a response type.
func (t Type) IsResponse() bool { return t&responseBit != 0 }

// Response returns the response type of request type t.
func (t Type) Response() Type { return t | responseBit }

func (t Type) String() string {
	if s, ok := t.schema(); ok {
		return s.Name
	}
	return fmt.Sprintf("Type(%#02x)", uint8(t))
}

// HostTime is a date and time as 7 bytes BCD YYYYMMDDhhmmss (China time): the platform's
// clock in MAC2 and in headers.
type HostTime [7]byte

// HostTimeOf packs t.
func HostTimeOf(t time.Time) HostTime {
	var h HostTime
	s := t.Format("20060102150405")
	for i := range h {
		h[i] = (s[2*i]-'0')<<4 | (s[2*i+1] - '0')
	}
	return h
}

// Time parses h in UTC+8.
func (h HostTime) Time() (time.Time, error) {
	var s [14]byte
	for i, b := range h {
		if b>>4 > 9 || b&0x0F > 9 {
			return time.Time{}, fmt.Errorf("%w: date/time %X is not BCD", ErrFormat, h[:])
		}
		s[2*i], s[2*i+1] = '0'+b>>4, '0'+b&0x0F
	}
	t, err := time.ParseInLocation("20060102150405", string(s[:]), time.FixedZone("CST", 8*3600))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date/time %s: %v", ErrFormat, s[:], err)
	}
	return t, nil
}

func (h HostTime) String() string { return strings.ToUpper(hex.EncodeToString(h[:])) }

// Header is the fixed 21-byte head of every message.
type Header struct {
	Type   Type
	Result Code     // "00" in requests; the result in responses
	Seq    uint32   // chosen by the FEP per request, echoed by the response
	Batch  uint32   // current batch; 0 in SIGN-IN; the new batch in SIGN-IN RESPONSE
	Time   HostTime // sender's clock
}

func (h Header) append(b []byte) []byte {
	b = append(b, magic0, magic1, Version, byte(h.Type), h.Result[0], h.Result[1])
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	b = binary.BigEndian.AppendUint32(b, h.Batch)
	return append(b, h.Time[:]...)
}

// PeekHeader reads the header only, so a receiver can choose the MAC key (SIGN-IN key or
// the dynamic key of Batch) and refuse a stale batch before unpacking the body.
func PeekHeader(b []byte) (Header, error) {
	if len(b) < headerSize+macSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than header and MAC", ErrFormat, len(b))
	}
	if b[0] != magic0 || b[1] != magic1 {
		return Header{}, fmt.Errorf("%w: magic %X", ErrFormat, b[:2])
	}
	if b[2] != Version {
		return Header{}, fmt.Errorf("%w: %d", ErrVersion, b[2])
	}
	h := Header{Type: Type(b[3]), Result: Code(b[4:6]),
		Seq: binary.BigEndian.Uint32(b[6:10]), Batch: binary.BigEndian.Uint32(b[10:14])}
	copy(h.Time[:], b[14:21])
	if _, ok := h.Type.schema(); !ok {
		return Header{}, fmt.Errorf("%w: message type %#02x", ErrFormat, b[3])
	}
	if !validCode(h.Result) {
		return Header{}, fmt.Errorf("%w: result %q", ErrFormat, b[4:6])
	}
	if !h.Type.IsResponse() && h.Result != OK {
		return Header{}, fmt.Errorf("%w: request with result %q", ErrFormat, string(h.Result))
	}
	if _, err := h.Time.Time(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// Tag names a body field. Body fields are TLV: tag 1 byte, length 1 byte, value.
type Tag uint8

// kind is how a tag's value is encoded and checked.
type kind int

const (
	kDigits kind = iota + 1 // ASCII decimal digits
	kText                   // printable ASCII 0x20-0x7E
	kUTF8                   // UTF-8 text
	kBin                    // bytes
	kUint                   // unsigned big-endian integer of exactly Min bytes
	kTime                   // HostTime, 7 bytes BCD
	kStatus                 // one ASCII letter of a fixed set
	kRecord                 // fixed layout (pendingLayout)
)

// tagSpec is one row of the tag dictionary (docs/protocols/platform.md section 4).
type tagSpec struct {
	Tag      Tag
	Name     string
	Kind     kind
	Min, Max int
	Desc     string
	letters  string // kStatus: allowed letters
}

// The body tags.
const (
	tAuthCode      Tag = 0x01
	tKeyBlock      Tag = 0x02
	tKeyCheck      Tag = 0x03
	tAppSerial     Tag = 0x10
	tCity          Tag = 0x11
	tCardType      Tag = 0x12
	tKeyIndex      Tag = 0x13
	tOldBalance    Tag = 0x14
	tSerial        Tag = 0x15
	tKeyVersion    Tag = 0x16
	tAlgID         Tag = 0x17
	tRandom        Tag = 0x18
	tMAC1          Tag = 0x19
	tAmount        Tag = 0x1A
	tTermID        Tag = 0x1B
	tBankCode      Tag = 0x1C
	tKioskTerminal Tag = 0x1D
	tKioskTrace    Tag = 0x1E
	tKioskDate     Tag = 0x1F
	tReference     Tag = 0x20
	tBankRRN       Tag = 0x21
	tBankAuth      Tag = 0x22
	tSettleDate    Tag = 0x23
	tMAC2          Tag = 0x24
	tHostTime      Tag = 0x25
	tWriteStatus   Tag = 0x26
	tTAC           Tag = 0x27
	tNewBalance    Tag = 0x28
	tObservedSer   Tag = 0x29
	tMethod        Tag = 0x2A
	tProveMAC2     Tag = 0x2B
	tProveTAC      Tag = 0x2C
	tLogRecord     Tag = 0x2D
	tApplied       Tag = 0x2E
	tPending       Tag = 0x30
	tText          Tag = 0x40
)

// tagTable is the tag dictionary. Read-only after initialisation.
var tagTable = [...]tagSpec{
	{tAuthCode, "auth code", kText, 20, 20, "authorisation code the platform assigned to this FEP", ""},
	{tKeyBlock, "dynamic key block", kBin, 16, 16, "3DES-ECB of the 16-byte dynamic key under the long-term key", ""},
	{tKeyCheck, "dynamic key check value", kBin, 4, 4, "left 4 bytes of 3DES_DK(00..00)", ""},
	{tAppSerial, "card app serial", kBin, 8, 8, "application serial number, file 0015 offset 12", ""},
	{tCity, "card city code", kBin, 2, 2, "file 0015 offset 2", ""},
	{tCardType, "card type", kUint, 1, 1, "file 0015 offset 28", ""},
	{tKeyIndex, "DLK key index", kUint, 1, 1, "key index sent in INITIALIZE FOR LOAD", ""},
	{tOldBalance, "old balance", kUint, 4, 4, "fen, from INITIALIZE FOR LOAD", ""},
	{tSerial, "online serial", kUint, 2, 2, "from INITIALIZE FOR LOAD, before increment", ""},
	{tKeyVersion, "key version", kUint, 1, 1, "from INITIALIZE FOR LOAD", ""},
	{tAlgID, "algorithm id", kUint, 1, 1, "from INITIALIZE FOR LOAD", ""},
	{tRandom, "card random", kBin, 4, 4, "from INITIALIZE FOR LOAD", ""},
	{tMAC1, "MAC1", kBin, 4, 4, "from INITIALIZE FOR LOAD", ""},
	{tAmount, "amount", kUint, 4, 4, "fen, as sent in INITIALIZE FOR LOAD", ""},
	{tTermID, "terminal number", kBin, 6, 6, "PSAM number sent in INITIALIZE FOR LOAD (covered by MAC1/MAC2/TAC)", ""},
	{tBankCode, "bank code", kText, 10, 10, "the platform's 10-character code of the paying bank", ""},
	{tKioskTerminal, "kiosk terminal id", kText, 8, 8, "kiosk F41", ""},
	{tKioskTrace, "kiosk trace", kDigits, 6, 6, "kiosk F11", ""},
	{tKioskDate, "kiosk date", kDigits, 8, 8, "kiosk F13, YYYYMMDD", ""},
	{tReference, "reference number", kDigits, 20, 20, "the platform's transaction reference number", ""},
	{tBankRRN, "bank RRN", kText, 12, 12, "bank F37", ""},
	{tBankAuth, "bank auth code", kText, 1, 6, "bank F38", ""},
	{tSettleDate, "bank settlement date", kDigits, 8, 8, "YYYYMMDD from bank F15 (the FEP adds the year)", ""},
	{tMAC2, "MAC2", kBin, 4, 4, "for CREDIT FOR LOAD", ""},
	{tHostTime, "host date/time", kTime, 7, 7, "BCD YYYYMMDDhhmmss covered by MAC2", ""},
	{tWriteStatus, "write status", kStatus, 1, 1, "S written, F failed, U unknown", "SFU"},
	{tTAC, "TAC", kBin, 4, 4, "from CREDIT FOR LOAD", ""},
	{tNewBalance, "new balance", kUint, 4, 4, "fen, card balance after the credit", ""},
	{tObservedSer, "observed serial", kUint, 2, 2, "S' from a fresh INITIALIZE FOR LOAD", ""},
	{tMethod, "evidence method", kStatus, 1, 1, "P 805A prove, L 0018 record, N none", "PLN"},
	{tProveMAC2, "MAC2 from 805A", kBin, 4, 4, "first half of GET TRANSACTION PROVE", ""},
	{tProveTAC, "TAC from 805A", kBin, 4, 4, "second half of GET TRANSACTION PROVE", ""},
	{tLogRecord, "0018 record", kBin, 23, 23, "card log record with the load's serial", ""},
	{tApplied, "applied", kStatus, 1, 1, "Y the load is on the card (closed S), N it is not (re-write)", "YN"},
	{tPending, "pending load", kRecord, 48, 48, "one booked load with write status F or U (layout in section 4.2)", ""},
	{tText, "text", kUTF8, 1, 200, "reason for the operator", ""},
}

func (t Tag) spec() (tagSpec, bool) {
	for _, s := range tagTable {
		if s.Tag == t {
			return s, true
		}
	}
	return tagSpec{}, false
}

// Presence of a tag in a message.
type presence byte

const (
	mandatory   presence = 'M'
	conditional presence = 'C' // the message's doc says when
	optional    presence = 'O'
	repeated    presence = 'R' // zero or more
)

type rule struct {
	Tag Tag
	P   presence
}

// schema is one row of the message table: which tags a message carries and how.
type schema struct {
	Type  Type
	Name  string
	Rules []rule
}

var cardInit = []rule{
	{tAppSerial, mandatory}, {tCity, optional}, {tCardType, optional}, {tKeyIndex, mandatory},
	{tOldBalance, mandatory}, {tSerial, mandatory}, {tKeyVersion, mandatory}, {tAlgID, mandatory},
	{tRandom, mandatory}, {tMAC1, mandatory}, {tAmount, mandatory}, {tTermID, mandatory},
}

var kioskRef = []rule{{tKioskTerminal, mandatory}, {tKioskTrace, mandatory}, {tKioskDate, mandatory}}

// schemaTable is the message table (docs/protocols/platform.md section 5). Read-only.
var schemaTable = [...]schema{
	{TypeSignIn, "SIGN-IN", []rule{{tAuthCode, mandatory}}},
	{TypeSignInResp, "SIGN-IN RESPONSE", []rule{{tKeyBlock, conditional}, {tKeyCheck, conditional}, {tText, optional}}},
	{TypeSignOut, "SIGN-OUT", nil},
	{TypeSignOutResp, "SIGN-OUT RESPONSE", []rule{{tText, optional}}},
	{TypeHeartbeat, "HEARTBEAT", nil},
	{TypeHeartbeatResp, "HEARTBEAT RESPONSE", []rule{{tText, optional}}},
	{TypeCardCheck, "CARD CHECK", concat(cardInit, []rule{{tBankCode, mandatory}}, kioskRef)},
	{TypeCardCheckResp, "CARD CHECK RESPONSE", []rule{{tReference, conditional}, {tText, optional}}},
	{TypeBook, "BOOK", []rule{{tReference, mandatory}, {tAmount, mandatory}, {tBankRRN, mandatory},
		{tBankAuth, optional}, {tSettleDate, mandatory}}},
	{TypeBookResp, "BOOK RESPONSE", []rule{{tReference, mandatory}, {tMAC2, conditional}, {tHostTime, conditional}, {tText, optional}}},
	{TypeConfirm, "CONFIRM", []rule{{tReference, mandatory}, {tWriteStatus, mandatory}, {tTAC, conditional}, {tNewBalance, optional}}},
	{TypeConfirmResp, "CONFIRM RESPONSE", []rule{{tReference, mandatory}, {tText, optional}}},
	{TypePendingQuery, "PENDING QUERY", []rule{{tAppSerial, mandatory}}},
	{TypePendingResp, "PENDING RESPONSE", []rule{{tAppSerial, mandatory}, {tPending, repeated}, {tText, optional}}},
	{TypeRewrite, "REWRITE", concat([]rule{{tReference, mandatory}}, cardInit, kioskRef)},
	{TypeRewriteResp, "REWRITE RESPONSE", []rule{{tReference, mandatory}, {tMAC2, conditional}, {tHostTime, conditional}, {tText, optional}}},
	{TypeResolve, "RESOLVE-U", []rule{{tReference, mandatory}, {tAppSerial, mandatory}, {tObservedSer, mandatory},
		{tMethod, mandatory}, {tProveMAC2, conditional}, {tProveTAC, conditional}, {tLogRecord, conditional}}},
	{TypeResolveResp, "RESOLVE-U RESPONSE", []rule{{tReference, mandatory}, {tApplied, conditional}, {tText, optional}}},
}

func concat(parts ...[]rule) []rule {
	var out []rule
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func (t Type) schema() (schema, bool) {
	for _, s := range schemaTable {
		if s.Type == t {
			return s, true
		}
	}
	return schema{}, false
}

// tlv is one body field as read.
type tlv struct {
	tag Tag
	val []byte
}

// body collects a message's fields for packing, or holds them after unpacking.
type body struct {
	fields []tlv
}

func (b *body) put(t Tag, v []byte) { b.fields = append(b.fields, tlv{t, v}) }

func (b *body) putStr(t Tag, s string) {
	if s != "" {
		b.put(t, []byte(s))
	}
}
func (b *body) putU8(t Tag, v uint8)   { b.put(t, []byte{v}) }
func (b *body) putU16(t Tag, v uint16) { b.put(t, binary.BigEndian.AppendUint16(nil, v)) }
func (b *body) putU32(t Tag, v uint32) { b.put(t, binary.BigEndian.AppendUint32(nil, v)) }

func (b *body) get(t Tag) []byte {
	for _, f := range b.fields {
		if f.tag == t {
			return f.val
		}
	}
	return nil
}

func (b *body) has(t Tag) bool   { return b.get(t) != nil }
func (b *body) str(t Tag) string { return string(b.get(t)) }
func (b *body) u8(t Tag) uint8 {
	if v := b.get(t); len(v) == 1 {
		return v[0]
	}
	return 0
}
func (b *body) u16(t Tag) uint16 {
	if v := b.get(t); len(v) == 2 {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}
func (b *body) u32(t Tag) uint32 {
	if v := b.get(t); len(v) == 4 {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}
func (b *body) copyTo(t Tag, dst []byte) { copy(dst, b.get(t)) }

// check holds a body to its schema and every value to its tag's kind and length.
func (b *body) check(s schema) error {
	count := map[Tag]int{}
	for _, f := range b.fields {
		ts, ok := f.tag.spec()
		if !ok {
			return fmt.Errorf("%w: %s: unknown tag %#02x", ErrFormat, s.Name, uint8(f.tag))
		}
		r, ok := s.rule(f.tag)
		if !ok {
			return fmt.Errorf("%w: %s does not carry %s", ErrFormat, s.Name, ts.Name)
		}
		if count[f.tag]++; count[f.tag] > 1 && r.P != repeated {
			return fmt.Errorf("%w: %s: %s twice", ErrFormat, s.Name, ts.Name)
		}
		if err := ts.valid(f.val); err != nil {
			return fmt.Errorf("%w: %s: %s: %v", ErrFormat, s.Name, ts.Name, err)
		}
	}
	for _, r := range s.Rules {
		if r.P == mandatory && count[r.Tag] == 0 {
			ts, _ := r.Tag.spec()
			return fmt.Errorf("%w: %s without %s", ErrFormat, s.Name, ts.Name)
		}
	}
	return nil
}

func (s schema) rule(t Tag) (rule, bool) {
	for _, r := range s.Rules {
		if r.Tag == t {
			return r, true
		}
	}
	return rule{}, false
}

func (ts tagSpec) valid(v []byte) error {
	if len(v) < ts.Min || len(v) > ts.Max {
		return fmt.Errorf("length %d, want %d..%d", len(v), ts.Min, ts.Max)
	}
	switch ts.Kind {
	case kDigits:
		for _, c := range v {
			if c < '0' || c > '9' {
				return errors.New("not digits")
			}
		}
	case kText:
		for _, c := range v {
			if c < 0x20 || c > 0x7E {
				return errors.New("not printable ASCII")
			}
		}
	case kUTF8:
		if !utf8.Valid(v) {
			return errors.New("not UTF-8")
		}
	case kTime:
		var h HostTime
		copy(h[:], v)
		if _, err := h.Time(); err != nil {
			return err
		}
	case kStatus:
		if !strings.ContainsRune(ts.letters, rune(v[0])) {
			return fmt.Errorf("%q is not one of %s", v[0], ts.letters)
		}
	case kRecord:
		var p Pending
		return p.unmarshal(v)
	}
	return nil
}

func (b *body) append(dst []byte) []byte {
	for _, f := range b.fields {
		dst = append(dst, byte(f.tag), byte(len(f.val)))
		dst = append(dst, f.val...)
	}
	return dst
}

func parseBody(b []byte) (*body, error) {
	out := &body{}
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return nil, fmt.Errorf("%w: TLV cut short", ErrFormat)
		}
		n := int(b[1])
		out.fields = append(out.fields, tlv{Tag(b[0]), b[2 : 2+n]})
		b = b[2+n:]
	}
	return out, nil
}

// SoftMAC is an X9.19 MACer over a clear 16-byte key, for the platform peer and tests; the
// FEP computes the same inside its security module.
type SoftMAC []byte

// MAC implements MACer.
func (k SoftMAC) MAC(data []byte) ([8]byte, error) {
	var out [8]byte
	m, err := crypt.X919(k, data)
	copy(out[:], m)
	return out, err
}

// SignInFactor diversifies the long-term key into the key that MACs SIGN-IN and its
// response, so the long-term key itself only ever encrypts (the dynamic key).
var signInFactor = [8]byte{'Q', 'C', 'S', 'I', 'G', 'N', 'I', 'N'}

// SignInKey returns Div(LTK, "QCSIGNIN") (spec 3.1 diversification), the sign-in MAC key.
// For the platform peer and tests; the FEP derives it inside its security module.
func SignInKey(ltk []byte) ([]byte, error) { return crypt.Diversify(ltk, signInFactor[:]) }

// WrapDynamicKey encrypts a 16-byte dynamic key under the long-term key and returns the
// block and its check value, as SIGN-IN RESPONSE carries them.
func WrapDynamicKey(ltk, dk []byte) (block [16]byte, kcv [4]byte, err error) {
	if len(dk) != 16 {
		return block, kcv, fmt.Errorf("platform: dynamic key must be 16 bytes: %w", crypt.ErrKeyLength)
	}
	e, err := crypt.EncryptECB(ltk, dk)
	if err != nil {
		return block, kcv, err
	}
	k, err := crypt.KCV(dk)
	if err != nil {
		return block, kcv, err
	}
	copy(block[:], e)
	copy(kcv[:], k)
	return block, kcv, nil
}

// ErrKeyCheck reports a dynamic key whose check value does not match.
var ErrKeyCheck = errors.New("platform: dynamic key check value mismatch")

// UnwrapDynamicKey decrypts a key block and checks it against kcv.
func UnwrapDynamicKey(ltk []byte, block [16]byte, kcv [4]byte) ([]byte, error) {
	dk, err := crypt.DecryptECB(ltk, block[:])
	if err != nil {
		return nil, err
	}
	k, err := crypt.KCV(dk)
	if err != nil {
		return nil, err
	}
	if !crypt.Equal(k, kcv[:]) {
		return nil, ErrKeyCheck
	}
	return dk, nil
}
