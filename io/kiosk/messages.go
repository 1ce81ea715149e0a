package kiosk

import (
	"fmt"
)

func newMessage(k Kind) message {
	switch k {
	case KindSignIn:
		return &SignIn{}
	case KindSignInResponse:
		return &SignInResponse{}
	case KindSignOut:
		return &SignOut{}
	case KindSignOutResponse:
		return &SignOutResponse{}
	case KindHeartbeat:
		return &Heartbeat{}
	case KindHeartbeatResponse:
		return &HeartbeatResponse{}
	case KindLoad:
		return &Load{}
	case KindLoadResponse:
		return &LoadResponse{}
	case KindConfirm:
		return &Confirm{}
	case KindConfirmResponse:
		return &ConfirmResponse{}
	case KindPendingQuery:
		return &PendingQuery{}
	case KindPendingResponse:
		return &PendingResponse{}
	case KindRewrite:
		return &Rewrite{}
	case KindRewriteResponse:
		return &RewriteResponse{}
	case KindResolve:
		return &Resolve{}
	case KindResolveResponse:
		return &ResolveResponse{}
	}
	return nil
}

// decodeLayout unpacks a private binary field into v with its layout.
func decodeLayout[T any](w *wire, id int, l layout[T], v *T) error {
	if err := l.unpack(w.getBin(id), v); err != nil {
		return fmt.Errorf("field %d: %w", id, err)
	}
	return nil
}

// SignIn (0800, 60.3 003) opens a kiosk's day: the FEP checks the terminal id and PSAM
// number are registered together and the PSAM MAC, and answers with new working keys and a
// batch number.
type SignIn struct{ Envelope }

func (*SignIn) Kind() Kind              { return KindSignIn }
func (m *SignIn) envelope() *Envelope   { return &m.Envelope }
func (m *SignIn) encode(*wire) error    { return nil }
func (m *SignIn) decode(*wire) error    { return nil }
func (m *SignIn) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *SignIn) String() string        { return describe(m.Kind(), &m.Envelope, "") }
func (m *SignIn) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// SignInResponse (0810) carries the new batch (60.2) and, when approved, the kiosk's PIK and
// MAK under its TMK. Its F64 is computed with the MAK it delivers, so a kiosk that installs
// the keys and then verifies the MAC knows they arrived intact and from the FEP.
type SignInResponse struct {
	Envelope
	Reply
	Keys *WorkingKeys // F62; present when Result is Approved
}

func (*SignInResponse) Kind() Kind            { return KindSignInResponse }
func (m *SignInResponse) envelope() *Envelope { return &m.Envelope }
func (m *SignInResponse) encode(w *wire) error {
	if m.Result == Approved && m.Keys == nil {
		return fmt.Errorf("%w: approved sign-in without keys", ErrFormat)
	}
	if m.Keys != nil {
		w.bin(fKeys, keysLayout.pack(m.Keys))
	}
	return m.Reply.encode(w)
}
func (m *SignInResponse) decode(w *wire) error {
	m.Reply.decode(w)
	if w.has(fKeys) {
		m.Keys = new(WorkingKeys)
		if err := decodeLayout(w, fKeys, keysLayout, m.Keys); err != nil {
			return err
		}
	} else if m.Result == Approved {
		return fmt.Errorf("%w: approved sign-in without keys", ErrFormat)
	}
	return nil
}
func (m *SignInResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *SignInResponse) String() string        { return describe(m.Kind(), &m.Envelope, string(m.Result)) }
func (m *SignInResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// SignOut (0820, 60.3 002) ends a kiosk's day; the FEP forgets its working keys.
type SignOut struct{ Envelope }

func (*SignOut) Kind() Kind              { return KindSignOut }
func (m *SignOut) envelope() *Envelope   { return &m.Envelope }
func (m *SignOut) encode(*wire) error    { return nil }
func (m *SignOut) decode(*wire) error    { return nil }
func (m *SignOut) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *SignOut) String() string        { return describe(m.Kind(), &m.Envelope, "") }
func (m *SignOut) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// SignOutResponse (0830, 60.3 002).
type SignOutResponse struct {
	Envelope
	Reply
}

func (*SignOutResponse) Kind() Kind              { return KindSignOutResponse }
func (m *SignOutResponse) envelope() *Envelope   { return &m.Envelope }
func (m *SignOutResponse) encode(w *wire) error  { return m.Reply.encode(w) }
func (m *SignOutResponse) decode(w *wire) error  { m.Reply.decode(w); return nil }
func (m *SignOutResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *SignOutResponse) String() string        { return describe(m.Kind(), &m.Envelope, string(m.Result)) }
func (m *SignOutResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// Heartbeat (0820, 60.3 301) tells the FEP the kiosk is alive and the kiosk that its keys
// still work: the response is MACed like any other.
type Heartbeat struct{ Envelope }

func (*Heartbeat) Kind() Kind              { return KindHeartbeat }
func (m *Heartbeat) envelope() *Envelope   { return &m.Envelope }
func (m *Heartbeat) encode(*wire) error    { return nil }
func (m *Heartbeat) decode(*wire) error    { return nil }
func (m *Heartbeat) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *Heartbeat) String() string        { return describe(m.Kind(), &m.Envelope, "") }
func (m *Heartbeat) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// HeartbeatResponse (0830, 60.3 301).
type HeartbeatResponse struct {
	Envelope
	Reply
}

func (*HeartbeatResponse) Kind() Kind              { return KindHeartbeatResponse }
func (m *HeartbeatResponse) envelope() *Envelope   { return &m.Envelope }
func (m *HeartbeatResponse) encode(w *wire) error  { return m.Reply.encode(w) }
func (m *HeartbeatResponse) decode(w *wire) error  { m.Reply.decode(w); return nil }
func (m *HeartbeatResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *HeartbeatResponse) String() string        { return describe(m.Kind(), &m.Envelope, string(m.Result)) }
func (m *HeartbeatResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// Load (0200, F3 600000) is the LOAD REQUEST of DESIGN section 4 step 3: the card's INIT
// FOR LOAD result and the bank card that pays. The INIT's terminal number is F42 and its
// amount F4, so the platform can recompute MAC1 from this message alone.
type Load struct {
	Envelope
	Amount    int64 // F4, fen; the amount sent in INIT FOR LOAD
	Card      CardID
	Init      InitData
	BankCode  string // F58, 10 characters
	PAN       string // F2; F2 or F35 is required
	Expiry    string // F14 YYMM, optional
	EntryMode string // F22 n3, optional: 021 magstripe+PIN, 051 IC+PIN, 071 contactless+PIN
	CardSeq   string // F23 n3, IC cards
	Track2    string // F35, digits and D
	PINBlock  []byte // F52: 8 bytes, ISO 9564 format 0 under the kiosk PIK; nil when no PIN
	ICC       []byte // F55, IC cards
}

func (*Load) Kind() Kind            { return KindLoad }
func (m *Load) envelope() *Envelope { return &m.Envelope }
func (m *Load) encode(w *wire) error {
	if m.PAN == "" && m.Track2 == "" {
		return fmt.Errorf("%w: load without PAN or track 2", ErrFormat)
	}
	if len(m.BankCode) != 10 {
		return fmt.Errorf("%w: bank code %q must be 10 characters", ErrFormat, m.BankCode)
	}
	if m.PINBlock != nil && len(m.PINBlock) != 8 {
		return fmt.Errorf("%w: PIN block of %d bytes", ErrFormat, len(m.PINBlock))
	}
	if err := w.amount(m.Amount); err != nil {
		return err
	}
	w.bin(fCardID, cardIDLayout.pack(&m.Card))
	w.bin(fInit, initLayout.pack(&m.Init))
	w.str(fBankCode, m.BankCode)
	w.str(fPAN, m.PAN)
	w.str(fExpiry, m.Expiry)
	w.str(fEntryMode, m.EntryMode)
	w.str(fCardSeq, m.CardSeq)
	w.str(fTrack2, m.Track2)
	w.bin(fPINBlock, m.PINBlock)
	w.bin(fICC, m.ICC)
	return nil
}
func (m *Load) decode(w *wire) (err error) {
	if m.Amount, err = w.getAmount(); err != nil {
		return err
	}
	if err := decodeLayout(w, fCardID, cardIDLayout, &m.Card); err != nil {
		return err
	}
	if err := decodeLayout(w, fInit, initLayout, &m.Init); err != nil {
		return err
	}
	m.BankCode, m.PAN, m.Expiry = w.get(fBankCode), w.get(fPAN), w.get(fExpiry)
	m.EntryMode, m.CardSeq, m.Track2 = w.get(fEntryMode), w.get(fCardSeq), w.get(fTrack2)
	m.PINBlock, m.ICC = w.getBin(fPINBlock), w.getBin(fICC)
	if m.PAN == "" && m.Track2 == "" {
		return fmt.Errorf("%w: load without PAN or track 2", ErrFormat)
	}
	return nil
}
func (m *Load) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *Load) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// String masks the PAN (6+4) and never shows track 2 or the PIN block.
func (m *Load) String() string {
	pan := m.PAN
	if pan == "" {
		pan = panOfTrack2(m.Track2)
	}
	return describe(m.Kind(), &m.Envelope, "") + fmt.Sprintf(" amount=%d card=%X pan=%s bank=%s",
		m.Amount, m.Card.AppSerial, MaskPAN(pan), m.BankCode)
}

func panOfTrack2(t string) string {
	for i := 0; i < len(t); i++ {
		if t[i] == 'D' || t[i] == '=' {
			return t[:i]
		}
	}
	return t
}

// LoadResponse (0210, F3 600000). Approved: F48 reference, F59 host date/time + MAC2 for
// CREDIT FOR LOAD, F37/F38 the bank's RRN and authorisation code. Otherwise the code says
// why, and nothing was debited unless the code says a reversal is running.
type LoadResponse struct {
	Envelope
	Reply
	Amount    int64
	Reference string  // F48, 20 digits; also present on a refusal once the platform issued one
	RRN       string  // F37, 12 characters
	AuthCode  string  // F38, 6 characters
	Credit    *Credit // F59; present when Approved
}

func (*LoadResponse) Kind() Kind            { return KindLoadResponse }
func (m *LoadResponse) envelope() *Envelope { return &m.Envelope }
func (m *LoadResponse) encode(w *wire) error {
	if m.Result == Approved && (m.Credit == nil || m.Reference == "") {
		return fmt.Errorf("%w: approved load without reference or MAC2", ErrFormat)
	}
	if err := w.amount(m.Amount); err != nil {
		return err
	}
	if m.Reference != "" {
		if err := w.ref(m.Reference); err != nil {
			return err
		}
	}
	if m.Credit != nil {
		w.bin(fCredit, creditLayout.pack(m.Credit))
	}
	w.str(fRRN, m.RRN)
	w.str(fAuthCode, m.AuthCode)
	return m.Reply.encode(w)
}
func (m *LoadResponse) decode(w *wire) (err error) {
	m.Reply.decode(w)
	if m.Amount, err = w.getAmount(); err != nil {
		return err
	}
	m.Reference, m.RRN, m.AuthCode = w.get(fReference), w.get(fRRN), w.get(fAuthCode)
	if w.has(fCredit) {
		m.Credit = new(Credit)
		if err := decodeLayout(w, fCredit, creditLayout, m.Credit); err != nil {
			return err
		}
	}
	if m.Result == Approved && (m.Credit == nil || m.Reference == "") {
		return fmt.Errorf("%w: approved load without reference or MAC2", ErrFormat)
	}
	return nil
}
func (m *LoadResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *LoadResponse) String() string {
	return describe(m.Kind(), &m.Envelope, string(m.Result)) + fmt.Sprintf(" amount=%d ref=%s", m.Amount, m.Reference)
}
func (m *LoadResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// Confirm (0220, F3 600000) reports CREDIT FOR LOAD for a reference: S with the TAC, F, or
// U. It confirms a load and a re-write alike; the reference says which. Idempotent: the
// kiosk repeats the same bytes until it has a response.
type Confirm struct {
	Envelope
	Amount    int64
	Reference string
	Write     WriteResult
}

func (*Confirm) Kind() Kind            { return KindConfirm }
func (m *Confirm) envelope() *Envelope { return &m.Envelope }
func (m *Confirm) encode(w *wire) error {
	if err := m.Write.Status.valid(); err != nil {
		return err
	}
	if err := w.amount(m.Amount); err != nil {
		return err
	}
	if err := w.ref(m.Reference); err != nil {
		return err
	}
	w.bin(fWrite, writeLayout.pack(&m.Write))
	return nil
}
func (m *Confirm) decode(w *wire) (err error) {
	if m.Amount, err = w.getAmount(); err != nil {
		return err
	}
	m.Reference = w.get(fReference)
	return decodeLayout(w, fWrite, writeLayout, &m.Write)
}
func (m *Confirm) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *Confirm) String() string {
	return describe(m.Kind(), &m.Envelope, "") + fmt.Sprintf(" ref=%s status=%c", m.Reference, m.Write.Status)
}
func (m *Confirm) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// ConfirmResponse (0230, F3 600000): Approved means the FEP has the write status durably.
type ConfirmResponse struct {
	Envelope
	Reply
	Reference string
}

func (*ConfirmResponse) Kind() Kind            { return KindConfirmResponse }
func (m *ConfirmResponse) envelope() *Envelope { return &m.Envelope }
func (m *ConfirmResponse) encode(w *wire) error {
	if err := w.ref(m.Reference); err != nil {
		return err
	}
	return m.Reply.encode(w)
}
func (m *ConfirmResponse) decode(w *wire) error {
	m.Reply.decode(w)
	m.Reference = w.get(fReference)
	return nil
}
func (m *ConfirmResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *ConfirmResponse) String() string {
	return describe(m.Kind(), &m.Envelope, string(m.Result)) + " ref=" + m.Reference
}
func (m *ConfirmResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// PendingQuery (0100, F3 310000) asks for a card's booked loads whose write status is F or
// U, before the kiosk starts a new load on it (DESIGN section 5).
type PendingQuery struct {
	Envelope
	Card CardID
}

func (*PendingQuery) Kind() Kind            { return KindPendingQuery }
func (m *PendingQuery) envelope() *Envelope { return &m.Envelope }
func (m *PendingQuery) encode(w *wire) error {
	w.bin(fCardID, cardIDLayout.pack(&m.Card))
	return nil
}
func (m *PendingQuery) decode(w *wire) error {
	return decodeLayout(w, fCardID, cardIDLayout, &m.Card)
}
func (m *PendingQuery) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *PendingQuery) String() string {
	return describe(m.Kind(), &m.Envelope, "") + fmt.Sprintf(" card=%X", m.Card.AppSerial)
}
func (m *PendingQuery) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// PendingResponse (0110, F3 310000) lists the card's pending loads, oldest first; no F61
// (or an empty list) means none.
type PendingResponse struct {
	Envelope
	Reply
	Card  CardID
	Loads []Pending
}

func (*PendingResponse) Kind() Kind            { return KindPendingResponse }
func (m *PendingResponse) envelope() *Envelope { return &m.Envelope }
func (m *PendingResponse) encode(w *wire) error {
	w.bin(fCardID, cardIDLayout.pack(&m.Card))
	if len(m.Loads) > 0 {
		b, err := packPending(m.Loads)
		if err != nil {
			return err
		}
		w.bin(fPending, b)
	}
	return m.Reply.encode(w)
}
func (m *PendingResponse) decode(w *wire) (err error) {
	m.Reply.decode(w)
	if err := decodeLayout(w, fCardID, cardIDLayout, &m.Card); err != nil {
		return err
	}
	if w.has(fPending) {
		if m.Loads, err = unpackPending(w.getBin(fPending)); err != nil {
			return fmt.Errorf("field %d: %w", fPending, err)
		}
	}
	return nil
}
func (m *PendingResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *PendingResponse) String() string {
	return describe(m.Kind(), &m.Envelope, string(m.Result)) + fmt.Sprintf(" card=%X pending=%d", m.Card.AppSerial, len(m.Loads))
}
func (m *PendingResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// Rewrite (0200, F3 610000) asks for a new MAC2 for a pending load from a fresh INIT FOR
// LOAD of the pending amount. No bank message follows; the platform issues MAC2 against
// the original reference (DESIGN section 5).
type Rewrite struct {
	Envelope
	Amount    int64
	Card      CardID
	Reference string
	Init      InitData
}

func (*Rewrite) Kind() Kind            { return KindRewrite }
func (m *Rewrite) envelope() *Envelope { return &m.Envelope }
func (m *Rewrite) encode(w *wire) error {
	if err := w.amount(m.Amount); err != nil {
		return err
	}
	if err := w.ref(m.Reference); err != nil {
		return err
	}
	w.bin(fCardID, cardIDLayout.pack(&m.Card))
	w.bin(fInit, initLayout.pack(&m.Init))
	return nil
}
func (m *Rewrite) decode(w *wire) (err error) {
	if m.Amount, err = w.getAmount(); err != nil {
		return err
	}
	m.Reference = w.get(fReference)
	if err := decodeLayout(w, fCardID, cardIDLayout, &m.Card); err != nil {
		return err
	}
	return decodeLayout(w, fInit, initLayout, &m.Init)
}
func (m *Rewrite) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *Rewrite) String() string {
	return describe(m.Kind(), &m.Envelope, "") + fmt.Sprintf(" ref=%s card=%X serial=%d", m.Reference, m.Card.AppSerial, m.Init.Serial)
}
func (m *Rewrite) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// RewriteResponse (0210, F3 610000): approved carries F59 (host date/time + MAC2).
type RewriteResponse struct {
	Envelope
	Reply
	Amount    int64
	Reference string
	Credit    *Credit
}

func (*RewriteResponse) Kind() Kind            { return KindRewriteResponse }
func (m *RewriteResponse) envelope() *Envelope { return &m.Envelope }
func (m *RewriteResponse) encode(w *wire) error {
	if m.Result == Approved && m.Credit == nil {
		return fmt.Errorf("%w: approved re-write without MAC2", ErrFormat)
	}
	if err := w.amount(m.Amount); err != nil {
		return err
	}
	if err := w.ref(m.Reference); err != nil {
		return err
	}
	if m.Credit != nil {
		w.bin(fCredit, creditLayout.pack(m.Credit))
	}
	return m.Reply.encode(w)
}
func (m *RewriteResponse) decode(w *wire) (err error) {
	m.Reply.decode(w)
	if m.Amount, err = w.getAmount(); err != nil {
		return err
	}
	m.Reference = w.get(fReference)
	if w.has(fCredit) {
		m.Credit = new(Credit)
		if err := decodeLayout(w, fCredit, creditLayout, m.Credit); err != nil {
			return err
		}
	}
	if m.Result == Approved && m.Credit == nil {
		return fmt.Errorf("%w: approved re-write without MAC2", ErrFormat)
	}
	return nil
}
func (m *RewriteResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *RewriteResponse) String() string {
	return describe(m.Kind(), &m.Envelope, string(m.Result)) + " ref=" + m.Reference
}
func (m *RewriteResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

// Resolve (0220, F3 620000) carries the U-resolution evidence of spec section 4 for a card
// whose serial moved past the pending load's serial. The response says Approved (the load
// is on the card: closed as S) or NotApplied (re-write it with a fresh INIT).
type Resolve struct {
	Envelope
	Amount    int64
	Card      CardID
	Reference string
	Evidence  Evidence
}

func (*Resolve) Kind() Kind            { return KindResolve }
func (m *Resolve) envelope() *Envelope { return &m.Envelope }
func (m *Resolve) encode(w *wire) error {
	if err := w.amount(m.Amount); err != nil {
		return err
	}
	if err := w.ref(m.Reference); err != nil {
		return err
	}
	w.bin(fCardID, cardIDLayout.pack(&m.Card))
	w.bin(fEvidence, evidenceLayout.pack(&m.Evidence))
	return nil
}
func (m *Resolve) decode(w *wire) (err error) {
	if m.Amount, err = w.getAmount(); err != nil {
		return err
	}
	m.Reference = w.get(fReference)
	if err := decodeLayout(w, fCardID, cardIDLayout, &m.Card); err != nil {
		return err
	}
	return decodeLayout(w, fEvidence, evidenceLayout, &m.Evidence)
}
func (m *Resolve) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *Resolve) String() string {
	return describe(m.Kind(), &m.Envelope, "") + fmt.Sprintf(" ref=%s card=%X serial'=%d method=%c",
		m.Reference, m.Card.AppSerial, m.Evidence.Serial, m.Evidence.Method)
}
func (m *Resolve) Pack(s RequestMACer) ([]byte, error) {
	return pack(m, requestSigner(m.PSAM, s))
}

// ResolveResponse (0230, F3 620000).
type ResolveResponse struct {
	Envelope
	Reply
	Reference string
}

func (*ResolveResponse) Kind() Kind            { return KindResolveResponse }
func (m *ResolveResponse) envelope() *Envelope { return &m.Envelope }
func (m *ResolveResponse) encode(w *wire) error {
	if err := w.ref(m.Reference); err != nil {
		return err
	}
	return m.Reply.encode(w)
}
func (m *ResolveResponse) decode(w *wire) error {
	m.Reply.decode(w)
	m.Reference = w.get(fReference)
	return nil
}
func (m *ResolveResponse) Unpack(b []byte) error { return unpackInto(b, m) }
func (m *ResolveResponse) String() string {
	return describe(m.Kind(), &m.Envelope, string(m.Result)) + " ref=" + m.Reference
}
func (m *ResolveResponse) Pack(s ResponseMACer) ([]byte, error) {
	sign, err := responseSigner(&m.Envelope, m.Reply, s)
	if err != nil {
		return nil, err
	}
	return pack(m, sign)
}

func describe(k Kind, e *Envelope, code string) string {
	s := fmt.Sprintf("%s term=%s psam=%s trace=%s batch=%06d", k, e.Terminal, e.PSAM, e.Trace, e.Batch)
	if code != "" {
		s += " code=" + code
	}
	return s
}
