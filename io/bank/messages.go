package bank

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/quancun/quancun/io/crypt"
)

// Terminal is the acceptor as the bank knows it: F41 terminal id (ans8) and F42 merchant id
// (ans15), right-padded with spaces on the wire.
type Terminal struct {
	ID       string
	Merchant string
}

func (w *writer) terminal(t Terminal) {
	w.str(41, t.ID)
	w.str(42, t.Merchant)
}

func (r *reader) terminal() Terminal { return Terminal{ID: r.str(41), Merchant: r.str(42)} }

// F60 is the reserved-private field 60 (LLL n..17): 60.1 transaction type n2 | 60.2 batch n6 |
// 60.3 network management code n3 | further subfields, all one digit string packed as a
// single left-aligned BCD value (that is how the V6 frames come out: 11 digits -> 0011 + 6
// bytes).
type F60 struct {
	Type  string // 60.1: "22" purchase/debit, "00" network management
	Batch uint32 // 60.2: the batch the bank gave at sign-on
	Code  string // 60.3: "000" in financial messages, the network management code otherwise
	More  string // 60.4 onwards, digits, passed through untouched
}

func (f F60) digits() (string, error) {
	if len(f.Type) != 2 || !digits(f.Type) || f.Batch > 999999 ||
		(f.Code != "" && (len(f.Code) != 3 || !digits(f.Code))) || !digits(f.More) ||
		(f.Code == "" && f.More != "") {
		return "", fmt.Errorf("%w: F60 %+v", ErrFormat, f)
	}
	return fmt.Sprintf("%s%06d%s%s", f.Type, f.Batch, f.Code, f.More), nil
}

func parseF60(s string) (F60, error) {
	if len(s) != 2 && len(s) < 8 || len(s) > 8 && len(s) < 11 {
		return F60{}, fmt.Errorf("%w: F60 of %d digits", ErrFormat, len(s))
	}
	f := F60{Type: s[:2]}
	if len(s) >= 8 {
		b, _ := strconv.ParseUint(s[2:8], 10, 32) // digits by the field type
		f.Batch = uint32(b)
	}
	if len(s) >= 11 {
		f.Code, f.More = s[8:11], s[11:]
	}
	return f, nil
}

func (w *writer) f60(f F60) {
	s, err := f.digits()
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	w.str(60, s)
}

func (r *reader) f60() F60 {
	f, err := parseF60(r.str(60))
	if err != nil && r.err == nil {
		r.err = err
	}
	return f
}

// WorkingKeys is the 0810 F62 key block: each key encrypted under the terminal master key
// (ZMK), with the check value the bank computed from the clear key. Nothing here is clear
// key material, but only the check values are ever printed.
type WorkingKeys struct {
	PIK, PIKKCV []byte
	MAK, MAKKCV []byte
	TDK, TDKKCV []byte // only with KeyLayout.TDK
}

// Parse splits an F62 value according to the layout.
func (l KeyLayout) Parse(b []byte) (WorkingKeys, error) {
	if len(b) != l.Len() {
		return WorkingKeys{}, fmt.Errorf("%w: F62 is %d bytes, layout needs %d", ErrFormat, len(b), l.Len())
	}
	next := func() ([]byte, []byte) {
		k, c := b[:l.KeyLen:l.KeyLen], b[l.KeyLen:l.KeyLen+l.KCVLen:l.KeyLen+l.KCVLen]
		b = b[l.KeyLen+l.KCVLen:]
		return append([]byte(nil), k...), append([]byte(nil), c...)
	}
	var k WorkingKeys
	k.PIK, k.PIKKCV = next()
	k.MAK, k.MAKKCV = next()
	if l.TDK {
		k.TDK, k.TDKKCV = next()
	}
	return k, nil
}

// Append writes the keys as an F62 value in the layout.
func (l KeyLayout) Append(dst []byte, k WorkingKeys) ([]byte, error) {
	pairs := [][2][]byte{{k.PIK, k.PIKKCV}, {k.MAK, k.MAKKCV}}
	if l.TDK {
		pairs = append(pairs, [2][]byte{k.TDK, k.TDKKCV})
	}
	for _, p := range pairs {
		if len(p[0]) != l.KeyLen || len(p[1]) != l.KCVLen {
			return dst, fmt.Errorf("%w: key block needs %d+%d bytes per key", ErrFormat, l.KeyLen, l.KCVLen)
		}
		dst = append(append(dst, p[0]...), p[1]...)
	}
	return dst, nil
}

// Verify checks every key's check value before any key is used: kcvOf imports the wrapped
// key (in the security module) and returns the check value of the clear key; it is compared
// with the one the bank sent over the sent value's length. A mismatch is ErrKCV naming the
// key: reject all the keys and sign on again.
func (k WorkingKeys) Verify(kcvOf func(name string, wrapped []byte) ([]byte, error)) error {
	for _, c := range []struct {
		name      string
		key, want []byte
	}{{"PIK", k.PIK, k.PIKKCV}, {"MAK", k.MAK, k.MAKKCV}, {"TDK", k.TDK, k.TDKKCV}} {
		if c.key == nil {
			continue
		}
		got, err := kcvOf(c.name, c.key)
		if err != nil {
			return fmt.Errorf("bank: check %s: %w", c.name, err)
		}
		if len(got) < len(c.want) || !crypt.Equal(got[:len(c.want)], c.want) {
			return fmt.Errorf("%w: %s", ErrKCV, c.name)
		}
	}
	return nil
}

// String shows the check values only.
func (k WorkingKeys) String() string {
	s := fmt.Sprintf("PIK kcv %X, MAK kcv %X", k.PIKKCV, k.MAKKCV)
	if k.TDK != nil {
		s += fmt.Sprintf(", TDK kcv %X", k.TDKKCV)
	}
	return s
}

// LogValue keeps the key blocks out of structured logs.
func (k WorkingKeys) LogValue() slog.Value { return slog.StringValue(k.String()) }

// ---- network management (no MAC) ----

// SignOn (0800, F60.3 = the dialect's sign-on code) asks for a new batch and working keys.
type SignOn struct {
	STAN     uint32
	Terminal Terminal
	Batch    uint32 // the batch we hold; the answer brings the new one
	Operator string // F63, "001"
}

func (m *SignOn) mti(d *Dialect) string { return d.SignOnMTI }
func (m *SignOn) macRequired() bool     { return false }
func (m *SignOn) put(d *Dialect, w *writer) {
	w.num(11, uint64(m.STAN), 6)
	w.terminal(m.Terminal)
	w.f60(F60{Type: "00", Batch: m.Batch, Code: d.SignOnCode})
	w.opt(63, m.Operator)
}
func (m *SignOn) get(d *Dialect, r *reader) {
	r.expect(d.SignOnMTI)
	m.STAN = uint32(r.num(11))
	m.Terminal = r.terminal()
	m.Batch = r.f60().Batch
	m.Operator = r.opt(63)
}

// SignOnResponse (0810) brings the new batch in F60.2 and, when F39 is "00", the working keys
// in F62 in the dialect's layout.
type SignOnResponse struct {
	STAN       uint32
	LocalTime  string // F12 hhmmss
	LocalDate  string // F13 MMDD
	AcquirerID string // F32
	RRN        string // F37
	Code       string // F39
	Terminal   Terminal
	Batch      uint32
	Keys       WorkingKeys
}

func (m *SignOnResponse) mti(d *Dialect) string { return responseMTI(d.SignOnMTI) }
func (m *SignOnResponse) macRequired() bool     { return false }
func (m *SignOnResponse) put(d *Dialect, w *writer) {
	w.num(11, uint64(m.STAN), 6)
	w.opt(12, m.LocalTime)
	w.opt(13, m.LocalDate)
	w.opt(32, m.AcquirerID)
	w.opt(37, m.RRN)
	w.str(39, m.Code)
	w.terminal(m.Terminal)
	w.f60(F60{Type: "00", Batch: m.Batch, Code: d.SignOnCode})
	if m.Keys.PIK != nil {
		b, err := d.Keys.Append(nil, m.Keys)
		if err != nil && w.err == nil {
			w.err = err
		}
		w.bin(62, b)
	}
}
func (m *SignOnResponse) get(d *Dialect, r *reader) {
	r.expect(responseMTI(d.SignOnMTI))
	m.STAN = uint32(r.num(11))
	m.LocalTime, m.LocalDate = r.opt(12), r.opt(13)
	m.AcquirerID, m.RRN = r.opt(32), r.opt(37)
	m.Code = r.str(39)
	m.Terminal = r.terminal()
	m.Batch = r.f60().Batch
	if b := r.optBin(62); b != nil {
		k, err := d.Keys.Parse(b)
		r.fail(err)
		m.Keys = k
	} else if m.Code == "00" {
		r.fail(fmt.Errorf("%w: approved 0810 without F62 keys", ErrMissing))
	}
}

// NetRequest is the body of an echo or sign-off request: F11, F41, F42, F60 = 00|batch|code.
type NetRequest struct {
	STAN     uint32
	Terminal Terminal
	Batch    uint32
}

// NetResponse is the body of an echo or sign-off response.
type NetResponse struct {
	STAN      uint32
	LocalTime string // F12, optional
	LocalDate string // F13, optional
	Code      string // F39
	Terminal  Terminal
	Batch     uint32
}

func (n *NetRequest) put(w *writer, code string) {
	w.num(11, uint64(n.STAN), 6)
	w.terminal(n.Terminal)
	w.f60(F60{Type: "00", Batch: n.Batch, Code: code})
}

func (n *NetRequest) get(r *reader, mti string) {
	r.expect(mti)
	n.STAN = uint32(r.num(11))
	n.Terminal = r.terminal()
	n.Batch = r.f60().Batch
}

func (n *NetResponse) put(w *writer, code string) {
	w.num(11, uint64(n.STAN), 6)
	w.opt(12, n.LocalTime)
	w.opt(13, n.LocalDate)
	w.str(39, n.Code)
	w.terminal(n.Terminal)
	w.f60(F60{Type: "00", Batch: n.Batch, Code: code})
}

func (n *NetResponse) get(r *reader, mti string) {
	r.expect(mti)
	n.STAN = uint32(r.num(11))
	n.LocalTime, n.LocalDate = r.opt(12), r.opt(13)
	n.Code = r.str(39)
	n.Terminal = r.terminal()
	n.Batch = r.f60().Batch
}

// Echo (EchoMTI, F60.3 = EchoCode, "301") keeps the link proven alive; the FEP sends it on an
// idle link, the bank answers with EchoResponse.
type Echo struct{ NetRequest }

// EchoResponse answers Echo.
type EchoResponse struct{ NetResponse }

// SignOff (SignOffMTI, F60.3 = "002") ends the session (day cut-over, shutdown).
type SignOff struct{ NetRequest }

// SignOffResponse answers SignOff.
type SignOffResponse struct{ NetResponse }

func (m *Echo) mti(d *Dialect) string                { return d.EchoMTI }
func (m *Echo) macRequired() bool                    { return false }
func (m *Echo) put(d *Dialect, w *writer)            { m.NetRequest.put(w, d.EchoCode) }
func (m *Echo) get(d *Dialect, r *reader)            { m.NetRequest.get(r, d.EchoMTI) }
func (m *EchoResponse) mti(d *Dialect) string        { return responseMTI(d.EchoMTI) }
func (m *EchoResponse) macRequired() bool            { return false }
func (m *EchoResponse) put(d *Dialect, w *writer)    { m.NetResponse.put(w, d.EchoCode) }
func (m *EchoResponse) get(d *Dialect, r *reader)    { m.NetResponse.get(r, responseMTI(d.EchoMTI)) }
func (m *SignOff) mti(d *Dialect) string             { return d.SignOffMTI }
func (m *SignOff) macRequired() bool                 { return false }
func (m *SignOff) put(d *Dialect, w *writer)         { m.NetRequest.put(w, d.SignOffCode) }
func (m *SignOff) get(d *Dialect, r *reader)         { m.NetRequest.get(r, d.SignOffMTI) }
func (m *SignOffResponse) mti(d *Dialect) string     { return responseMTI(d.SignOffMTI) }
func (m *SignOffResponse) macRequired() bool         { return false }
func (m *SignOffResponse) put(d *Dialect, w *writer) { m.NetResponse.put(w, d.SignOffCode) }
func (m *SignOffResponse) get(d *Dialect, r *reader) {
	m.NetResponse.get(r, responseMTI(d.SignOffMTI))
}

// ---- financial (MACed) ----

// Debit (0200) debits the bank card for a load. Amount is in fen. Optional fields are left
// out when empty.
type Debit struct {
	PAN         string // F2
	ProcCode    string // F3, "000000"
	Amount      int64  // F4, fen
	STAN        uint32 // F11
	Expiry      string // F14 YYMM, optional
	EntryMode   string // F22, e.g. "021" magstripe with PIN, "051" contact IC with PIN
	CardSeq     string // F23, IC cards
	Condition   string // F25, "00"
	PINCapture  string // F26, "12" when a PIN block is present
	Track2      string // F35, 'D' separator
	Track3      string // F36
	Terminal    Terminal
	Currency    string // F49, "156"
	PINBlock    []byte // F52, under the bank's PIK (translated in the security module)
	SecurityCtl string // F53, "2600000000000000"
	ICC         []byte // F55
	F60         F60    // Type "22", Batch, Code "000"
	Private     string // F63, e.g. the load's order reference
}

func (m *Debit) mti(*Dialect) string { return "0200" }
func (m *Debit) macRequired() bool   { return true }
func (m *Debit) put(_ *Dialect, w *writer) {
	w.str(2, m.PAN)
	w.str(3, m.ProcCode)
	w.amount(4, m.Amount)
	w.num(11, uint64(m.STAN), 6)
	w.opt(14, m.Expiry)
	w.str(22, m.EntryMode)
	w.opt(23, m.CardSeq)
	w.str(25, m.Condition)
	w.opt(26, m.PINCapture)
	w.opt(35, m.Track2)
	w.opt(36, m.Track3)
	w.terminal(m.Terminal)
	w.str(49, m.Currency)
	w.optBin(52, m.PINBlock)
	w.opt(53, m.SecurityCtl)
	w.optBin(55, m.ICC)
	w.f60(m.F60)
	w.opt(63, m.Private)
}
func (m *Debit) get(_ *Dialect, r *reader) {
	r.expect("0200")
	m.PAN, m.ProcCode, m.Amount = r.str(2), r.str(3), r.amount(4)
	m.STAN = uint32(r.num(11))
	m.Expiry, m.EntryMode, m.CardSeq = r.opt(14), r.str(22), r.opt(23)
	m.Condition, m.PINCapture = r.str(25), r.opt(26)
	m.Track2, m.Track3 = r.opt(35), r.opt(36)
	m.Terminal = r.terminal()
	m.Currency = r.str(49)
	m.PINBlock, m.SecurityCtl, m.ICC = r.optBin(52), r.opt(53), r.optBin(55)
	m.F60 = r.f60()
	m.Private = r.opt(63)
	r.mac()
}

// String masks the PAN and leaves out track, PIN block and ICC data.
func (m *Debit) String() string {
	return fmt.Sprintf("0200 STAN %06d term %s pan %s amount %d fen batch %06d", m.STAN,
		m.Terminal.ID, maskPAN(m.PAN), m.Amount, m.F60.Batch)
}

// LogValue is String for slog, so a JSON handler cannot print the PAN or PIN block.
func (m *Debit) LogValue() slog.Value { return slog.StringValue(m.String()) }

// Response builds the 0210 skeleton a bank returns for this debit: echoed fields set, the
// bank's own (time, date, settlement date, RRN, auth code) left to the caller.
func (m *Debit) Response(code string) DebitResponse {
	return DebitResponse{PAN: m.PAN, ProcCode: m.ProcCode, Amount: m.Amount, STAN: m.STAN,
		Condition: m.Condition, Code: code, Terminal: m.Terminal, Currency: m.Currency, F60: m.F60}
}

// DebitResponse (0210) is the bank's answer; Code (F39) says what happened (Lookup).
// SettleDate (F15) is kept for the T+2 reconciliation.
type DebitResponse struct {
	PAN        string // F2, optional
	ProcCode   string // F3
	Amount     int64  // F4
	STAN       uint32 // F11
	LocalTime  string // F12 hhmmss
	LocalDate  string // F13 MMDD
	Expiry     string // F14, optional
	SettleDate string // F15 MMDD, optional
	Condition  string // F25
	AcquirerID string // F32
	RRN        string // F37
	AuthCode   string // F38, optional
	Code       string // F39
	Terminal   Terminal
	AddlData   string // F44, optional
	Currency   string // F49
	ICC        []byte // F55, optional
	F60        F60
	Private    string // F63, optional
}

func (m *DebitResponse) mti(*Dialect) string { return "0210" }
func (m *DebitResponse) macRequired() bool   { return true }
func (m *DebitResponse) put(_ *Dialect, w *writer) {
	w.opt(2, m.PAN)
	w.str(3, m.ProcCode)
	w.amount(4, m.Amount)
	w.num(11, uint64(m.STAN), 6)
	w.str(12, m.LocalTime)
	w.str(13, m.LocalDate)
	w.opt(14, m.Expiry)
	w.opt(15, m.SettleDate)
	w.str(25, m.Condition)
	w.opt(32, m.AcquirerID)
	w.str(37, m.RRN)
	w.opt(38, m.AuthCode)
	w.str(39, m.Code)
	w.terminal(m.Terminal)
	w.opt(44, m.AddlData)
	w.str(49, m.Currency)
	w.optBin(55, m.ICC)
	w.f60(m.F60)
	w.opt(63, m.Private)
}
func (m *DebitResponse) get(_ *Dialect, r *reader) {
	r.expect("0210")
	m.PAN, m.ProcCode, m.Amount = r.opt(2), r.str(3), r.amount(4)
	m.STAN = uint32(r.num(11))
	m.LocalTime, m.LocalDate = r.str(12), r.str(13)
	m.Expiry, m.SettleDate = r.opt(14), r.opt(15)
	m.Condition, m.AcquirerID = r.str(25), r.opt(32)
	m.RRN, m.AuthCode, m.Code = r.str(37), r.opt(38), r.str(39)
	m.Terminal = r.terminal()
	m.AddlData, m.Currency, m.ICC = r.opt(44), r.str(49), r.optBin(55)
	m.F60 = r.f60()
	m.Private = r.opt(63)
	r.mac()
}

// Outcome is the response code's meaning and what to do about it.
func (m *DebitResponse) Outcome() ResponseCode { return Lookup(m.Code) }

// String masks the PAN.
func (m *DebitResponse) String() string {
	return fmt.Sprintf("0210 STAN %06d term %s pan %s amount %d fen code %s rrn %s", m.STAN,
		m.Terminal.ID, maskPAN(m.PAN), m.Amount, m.Code, m.RRN)
}

// LogValue is String for slog.
func (m *DebitResponse) LogValue() slog.Value { return slog.StringValue(m.String()) }

// Reversal reasons for F39 of a 0400 (card-and-host.md 7.7).
const (
	ReasonTimeout  = "98" // no response within the timeout
	ReasonFormat   = "96" // response unusable: format or system error
	ReasonMAC      = "A0" // response MAC did not verify
	ReasonTerminal = "06" // anything else, e.g. the load could not go on after approval
)

// Reversal (ReversalMTI; RepeatMTI when Repeat) undoes a debit. It carries the ORIGINAL
// debit's STAN, amount, processing code and F60, and the reason in F39. Build it with
// ReversalOf.
type Reversal struct {
	Repeat    bool   // send as the repeat MTI (every send after the first)
	PAN       string // F2
	ProcCode  string // F3
	Amount    int64  // F4
	STAN      uint32 // F11 of the original 0200
	Expiry    string // F14, optional
	EntryMode string // F22
	CardSeq   string // F23, optional
	Condition string // F25
	RRN       string // F37, when the 0210 was received
	AuthCode  string // F38, when the 0210 had one
	Reason    string // F39
	Terminal  Terminal
	Currency  string // F49
	ICC       []byte // F55, optional
	F60       F60
}

// ReversalOf builds the reversal of d with the given reason.
func ReversalOf(d *Debit, reason string) Reversal {
	return Reversal{PAN: d.PAN, ProcCode: d.ProcCode, Amount: d.Amount, STAN: d.STAN,
		Expiry: d.Expiry, EntryMode: d.EntryMode, CardSeq: d.CardSeq, Condition: d.Condition,
		Reason: reason, Terminal: d.Terminal, Currency: d.Currency, ICC: d.ICC, F60: d.F60}
}

func (m *Reversal) mti(d *Dialect) string {
	if m.Repeat {
		return d.RepeatMTI
	}
	return d.ReversalMTI
}
func (m *Reversal) macRequired() bool { return true }
func (m *Reversal) put(_ *Dialect, w *writer) {
	w.str(2, m.PAN)
	w.str(3, m.ProcCode)
	w.amount(4, m.Amount)
	w.num(11, uint64(m.STAN), 6)
	w.opt(14, m.Expiry)
	w.str(22, m.EntryMode)
	w.opt(23, m.CardSeq)
	w.str(25, m.Condition)
	w.opt(37, m.RRN)
	w.opt(38, m.AuthCode)
	w.str(39, m.Reason)
	w.terminal(m.Terminal)
	w.str(49, m.Currency)
	w.optBin(55, m.ICC)
	w.f60(m.F60)
}
func (m *Reversal) get(d *Dialect, r *reader) {
	r.expect(d.ReversalMTI, d.RepeatMTI)
	m.Repeat = r.f.MTI == d.RepeatMTI
	m.PAN, m.ProcCode, m.Amount = r.str(2), r.str(3), r.amount(4)
	m.STAN = uint32(r.num(11))
	m.Expiry, m.EntryMode, m.CardSeq = r.opt(14), r.str(22), r.opt(23)
	m.Condition, m.RRN, m.AuthCode = r.str(25), r.opt(37), r.opt(38)
	m.Reason = r.str(39)
	m.Terminal = r.terminal()
	m.Currency, m.ICC = r.str(49), r.optBin(55)
	m.F60 = r.f60()
	r.mac()
}

// String masks the PAN.
func (m *Reversal) String() string {
	return fmt.Sprintf("reversal STAN %06d term %s pan %s amount %d fen reason %s repeat %t",
		m.STAN, m.Terminal.ID, maskPAN(m.PAN), m.Amount, m.Reason, m.Repeat)
}

// LogValue is String for slog.
func (m *Reversal) LogValue() slog.Value { return slog.StringValue(m.String()) }

// Response builds the answer skeleton a bank returns for this reversal.
func (m *Reversal) Response(code string) ReversalResponse {
	return ReversalResponse{PAN: m.PAN, ProcCode: m.ProcCode, Amount: m.Amount, STAN: m.STAN,
		Condition: m.Condition, Code: code, Terminal: m.Terminal, F60: m.F60}
}

// ReversalResponse (0410, or 0430 for 0420 dialects) ends a reversal whatever its F39.
type ReversalResponse struct {
	PAN        string // F2, optional
	ProcCode   string // F3
	Amount     int64  // F4
	STAN       uint32 // F11 (the original's)
	LocalTime  string // F12
	LocalDate  string // F13
	SettleDate string // F15, optional
	Condition  string // F25
	AcquirerID string // F32
	RRN        string // F37
	Code       string // F39
	Terminal   Terminal
	F60        F60
}

func (m *ReversalResponse) mti(d *Dialect) string { return responseMTI(d.ReversalMTI) }
func (m *ReversalResponse) macRequired() bool     { return true }
func (m *ReversalResponse) put(_ *Dialect, w *writer) {
	w.opt(2, m.PAN)
	w.str(3, m.ProcCode)
	w.amount(4, m.Amount)
	w.num(11, uint64(m.STAN), 6)
	w.str(12, m.LocalTime)
	w.str(13, m.LocalDate)
	w.opt(15, m.SettleDate)
	w.str(25, m.Condition)
	w.opt(32, m.AcquirerID)
	w.str(37, m.RRN)
	w.str(39, m.Code)
	w.terminal(m.Terminal)
	w.f60(m.F60)
}
func (m *ReversalResponse) get(d *Dialect, r *reader) {
	r.expect(responseMTI(d.ReversalMTI))
	m.PAN, m.ProcCode, m.Amount = r.opt(2), r.str(3), r.amount(4)
	m.STAN = uint32(r.num(11))
	m.LocalTime, m.LocalDate, m.SettleDate = r.str(12), r.str(13), r.opt(15)
	m.Condition, m.AcquirerID, m.RRN = r.str(25), r.opt(32), r.str(37)
	m.Code = r.str(39)
	m.Terminal = r.terminal()
	m.F60 = r.f60()
	r.mac()
}

// String masks the PAN.
func (m *ReversalResponse) String() string {
	return fmt.Sprintf("reversal response STAN %06d term %s pan %s amount %d fen code %s",
		m.STAN, m.Terminal.ID, maskPAN(m.PAN), m.Amount, m.Code)
}

// LogValue is String for slog.
func (m *ReversalResponse) LogValue() slog.Value { return slog.StringValue(m.String()) }

// mac insists a financial message carries F64; whether it verifies is Frame.VerifyMAC's job.
func (r *reader) mac() {
	if !r.f.Has(64) {
		r.fail(fmt.Errorf("%w: %s", ErrNoMAC, r.f.MTI))
	}
}

// trimID is how terminal ids compare: the wire pads ans fields with spaces.
func trimID(s string) string { return strings.TrimRight(s, " ") }
