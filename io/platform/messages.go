package platform

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/quancun/quancun/io/crypt"
)

// Message is a typed body. Pack and Unpack frame it with a Header and a MAC.
type Message interface {
	Type() Type
	encode(b *body) error
	decode(b *body) error
}

// Pack builds header + body + MAC. h.Type is taken from m. A nil k leaves the MAC all zero,
// which only the codes marked Unsigned allow (in responses).
func Pack(h Header, m Message, k MACer) ([]byte, error) {
	h.Type = m.Type()
	if h.Result == "" {
		h.Result = OK
	}
	s, _ := h.Type.schema()
	if !validCode(h.Result) || (!h.Type.IsResponse() && h.Result != OK) {
		return nil, fmt.Errorf("%w: %s with result %q", ErrFormat, s.Name, string(h.Result))
	}
	if _, err := h.Time.Time(); err != nil {
		return nil, fmt.Errorf("pack %s: header: %w", s.Name, err)
	}
	var b body
	if err := m.encode(&b); err != nil {
		return nil, fmt.Errorf("pack %s: %w", s.Name, err)
	}
	if err := b.check(s); err != nil {
		return nil, fmt.Errorf("pack %s: %w", s.Name, err)
	}
	if err := checkOK(h, m); err != nil {
		return nil, fmt.Errorf("pack %s: %w", s.Name, err)
	}
	out := h.append(make([]byte, 0, 128))
	out = b.append(out)
	if len(out)+macSize > 0xFFFF {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrFormat, s.Name, len(out)+macSize)
	}
	if k == nil {
		if info, ok := h.Result.Info(); !ok || !info.Unsigned || !h.Type.IsResponse() {
			return nil, fmt.Errorf("pack %s: %w", s.Name, ErrMACMissing)
		}
		return append(out, make([]byte, macSize)...), nil
	}
	mac, err := k.MAC(out)
	if err != nil {
		return nil, fmt.Errorf("pack %s: MAC: %w", s.Name, err)
	}
	return append(out, mac[:]...), nil
}

// Unpack checks the MAC of b with k and decodes it. A response with an Unsigned code and an
// all-zero MAC is accepted unverified: it can only make the FEP sign in again. On ErrMAC the
// header is still returned so the receiver can address its refusal.
func Unpack(b []byte, k MACer) (Header, Message, error) {
	h, err := PeekHeader(b)
	if err != nil {
		return Header{}, nil, err
	}
	if err := verify(h, b, k); err != nil {
		return h, nil, err
	}
	m, err := decodeBody(h, b[headerSize:len(b)-macSize])
	return h, m, err
}

// verify checks the MAC before the body is parsed, so unauthenticated bytes reach no more
// code than the fixed header.
func verify(h Header, b []byte, k MACer) error {
	mac := b[len(b)-macSize:]
	if info, ok := h.Result.Info(); ok && info.Unsigned && h.Type.IsResponse() && bytes.Equal(mac, make([]byte, macSize)) {
		return nil
	}
	if k == nil {
		return fmt.Errorf("%s: %w: no key", h.Type, ErrMAC)
	}
	want, err := k.MAC(b[:len(b)-macSize])
	if err != nil {
		return fmt.Errorf("%s: MAC: %w", h.Type, err)
	}
	if !crypt.Equal(want[:], mac) {
		return fmt.Errorf("%w: %s seq %d batch %d", ErrMAC, h.Type, h.Seq, h.Batch)
	}
	return nil
}

func decodeBody(h Header, raw []byte) (Message, error) {
	s, _ := h.Type.schema()
	bd, err := parseBody(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	if err := bd.check(s); err != nil {
		return nil, err
	}
	m := newMessage(h.Type)
	if err := m.decode(bd); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", s.Name, err)
	}
	if err := checkOK(h, m); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", s.Name, err)
	}
	return m, nil
}

// UnpackAs is Unpack for a caller that knows which message it expects.
func UnpackAs[T Message](b []byte, k MACer) (Header, T, error) {
	var zero T
	h, m, err := Unpack(b, k)
	if m == nil {
		return h, zero, err
	}
	t, ok := m.(T)
	if !ok {
		return h, zero, fmt.Errorf("%w: got %s, want %s", ErrFormat, h.Type, zero.Type())
	}
	return h, t, err
}

func newMessage(t Type) Message {
	switch t {
	case TypeSignIn:
		return &SignIn{}
	case TypeSignInResp:
		return &SignInResponse{}
	case TypeSignOut:
		return &SignOut{}
	case TypeSignOutResp:
		return &SignOutResponse{}
	case TypeHeartbeat:
		return &Heartbeat{}
	case TypeHeartbeatResp:
		return &HeartbeatResponse{}
	case TypeCardCheck:
		return &CardCheck{}
	case TypeCardCheckResp:
		return &CardCheckResponse{}
	case TypeBook:
		return &Book{}
	case TypeBookResp:
		return &BookResponse{}
	case TypeConfirm:
		return &Confirm{}
	case TypeConfirmResp:
		return &ConfirmResponse{}
	case TypePendingQuery:
		return &PendingQuery{}
	case TypePendingResp:
		return &PendingResponse{}
	case TypeRewrite:
		return &Rewrite{}
	case TypeRewriteResp:
		return &RewriteResponse{}
	case TypeResolve:
		return &Resolve{}
	case TypeResolveResp:
		return &ResolveResponse{}
	}
	return nil
}

// okChecker is implemented by responses whose conditional fields are required on OK.
type okChecker interface{ okValid() error }

func need(ok bool, what string) error {
	if !ok {
		return fmt.Errorf("%w: OK without %s", ErrFormat, what)
	}
	return nil
}

func checkOK(h Header, m Message) error {
	if c, ok := m.(okChecker); ok && h.Result == OK {
		return c.okValid()
	}
	return nil
}

// Text is the optional operator text of a response (tag 0x40).
type Text struct{ Text string }

func (t Text) put(b *body)   { b.putStr(tText, t.Text) }
func (t *Text) take(b *body) { t.Text = b.str(tText) }

// SignIn opens a session: the platform checks the auth code and the MAC under the sign-in
// key, then issues a new batch and dynamic key. Header batch is 0.
type SignIn struct {
	AuthCode string // 20 characters
}

func (*SignIn) Type() Type             { return TypeSignIn }
func (m *SignIn) encode(b *body) error { b.putStr(tAuthCode, m.AuthCode); return nil }
func (m *SignIn) decode(b *body) error { m.AuthCode = b.str(tAuthCode); return nil }

// WrappedKey is the dynamic key under the long-term key, with its check value.
type WrappedKey struct {
	Block [16]byte
	KCV   [4]byte
}

// SignInResponse carries the new batch in the header and, on OK, the dynamic key under the
// long-term key. It is MACed with the sign-in key.
type SignInResponse struct {
	Key *WrappedKey // required when the result is OK
	Text
}

func (*SignInResponse) Type() Type { return TypeSignInResp }
func (m *SignInResponse) encode(b *body) error {
	if m.Key != nil {
		b.put(tKeyBlock, m.Key.Block[:])
		b.put(tKeyCheck, m.Key.KCV[:])
	}
	m.put(b)
	return nil
}
func (m *SignInResponse) decode(b *body) error {
	if b.has(tKeyBlock) != b.has(tKeyCheck) {
		return fmt.Errorf("%w: key block and check value come together", ErrFormat)
	}
	if b.has(tKeyBlock) {
		m.Key = &WrappedKey{}
		b.copyTo(tKeyBlock, m.Key.Block[:])
		b.copyTo(tKeyCheck, m.Key.KCV[:])
	}
	m.take(b)
	return nil
}
func (m *SignInResponse) okValid() error { return need(m.Key != nil, "dynamic key") }

// SignOut closes the batch; the platform forgets its dynamic key.
type SignOut struct{}

func (*SignOut) Type() Type         { return TypeSignOut }
func (*SignOut) encode(*body) error { return nil }
func (*SignOut) decode(*body) error { return nil }

// SignOutResponse acknowledges SIGN-OUT.
type SignOutResponse struct{ Text }

func (*SignOutResponse) Type() Type             { return TypeSignOutResp }
func (m *SignOutResponse) encode(b *body) error { m.put(b); return nil }
func (m *SignOutResponse) decode(b *body) error { m.take(b); return nil }

// Heartbeat proves the link, the platform service and the dynamic key in one exchange.
type Heartbeat struct{}

func (*Heartbeat) Type() Type         { return TypeHeartbeat }
func (*Heartbeat) encode(*body) error { return nil }
func (*Heartbeat) decode(*body) error { return nil }

// HeartbeatResponse answers HEARTBEAT.
type HeartbeatResponse struct{ Text }

func (*HeartbeatResponse) Type() Type             { return TypeHeartbeatResp }
func (m *HeartbeatResponse) encode(b *body) error { m.put(b); return nil }
func (m *HeartbeatResponse) decode(b *body) error { m.take(b); return nil }

// CardInit is the card's identity and its INITIALIZE FOR LOAD result, with the amount and
// terminal number sent in that INIT: everything the platform needs to recompute MAC1.
type CardInit struct {
	AppSerial  [8]byte
	City       [2]byte // optional; zero = absent
	CardType   uint8   // optional with City
	KeyIndex   uint8
	OldBalance uint32
	Serial     uint16
	KeyVersion uint8
	AlgID      uint8
	Random     [4]byte
	MAC1       [4]byte
	Amount     uint32 // fen
	TermID     [6]byte
}

func (c *CardInit) put(b *body) {
	b.put(tAppSerial, c.AppSerial[:])
	if c.City != [2]byte{} {
		b.put(tCity, c.City[:])
		b.putU8(tCardType, c.CardType)
	}
	b.putU8(tKeyIndex, c.KeyIndex)
	b.putU32(tOldBalance, c.OldBalance)
	b.putU16(tSerial, c.Serial)
	b.putU8(tKeyVersion, c.KeyVersion)
	b.putU8(tAlgID, c.AlgID)
	b.put(tRandom, c.Random[:])
	b.put(tMAC1, c.MAC1[:])
	b.putU32(tAmount, c.Amount)
	b.put(tTermID, c.TermID[:])
}

func (c *CardInit) take(b *body) {
	b.copyTo(tAppSerial, c.AppSerial[:])
	b.copyTo(tCity, c.City[:])
	c.CardType = b.u8(tCardType)
	c.KeyIndex, c.OldBalance, c.Serial = b.u8(tKeyIndex), b.u32(tOldBalance), b.u16(tSerial)
	c.KeyVersion, c.AlgID = b.u8(tKeyVersion), b.u8(tAlgID)
	b.copyTo(tRandom, c.Random[:])
	b.copyTo(tMAC1, c.MAC1[:])
	c.Amount = b.u32(tAmount)
	b.copyTo(tTermID, c.TermID[:])
}

// KioskRef names the kiosk request behind a platform request; CARD CHECK is idempotent on
// it (same kiosk terminal + trace + date and same data -> the same reference number).
type KioskRef struct {
	Terminal string // 8 characters
	Trace    string // 6 digits
	Date     string // YYYYMMDD
}

func (k *KioskRef) put(b *body) {
	b.putStr(tKioskTerminal, k.Terminal)
	b.putStr(tKioskTrace, k.Trace)
	b.putStr(tKioskDate, k.Date)
}

func (k *KioskRef) take(b *body) {
	k.Terminal, k.Trace, k.Date = b.str(tKioskTerminal), b.str(tKioskTrace), b.str(tKioskDate)
}

// CardCheck asks the platform to verify MAC1 and the card (not blocked, under its balance
// ceiling, no pending loads) and to issue a reference number. Nothing is booked.
type CardCheck struct {
	Card     CardInit
	BankCode string // 10 characters
	Kiosk    KioskRef
}

func (*CardCheck) Type() Type { return TypeCardCheck }
func (m *CardCheck) encode(b *body) error {
	m.Card.put(b)
	b.putStr(tBankCode, m.BankCode)
	m.Kiosk.put(b)
	return nil
}
func (m *CardCheck) decode(b *body) error {
	m.Card.take(b)
	m.BankCode = b.str(tBankCode)
	m.Kiosk.take(b)
	return nil
}

// CardCheckResponse carries the reference number when the result is OK.
type CardCheckResponse struct {
	Reference string
	Text
}

func (*CardCheckResponse) Type() Type       { return TypeCardCheckResp }
func (m *CardCheckResponse) okValid() error { return need(m.Reference != "", "reference number") }
func (m *CardCheckResponse) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	m.put(b)
	return nil
}
func (m *CardCheckResponse) decode(b *body) error {
	m.Reference = b.str(tReference)
	m.take(b)
	return nil
}

// Book books a checked load after the bank approved the debit, and asks for MAC2.
// Idempotent by reference: asking again returns the same MAC2 and host date/time.
type Book struct {
	Reference  string
	Amount     uint32 // fen; must equal the CARD CHECK's
	BankRRN    string // 12 characters
	BankAuth   string // up to 6 characters, optional
	SettleDate string // YYYYMMDD
}

func (*Book) Type() Type { return TypeBook }
func (m *Book) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	b.putU32(tAmount, m.Amount)
	b.putStr(tBankRRN, m.BankRRN)
	b.putStr(tBankAuth, m.BankAuth)
	b.putStr(tSettleDate, m.SettleDate)
	return nil
}
func (m *Book) decode(b *body) error {
	m.Reference, m.Amount, m.BankRRN = b.str(tReference), b.u32(tAmount), b.str(tBankRRN)
	m.BankAuth, m.SettleDate = b.str(tBankAuth), b.str(tSettleDate)
	return nil
}

// Issued is a MAC2 with the host date/time it covers.
type Issued struct {
	MAC2     [4]byte
	HostTime HostTime
}

// BookResponse carries MAC2 and the host date/time when the result is OK.
type BookResponse struct {
	Reference string
	Issued    *Issued
	Text
}

func (*BookResponse) Type() Type       { return TypeBookResp }
func (m *BookResponse) okValid() error { return need(m.Issued != nil, "MAC2") }
func (m *BookResponse) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	putIssued(b, m.Issued)
	m.put(b)
	return nil
}
func (m *BookResponse) decode(b *body) (err error) {
	m.Reference = b.str(tReference)
	m.Issued, err = takeIssued(b)
	m.take(b)
	return err
}

func putIssued(b *body, i *Issued) {
	if i != nil {
		b.put(tMAC2, i.MAC2[:])
		b.put(tHostTime, i.HostTime[:])
	}
}

func takeIssued(b *body) (*Issued, error) {
	if b.has(tMAC2) != b.has(tHostTime) {
		return nil, fmt.Errorf("%w: MAC2 and host date/time come together", ErrFormat)
	}
	if !b.has(tMAC2) {
		return nil, nil
	}
	i := &Issued{}
	b.copyTo(tMAC2, i.MAC2[:])
	b.copyTo(tHostTime, i.HostTime[:])
	return i, nil
}

// WriteStatus is how CREDIT FOR LOAD ended (seed section 5).
type WriteStatus byte

// Write statuses.
const (
	Written WriteStatus = 'S'
	Failed  WriteStatus = 'F'
	Unknown WriteStatus = 'U'
)

// Confirm reports the card write of a booked reference. TAC is required with S; the
// platform verifies it. Idempotent: the same status again is OK.
type Confirm struct {
	Reference  string
	Status     WriteStatus
	TAC        [4]byte
	NewBalance uint32 // optional, with S; 0 = absent
}

func (*Confirm) Type() Type { return TypeConfirm }
func (m *Confirm) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	b.put(tWriteStatus, []byte{byte(m.Status)})
	if m.Status == Written {
		b.put(tTAC, m.TAC[:])
		if m.NewBalance != 0 {
			b.putU32(tNewBalance, m.NewBalance)
		}
	}
	return nil
}
func (m *Confirm) decode(b *body) error {
	m.Reference = b.str(tReference)
	m.Status = WriteStatus(b.u8(tWriteStatus))
	if (m.Status == Written) != b.has(tTAC) || (m.Status != Written && b.has(tNewBalance)) {
		return fmt.Errorf("%w: TAC and new balance go with status S only", ErrFormat)
	}
	b.copyTo(tTAC, m.TAC[:])
	m.NewBalance = b.u32(tNewBalance)
	return nil
}

// ConfirmResponse acknowledges CONFIRM.
type ConfirmResponse struct {
	Reference string
	Text
}

func (*ConfirmResponse) Type() Type { return TypeConfirmResp }
func (m *ConfirmResponse) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	m.put(b)
	return nil
}
func (m *ConfirmResponse) decode(b *body) error {
	m.Reference = b.str(tReference)
	m.take(b)
	return nil
}

// PendingQuery asks for a card's booked loads with write status F or U.
type PendingQuery struct {
	AppSerial [8]byte
}

func (*PendingQuery) Type() Type             { return TypePendingQuery }
func (m *PendingQuery) encode(b *body) error { b.put(tAppSerial, m.AppSerial[:]); return nil }
func (m *PendingQuery) decode(b *body) error { b.copyTo(tAppSerial, m.AppSerial[:]); return nil }

// Pending is one booked load not known to be on its card: what a kiosk needs for the U
// resolution of spec section 4, wherever the load was made.
type Pending struct {
	Reference  string // 20 digits
	Amount     uint32
	Serial     uint16 // online serial of the INIT the last MAC2 was issued for
	TermID     [6]byte
	HostTime   HostTime
	MAC2       [4]byte // the last MAC2 issued
	OldBalance uint32  // B0 of that INIT
	Status     WriteStatus
}

const pendingSize = 20 + 4 + 2 + 6 + 7 + 4 + 4 + 1

func (p *Pending) marshal() []byte {
	out := make([]byte, 0, pendingSize)
	out = append(out, p.Reference...)
	out = binary.BigEndian.AppendUint32(out, p.Amount)
	out = binary.BigEndian.AppendUint16(out, p.Serial)
	out = append(out, p.TermID[:]...)
	out = append(out, p.HostTime[:]...)
	out = append(out, p.MAC2[:]...)
	out = binary.BigEndian.AppendUint32(out, p.OldBalance)
	return append(out, byte(p.Status))
}

func (p *Pending) unmarshal(v []byte) error {
	if len(v) != pendingSize {
		return fmt.Errorf("%w: pending entry of %d bytes", ErrFormat, len(v))
	}
	ref := tagSpec{Kind: kDigits, Min: 20, Max: 20}
	if err := ref.valid(v[:20]); err != nil {
		return fmt.Errorf("%w: pending reference: %v", ErrFormat, err)
	}
	p.Reference = string(v[:20])
	p.Amount = binary.BigEndian.Uint32(v[20:24])
	p.Serial = binary.BigEndian.Uint16(v[24:26])
	copy(p.TermID[:], v[26:32])
	copy(p.HostTime[:], v[32:39])
	copy(p.MAC2[:], v[39:43])
	p.OldBalance = binary.BigEndian.Uint32(v[43:47])
	p.Status = WriteStatus(v[47])
	if p.Status != Failed && p.Status != Unknown {
		return fmt.Errorf("%w: pending status %q", ErrFormat, v[47])
	}
	_, err := p.HostTime.Time()
	return err
}

// PendingResponse lists the card's pending loads, oldest first (at most 20).
type PendingResponse struct {
	AppSerial [8]byte
	Loads     []Pending
	Text
}

func (*PendingResponse) Type() Type { return TypePendingResp }
func (m *PendingResponse) encode(b *body) error {
	if len(m.Loads) > 20 {
		return fmt.Errorf("%w: %d pending loads, at most 20", ErrFormat, len(m.Loads))
	}
	b.put(tAppSerial, m.AppSerial[:])
	for i := range m.Loads {
		b.put(tPending, m.Loads[i].marshal())
	}
	m.put(b)
	return nil
}
func (m *PendingResponse) decode(b *body) error {
	b.copyTo(tAppSerial, m.AppSerial[:])
	for _, f := range b.fields {
		if f.tag == tPending {
			var p Pending
			if err := p.unmarshal(f.val); err != nil {
				return err
			}
			m.Loads = append(m.Loads, p)
		}
	}
	if len(m.Loads) > 20 {
		return fmt.Errorf("%w: %d pending loads", ErrFormat, len(m.Loads))
	}
	m.take(b)
	return nil
}

// Rewrite asks for a new MAC2 for a booked load from a fresh INIT FOR LOAD (same amount);
// the terminal number may be another kiosk's. Idempotent per (reference, serial, random).
type Rewrite struct {
	Reference string
	Card      CardInit
	Kiosk     KioskRef
}

func (*Rewrite) Type() Type { return TypeRewrite }
func (m *Rewrite) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	m.Card.put(b)
	m.Kiosk.put(b)
	return nil
}
func (m *Rewrite) decode(b *body) error {
	m.Reference = b.str(tReference)
	m.Card.take(b)
	m.Kiosk.take(b)
	return nil
}

// RewriteResponse carries the new MAC2 when the result is OK.
type RewriteResponse struct {
	Reference string
	Issued    *Issued
	Text
}

func (*RewriteResponse) Type() Type       { return TypeRewriteResp }
func (m *RewriteResponse) okValid() error { return need(m.Issued != nil, "MAC2") }
func (m *RewriteResponse) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	putIssued(b, m.Issued)
	m.put(b)
	return nil
}
func (m *RewriteResponse) decode(b *body) (err error) {
	m.Reference = b.str(tReference)
	m.Issued, err = takeIssued(b)
	m.take(b)
	return err
}

// Evidence methods of RESOLVE-U.
const (
	ByProve = 'P' // GET TRANSACTION PROVE: MAC2' and TAC
	ByLog   = 'L' // 0018 record with the load's serial
	NoProof = 'N' // neither; the platform's per-(card, serial) ledger decides
)

// Resolve carries the evidence for a U load whose card serial has moved past the load's
// serial (spec section 4). Idempotent.
type Resolve struct {
	Reference string
	AppSerial [8]byte
	Observed  uint16 // S'
	Method    byte   // ByProve, ByLog, NoProof
	MAC2      [4]byte
	TAC       [4]byte
	Record    [23]byte
}

func (*Resolve) Type() Type { return TypeResolve }
func (m *Resolve) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	b.put(tAppSerial, m.AppSerial[:])
	b.putU16(tObservedSer, m.Observed)
	b.put(tMethod, []byte{m.Method})
	switch m.Method {
	case ByProve:
		b.put(tProveMAC2, m.MAC2[:])
		b.put(tProveTAC, m.TAC[:])
	case ByLog:
		b.put(tLogRecord, m.Record[:])
	}
	return nil
}
func (m *Resolve) decode(b *body) error {
	m.Reference = b.str(tReference)
	b.copyTo(tAppSerial, m.AppSerial[:])
	m.Observed, m.Method = b.u16(tObservedSer), b.u8(tMethod)
	prove := b.has(tProveMAC2) && b.has(tProveTAC)
	if (m.Method == ByProve) != prove || (m.Method != ByProve && (b.has(tProveMAC2) || b.has(tProveTAC))) ||
		(m.Method == ByLog) != b.has(tLogRecord) {
		return fmt.Errorf("%w: evidence does not match method %q", ErrFormat, m.Method)
	}
	b.copyTo(tProveMAC2, m.MAC2[:])
	b.copyTo(tProveTAC, m.TAC[:])
	b.copyTo(tLogRecord, m.Record[:])
	return nil
}

// Outcome is the platform's decision on a U load.
type Outcome byte

// Outcomes of RESOLVE-U.
const (
	Applied    Outcome = 'Y' // the load is on the card: closed as S
	NotApplied Outcome = 'N' // it is not: re-write it with a fresh INIT
)

// ResolveResponse carries the decision when the result is OK.
type ResolveResponse struct {
	Reference string
	Outcome   Outcome // zero when the result is not OK
	Text
}

func (*ResolveResponse) Type() Type { return TypeResolveResp }
func (m *ResolveResponse) encode(b *body) error {
	b.putStr(tReference, m.Reference)
	if m.Outcome != 0 {
		b.put(tApplied, []byte{byte(m.Outcome)})
	}
	m.put(b)
	return nil
}
func (m *ResolveResponse) decode(b *body) error {
	m.Reference = b.str(tReference)
	m.Outcome = Outcome(b.u8(tApplied))
	m.take(b)
	return nil
}
func (m *ResolveResponse) okValid() error { return need(m.Outcome != 0, "applied flag") }

func (c CardInit) String() string {
	return fmt.Sprintf("card=%X serial=%d amount=%d term=%X", c.AppSerial, c.Serial, c.Amount, c.TermID)
}
