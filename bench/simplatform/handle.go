package simplatform

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/crypt"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/platform"
)

// placeholderRef addresses a refusal whose request body could not be read; the FEP matches
// answers by sequence number, so the reference only has to be well-formed.
const placeholderRef = "00000000000000000000"

// echoMAC returns the MAC the frame already carries. It lets Unpack decode an
// unauthenticated body for one purpose only: to echo its reference number in an unsigned
// refusal. Nothing read through it touches state.
type echoMAC [8]byte

func (e echoMAC) MAC([]byte) ([8]byte, error) { return e, nil }

// handle answers one request frame; nil means no answer (outage "ignore", or bytes that
// cannot be addressed at all).
func (s *Server) handle(b []byte) []byte {
	now := s.now()
	if s.outage(now) == OutageIgnore {
		return nil
	}
	h, err := platform.PeekHeader(b)
	if err != nil {
		return s.refuseRaw(b, err)
	}
	if h.Type.IsResponse() {
		s.log.Warn("sim platform: response type from the FEP, dropped", "type", h.Type.String())
		return nil
	}
	if h.Type == platform.TypeSignIn {
		return s.signIn(h, b, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return s.unsigned(h, b, platform.NotSignedIn, "no session: sign in first")
	}
	if h.Batch != s.sess.batch {
		return s.unsigned(h, b, platform.StaleKey, fmt.Sprintf("batch %d is not the current batch", h.Batch))
	}
	key := s.sess.mac
	_, m, err := platform.Unpack(b, key)
	if errors.Is(err, platform.ErrMAC) {
		return s.unsigned(h, b, platform.MACError, "MAC does not verify under the batch's dynamic key")
	}
	if err != nil {
		return s.unsigned(h, nil, platform.FormatError, trim(err.Error()))
	}
	resp := responseFor(m)
	code, why := platform.SystemError, ""
	switch {
	case s.broken != nil:
		why = "journal unavailable"
	case s.outageLocked(now) == OutageRefuse:
		why = "service outage"
	default:
		code, why = s.dispatch(h, m, resp, now)
	}
	s.log.Info("sim platform: request", "type", h.Type.String(), "seq", h.Seq, "batch", h.Batch, "result", string(code), "why", why)
	if h.Type == platform.TypeSignOut && code == platform.OK {
		s.sess = nil // answered under the key it closes
	}
	return s.signed(h, h.Batch, code, why, resp, key, now)
}

func (s *Server) outageLocked(now time.Time) string {
	if s.outMode == OutageNone || now.Before(s.outFrom) || (!s.outUntil.IsZero() && !now.Before(s.outUntil)) {
		return OutageNone
	}
	return s.outMode
}

func (s *Server) dispatch(h platform.Header, m platform.Message, resp platform.Message, now time.Time) (platform.Code, string) {
	switch m := m.(type) {
	case *platform.SignOut:
		if err := s.commit(&record{Ev: evSignOut, At: now, Batch: h.Batch}); err != nil {
			return platform.SystemError, "journal"
		}
		return platform.OK, ""
	case *platform.Heartbeat:
		return platform.OK, ""
	case *platform.CardCheck:
		return s.cardCheck(h, m, resp.(*platform.CardCheckResponse), now)
	case *platform.Book:
		return s.book(h, m, resp.(*platform.BookResponse), now)
	case *platform.Confirm:
		return s.confirm(m, now)
	case *platform.PendingQuery:
		return s.pending(m, resp.(*platform.PendingResponse))
	case *platform.Rewrite:
		return s.rewrite(h, m, resp.(*platform.RewriteResponse), now)
	case *platform.Resolve:
		return s.resolve(h, m, resp.(*platform.ResolveResponse), now)
	}
	return platform.FormatError, "unexpected message"
}

func (s *Server) signIn(h platform.Header, b []byte, now time.Time) []byte {
	_, m, err := platform.UnpackAs[*platform.SignIn](b, s.signKey)
	if errors.Is(err, platform.ErrMAC) {
		return s.unsigned(h, nil, platform.AuthRefused, "MAC does not verify under the sign-in key")
	}
	if err != nil {
		return s.unsigned(h, nil, platform.FormatError, trim(err.Error()))
	}
	resp := &platform.SignInResponse{}
	sent, _ := h.Time.Time() // PeekHeader checked it
	skew := now.Sub(sent)
	var code platform.Code
	var why string
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := h.Batch
	switch {
	case h.Batch != 0:
		code, why = platform.FormatError, "SIGN-IN with a batch number"
	case skew > s.cfg.SignInSkew || skew < -s.cfg.SignInSkew:
		code, why = platform.AuthRefused, fmt.Sprintf("header time off by %v", skew.Round(time.Second))
	case !s.authCodeKnown(m.AuthCode):
		code, why = platform.AuthRefused, "auth code unknown"
	case s.broken != nil:
		code, why = platform.SystemError, "journal unavailable"
	default:
		code, batch, why = s.openSession(resp, now)
	}
	s.log.Info("sim platform: sign-in", "auth_code", m.AuthCode, "result", string(code), "batch", batch, "why", why)
	return s.signed(h, batch, code, why, resp, s.signKey, now)
}

func (s *Server) authCodeKnown(a string) bool {
	for _, c := range s.cfg.AuthCodes {
		if crypt.Equal([]byte(c), []byte(a)) {
			return true
		}
	}
	return false
}

// openSession issues the next batch and a fresh dynamic key; the old batch stops at once.
func (s *Server) openSession(resp *platform.SignInResponse, now time.Time) (platform.Code, uint32, string) {
	dk := make([]byte, 16)
	for {
		if _, err := rand.Read(dk); err != nil {
			return platform.SystemError, 0, "random"
		}
		if !crypt.Equal(dk[:8], dk[8:]) {
			break
		}
	}
	block, kcv, err := platform.WrapDynamicKey(s.ltk, dk)
	if err != nil {
		return platform.SystemError, 0, "wrap"
	}
	batch := s.j.lastBatch() + 1
	if err := s.commit(&record{Ev: evSignIn, At: now, Batch: batch, DKKCV: hexU(kcv[:])}); err != nil {
		return platform.SystemError, 0, "journal"
	}
	s.sess = &session{batch: batch, mac: platform.SoftMAC(dk)}
	resp.Key = &platform.WrappedKey{Block: block, KCV: kcv}
	s.log.Info("sim platform: new batch", "batch", batch, "dk_kcv", hexU(kcv[:]))
	return platform.OK, batch, ""
}

func (s *Server) loadRequest(cardHex string, in Init, amount int64) hsm.LoadRequest {
	return hsm.LoadRequest{MasterLoadKey: keyMDLK, Factors: s.factors(cardHex), OldBalance: uint32(in.OldBalance),
		Amount: uint32(amount), Serial: in.Serial, Random: in.Random, TermID: in.TermID, MAC1: in.MAC1}
}

func (s *Server) factors(cardHex string) [][]byte {
	serial := mustHex(cardHex)
	if s.factor != nil {
		return [][]byte{s.factor, serial}
	}
	return [][]byte{serial}
}

func initOf(c platform.CardInit) Init {
	return Init{Serial: c.Serial, Random: c.Random, TermID: c.TermID, OldBalance: int64(c.OldBalance),
		KeyIndex: c.KeyIndex, KeyVersion: c.KeyVersion, AlgID: c.AlgID, MAC1: c.MAC1}
}

// verifyMAC1 maps the security module's answer to a result code.
func (s *Server) verifyMAC1(cardHex string, in Init, amount int64) (platform.Code, string) {
	err := s.hsm.VerifyMAC1(s.loadRequest(cardHex, in, amount))
	switch {
	case err == nil:
		return platform.OK, ""
	case errors.Is(err, hsm.ErrMACMismatch):
		return platform.MAC1Invalid, "MAC1 does not verify"
	}
	s.log.Error("sim platform: MAC1", "err", err)
	return platform.SystemError, "security module"
}

// issueMAC2 computes MAC2 for in at the platform's own host date/time.
func (s *Server) issueMAC2(cardHex string, in Init, amount int64, now time.Time) ([4]byte, [7]byte, error) {
	ht := platform.HostTimeOf(now.In(chinaTime))
	mac2, err := s.hsm.IssueMAC2(s.loadRequest(cardHex, in, amount), ht)
	return mac2, ht, err
}

func (s *Server) verifyTAC(l *Load, in *Init, tac [4]byte) error {
	return s.hsm.VerifyTAC(hsm.TACInput{MasterTACKey: keyMTK, Factors: s.factors(l.Card),
		NewBalance: uint32(in.OldBalance + l.Amount), Amount: uint32(l.Amount), Serial: in.Serial,
		TermID: in.TermID, HostDateTime: in.HostTime}, tac)
}

func tacCode(err error) (platform.Code, string) {
	if errors.Is(err, hsm.ErrMACMismatch) {
		return platform.TACInvalid, "TAC does not verify"
	}
	return platform.SystemError, "security module"
}

func (s *Server) cardCheck(h platform.Header, m *platform.CardCheck, resp *platform.CardCheckResponse, now time.Time) (platform.Code, string) {
	c := m.Card
	cardHex := hexU(c.AppSerial[:])
	kiosk := [3]string{m.Kiosk.Terminal, m.Kiosk.Trace, m.Kiosk.Date}
	in := initOf(c)
	if ref, ok := s.j.byKiosk[kiosk]; ok {
		l := s.j.loads[ref]
		first := l.Inits[0]
		first.MAC2, first.HostTime, first.Issued, first.IssuedAt = [4]byte{}, [7]byte{}, false, time.Time{}
		if l.Card != cardHex || l.Amount != int64(c.Amount) || l.BankCode != m.BankCode || first != in {
			return platform.Duplicate, "kiosk terminal + trace + date seen with different data"
		}
		resp.Reference = ref
		return platform.OK, "repeated CARD CHECK"
	}
	if c.Amount == 0 || int64(c.Amount) > s.cfg.MaxAmount {
		return platform.AmountInvalid, fmt.Sprintf("amount %d: want 1..%d fen", c.Amount, s.cfg.MaxAmount)
	}
	if c.AlgID != 0 {
		return platform.CardUnknown, fmt.Sprintf("algorithm %02X: only 3DES (00) cards are ours", c.AlgID)
	}
	if code, why := s.verifyMAC1(cardHex, in, int64(c.Amount)); code != platform.OK {
		return code, why
	}
	if s.blocked[cardHex] {
		return platform.CardBlocked, "card blocked"
	}
	if int64(c.OldBalance)+int64(c.Amount) > s.cfg.Ceiling {
		return platform.OverCeiling, fmt.Sprintf("%d + %d over the ceiling %d", c.OldBalance, c.Amount, s.cfg.Ceiling)
	}
	if p := s.j.pendingFor(cardHex); len(p) > 0 {
		return platform.PendingExists, fmt.Sprintf("%d booked load(s) not written, first %s", len(p), p[0].Ref)
	}
	ref := fmt.Sprintf("%s%012d", now.In(chinaTime).Format("20060102"), s.j.lastSeq+1)
	rec := &record{Ev: evCheck, At: now, Batch: h.Batch, Ref: ref, Card: cardHex, Amount: int64(c.Amount),
		BankCode: m.BankCode, Kiosk: &kioskRec{kiosk[0], kiosk[1], kiosk[2]}, Init: encodeInit(in)}
	if err := s.commit(rec); err != nil {
		return platform.SystemError, "journal"
	}
	resp.Reference = ref
	return platform.OK, ""
}

func (s *Server) book(h platform.Header, m *platform.Book, resp *platform.BookResponse, now time.Time) (platform.Code, string) {
	l, ok := s.j.loads[m.Reference]
	if !ok {
		return platform.UnknownRef, "reference unknown"
	}
	if int64(m.Amount) != l.Amount {
		return platform.AmountInvalid, fmt.Sprintf("amount %d, the reference's is %d", m.Amount, l.Amount)
	}
	first := &l.Inits[0]
	if l.Booked { // idempotent: the MAC2 of the booking, even after re-writes
		resp.Issued = &platform.Issued{MAC2: first.MAC2, HostTime: first.HostTime}
		return platform.OK, "already booked"
	}
	if now.Sub(l.CheckedAt) > s.cfg.CheckTTL {
		return platform.UnknownRef, "reference expired unbooked"
	}
	mac2, ht, err := s.issueMAC2(l.Card, *first, l.Amount, now)
	if err != nil {
		s.log.Error("sim platform: MAC2", "ref", l.Ref, "err", err)
		return platform.SystemError, "security module"
	}
	rec := &record{Ev: evBook, At: now, Batch: h.Batch, Ref: l.Ref, MAC2: hexU(mac2[:]), HostTime: hostTimeString(ht),
		RRN: m.BankRRN, Auth: m.BankAuth, Settle: m.SettleDate}
	if err := s.commit(rec); err != nil {
		return platform.SystemError, "journal"
	}
	resp.Issued = &platform.Issued{MAC2: mac2, HostTime: ht}
	return platform.OK, ""
}

func (s *Server) confirm(m *platform.Confirm, now time.Time) (platform.Code, string) {
	l, ok := s.j.loads[m.Reference]
	if !ok {
		return platform.UnknownRef, "reference unknown"
	}
	if !l.Booked {
		return platform.StateConflict, "reference not booked"
	}
	if l.Write == WriteOK {
		if m.Status == platform.Written && (!l.HasTAC || l.TAC == m.TAC) {
			return platform.OK, "already S"
		}
		return platform.StateConflict, "write status S is final"
	}
	rec := &record{Ev: evConfirm, At: now, Ref: l.Ref, Write: string(rune(m.Status))}
	switch m.Status {
	case platform.Written:
		if err := s.verifyTAC(l, l.Last(), m.TAC); err != nil {
			return tacCode(err)
		}
		rec.TAC = hexU(m.TAC[:])
	case platform.Failed, platform.Unknown:
		if l.Write == byte(m.Status) {
			return platform.OK, "same status again"
		}
	}
	if err := s.commit(rec); err != nil {
		return platform.SystemError, "journal"
	}
	return platform.OK, ""
}

// maxPending is the most loads one PENDING RESPONSE lists (platform.md 5).
const maxPending = 20

func (s *Server) pending(m *platform.PendingQuery, resp *platform.PendingResponse) (platform.Code, string) {
	for _, l := range s.j.pendingFor(hexU(m.AppSerial[:])) {
		if len(resp.Loads) == maxPending {
			break
		}
		last := l.Last()
		st := platform.Unknown // booked and not confirmed is U: the card may hold the MAC2
		if l.Write == WriteFailed {
			st = platform.Failed
		}
		resp.Loads = append(resp.Loads, platform.Pending{Reference: l.Ref, Amount: uint32(l.Amount), Serial: last.Serial,
			TermID: last.TermID, HostTime: last.HostTime, MAC2: last.MAC2, OldBalance: uint32(last.OldBalance), Status: st})
	}
	return platform.OK, ""
}

func (s *Server) rewrite(h platform.Header, m *platform.Rewrite, resp *platform.RewriteResponse, now time.Time) (platform.Code, string) {
	l, ok := s.j.loads[m.Reference]
	if !ok {
		return platform.UnknownRef, "reference unknown"
	}
	cardHex := hexU(m.Card.AppSerial[:])
	switch {
	case !l.Booked:
		return platform.StateConflict, "reference not booked"
	case l.Write == WriteOK:
		return platform.StateConflict, "load already written (S)"
	case l.Card != cardHex:
		return platform.StateConflict, "reference belongs to another card"
	case int64(m.Card.Amount) != l.Amount:
		return platform.AmountInvalid, fmt.Sprintf("amount %d, the reference's is %d", m.Card.Amount, l.Amount)
	}
	for _, in := range l.Inits { // idempotent per (reference, serial, random)
		if in.Issued && in.Serial == m.Card.Serial && in.Random == m.Card.Random {
			resp.Issued = &platform.Issued{MAC2: in.MAC2, HostTime: in.HostTime}
			return platform.OK, "repeated REWRITE"
		}
	}
	last := l.Last()
	// F is no licence to write with any serial: a CONFIRM F speaks of the MAC2 it followed,
	// and a later MAC2 (a re-write) may have reached the card since. Whenever the serial
	// moved, the card's evidence decides first (RESOLVE-U), for F as for U.
	if !l.NotApplied && m.Card.Serial != last.Serial {
		return platform.SerialMoved, fmt.Sprintf("serial %d, the load's is %d: send RESOLVE-U first", m.Card.Serial, last.Serial)
	}
	if m.Card.AlgID != 0 {
		return platform.CardUnknown, "algorithm not 3DES"
	}
	in := initOf(m.Card)
	if code, why := s.verifyMAC1(cardHex, in, l.Amount); code != platform.OK {
		return code, why
	}
	if in.OldBalance+l.Amount > s.cfg.Ceiling {
		return platform.OverCeiling, fmt.Sprintf("%d + %d over the ceiling %d", in.OldBalance, l.Amount, s.cfg.Ceiling)
	}
	mac2, ht, err := s.issueMAC2(cardHex, in, l.Amount, now)
	if err != nil {
		s.log.Error("sim platform: MAC2", "ref", l.Ref, "err", err)
		return platform.SystemError, "security module"
	}
	rec := &record{Ev: evRewrite, At: now, Batch: h.Batch, Ref: l.Ref, Init: encodeInit(in), MAC2: hexU(mac2[:]),
		HostTime: hostTimeString(ht)}
	if err := s.commit(rec); err != nil {
		return platform.SystemError, "journal"
	}
	resp.Issued = &platform.Issued{MAC2: mac2, HostTime: ht}
	return platform.OK, ""
}

// resolve decides a U load from the card's evidence (spec 4, platform.md 5). Its rule: an
// online serial is consumed by at most one credit, and only MAC2s this platform issued can
// credit a card.
func (s *Server) resolve(h platform.Header, m *platform.Resolve, resp *platform.ResolveResponse, now time.Time) (platform.Code, string) {
	l, ok := s.j.loads[m.Reference]
	if !ok {
		return platform.UnknownRef, "reference unknown"
	}
	switch {
	case !l.Booked:
		return platform.StateConflict, "reference not booked"
	case l.Card != hexU(m.AppSerial[:]):
		return platform.StateConflict, "reference belongs to another card"
	case l.Write == WriteOK:
		resp.Outcome = platform.Applied
		return platform.OK, "already S"
	}
	// F is resolved like U: the F may be stale (see rewrite).
	last := l.Last()
	sr, obs := int(last.Serial), int(m.Observed)
	rec := &record{Ev: evResolve, At: now, Batch: h.Batch, Ref: l.Ref, Method: string(rune(m.Method)), Serial: &obs}
	var why string
	switch {
	case obs == sr:
		rec.Outcome, why = "N", "online serial unchanged"
	case obs < sr:
		return platform.StateConflict, fmt.Sprintf("observed serial %d below the load's %d", obs, sr)
	case m.Method == platform.ByProve:
		if obs != sr+1 {
			return platform.StateConflict, "805A proves serial S only when S' = S+1"
		}
		rec.Outcome, why = "N", "serial consumed by a credit with another MAC2"
		for i := range l.Inits {
			in := &l.Inits[i]
			if in.Issued && int(in.Serial) == sr && in.MAC2 == m.MAC2 {
				if err := s.verifyTAC(l, in, m.TAC); err != nil {
					return tacCode(err)
				}
				rec.Outcome, rec.TAC, why = "Y", hexU(m.TAC[:]), "805A shows our MAC2, TAC verifies"
			}
		}
	case m.Method == platform.ByLog:
		r, err := card.ParseLogRecord(m.Record[:])
		if err != nil || int(r.Serial) != sr {
			return platform.StateConflict, "0018 record is not the one with the load's serial"
		}
		rec.Outcome, why = "N", "0018 shows a different load with serial S"
		for _, in := range l.Inits {
			if in.Issued && int(in.Serial) == sr && r.Type == card.TxnTypeEPLoad && int64(r.Amount) == l.Amount &&
				r.TermID == in.TermID && r.DateTime == in.HostTime {
				rec.Outcome, why = "Y", "0018 shows our load with serial S"
			}
		}
	default:
		out, reason := s.ledger(l, last.Serial)
		if out == "" {
			return platform.StateConflict, "ledger cannot decide: manual handling (" + reason + ")"
		}
		rec.Outcome, why = out, reason
	}
	if rec.Outcome == "N" && l.NotApplied {
		resp.Outcome = platform.NotApplied
		return platform.OK, why
	}
	if err := s.commit(rec); err != nil {
		return platform.SystemError, "journal"
	}
	resp.Outcome = platform.Outcome(rec.Outcome[0])
	return platform.OK, why
}

// ledger decides from the MAC2s issued and TACs verified for (card, serial): another load
// confirmed S with that serial used it (N); if every MAC2 ever issued for it is this load's,
// the credit that consumed it was ours (Y); otherwise it cannot tell ("").
func (s *Server) ledger(l *Load, serial uint16) (string, string) {
	others := 0
	for _, ref := range s.j.order {
		o := s.j.loads[ref]
		if o == l || o.Card != l.Card {
			continue
		}
		for _, in := range o.Inits {
			if !in.Issued || in.Serial != serial {
				continue
			}
			others++
			if o.Write == WriteOK && o.Last().Serial == serial {
				return "N", "ledger: serial consumed by " + o.Ref
			}
		}
	}
	if others == 0 {
		return "Y", "ledger: only this load's MAC2s were issued for the serial"
	}
	return "", fmt.Sprintf("%d other MAC2(s) issued for the serial, none confirmed", others)
}

// responseFor builds the response to m with the fields every answer must echo.
func responseFor(m platform.Message) platform.Message {
	switch m := m.(type) {
	case *platform.SignIn:
		return &platform.SignInResponse{}
	case *platform.SignOut:
		return &platform.SignOutResponse{}
	case *platform.Heartbeat:
		return &platform.HeartbeatResponse{}
	case *platform.CardCheck:
		return &platform.CardCheckResponse{}
	case *platform.Book:
		return &platform.BookResponse{Reference: m.Reference}
	case *platform.Confirm:
		return &platform.ConfirmResponse{Reference: m.Reference}
	case *platform.PendingQuery:
		return &platform.PendingResponse{AppSerial: m.AppSerial}
	case *platform.Rewrite:
		return &platform.RewriteResponse{Reference: m.Reference}
	case *platform.Resolve:
		return &platform.ResolveResponse{Reference: m.Reference}
	}
	return nil
}

// emptyResponse is responseFor when the request could not be read.
func emptyResponse(t platform.Type) platform.Message {
	switch t {
	case platform.TypeSignIn:
		return &platform.SignInResponse{}
	case platform.TypeSignOut:
		return &platform.SignOutResponse{}
	case platform.TypeHeartbeat:
		return &platform.HeartbeatResponse{}
	case platform.TypeCardCheck:
		return &platform.CardCheckResponse{}
	case platform.TypeBook:
		return &platform.BookResponse{Reference: placeholderRef}
	case platform.TypeConfirm:
		return &platform.ConfirmResponse{Reference: placeholderRef}
	case platform.TypePendingQuery:
		return &platform.PendingResponse{}
	case platform.TypeRewrite:
		return &platform.RewriteResponse{Reference: placeholderRef}
	case platform.TypeResolve:
		return &platform.ResolveResponse{Reference: placeholderRef}
	}
	return nil
}

func setText(m platform.Message, t string) {
	t = trim(t)
	switch r := m.(type) {
	case *platform.SignInResponse:
		r.Text.Text = t
	case *platform.SignOutResponse:
		r.Text.Text = t
	case *platform.HeartbeatResponse:
		r.Text.Text = t
	case *platform.CardCheckResponse:
		r.Text.Text = t
	case *platform.BookResponse:
		r.Text.Text = t
	case *platform.ConfirmResponse:
		r.Text.Text = t
	case *platform.PendingResponse:
		r.Text.Text = t
	case *platform.RewriteResponse:
		r.Text.Text = t
	case *platform.ResolveResponse:
		r.Text.Text = t
	}
}

// trim keeps operator text within tag 40's 200 bytes of printable text.
func trim(t string) string {
	t = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7E {
			return '?'
		}
		return r
	}, t)
	if len(t) > 200 {
		t = t[:200]
	}
	return t
}

// signed packs resp under key. Only OK answers carry the conditional fields.
func (s *Server) signed(h platform.Header, batch uint32, code platform.Code, why string, resp platform.Message, key platform.MACer, now time.Time) []byte {
	if code != platform.OK {
		resp = stripConditional(resp)
		setText(resp, why)
	}
	out, err := platform.Pack(platform.Header{Result: code, Seq: h.Seq, Batch: batch, Time: platform.HostTimeOf(now.In(chinaTime))}, resp, key)
	if err != nil {
		s.log.Error("sim platform: pack answer", "type", h.Type.String(), "err", err)
		return nil
	}
	return out
}

// stripConditional drops what only an OK answer may carry (platform.md 5, conditions).
func stripConditional(m platform.Message) platform.Message {
	switch r := m.(type) {
	case *platform.SignInResponse:
		r.Key = nil
	case *platform.CardCheckResponse:
		r.Reference = ""
	case *platform.BookResponse:
		r.Issued = nil
	case *platform.RewriteResponse:
		r.Issued = nil
	case *platform.ResolveResponse:
		r.Outcome = 0
	case *platform.PendingResponse:
		r.Loads = nil
	}
	return m
}

// unsigned answers with a code the FEP may take with a zero MAC (A0, A1, A2, A4, 30). With
// b it reads the body, unauthenticated, only to echo the request's reference.
func (s *Server) unsigned(h platform.Header, b []byte, code platform.Code, why string) []byte {
	var resp platform.Message
	if b != nil {
		if _, m, err := platform.Unpack(b, echoMAC(b[len(b)-8:])); err == nil {
			resp = responseFor(m)
		}
	}
	if resp == nil {
		resp = emptyResponse(h.Type)
	}
	setText(resp, why)
	s.log.Info("sim platform: refused", "type", h.Type.String(), "seq", h.Seq, "batch", h.Batch, "result", string(code), "why", why)
	out, err := platform.Pack(platform.Header{Result: code, Seq: h.Seq, Batch: h.Batch, Time: platform.HostTimeOf(s.now().In(chinaTime))}, resp, nil)
	if err != nil {
		s.log.Error("sim platform: pack refusal", "err", err)
		return nil
	}
	return out
}

// refuseRaw answers a frame whose header did not parse: A3 for another version, else 30,
// when at least the request type can be read; otherwise there is nobody to address.
func (s *Server) refuseRaw(b []byte, err error) []byte {
	if len(b) < 14 || emptyResponse(platform.Type(b[3])) == nil {
		s.log.Warn("sim platform: unreadable frame dropped", "len", len(b), "err", err)
		return nil
	}
	h := platform.Header{Type: platform.Type(b[3]), Seq: binary.BigEndian.Uint32(b[6:10]), Batch: binary.BigEndian.Uint32(b[10:14])}
	code := platform.FormatError
	if errors.Is(err, platform.ErrVersion) {
		code = platform.VersionRefused
	}
	return s.unsigned(h, nil, code, trim(err.Error()))
}
