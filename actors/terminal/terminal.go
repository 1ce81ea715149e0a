package terminal

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/messages"
)

// terminalActor is one kiosk terminal. Its Receive only sorts messages; each handler
// decides and hands packed bytes to the kiosk's connection.
type terminalActor struct {
	k   *Kiosks
	reg *registration
	s   *session
	log *slog.Logger
}

func newTerminal(k *Kiosks, reg *registration) *terminalActor {
	return &terminalActor{k: k, reg: reg, s: reg.s, log: k.deps.Logger.With("component", "terminal", "terminal", reg.ID)}
}

func (t *terminalActor) Receive(ctx actor.Context) {
	msg := ctx.Message()
	if t.k.testPanic != nil {
		t.k.testPanic(t.reg.ID, msg)
	}
	switch m := msg.(type) {
	case *actor.Restarting:
		t.log.Warn("terminal actor restarting after a failure")
	case inbound:
		t.inbound(ctx, m)
	case connLost:
		t.connLost(m)
	case *messages.LoadReply:
		t.loadReply(m)
	case messages.LoadReply:
		t.loadReply(&m)
	case *messages.KioskConfirmReply:
		t.confirmReply(m)
	case messages.KioskConfirmReply:
		t.confirmReply(&m)
	case *messages.PlatformPendingResult:
		t.pendingResult(m)
	case messages.PlatformPendingResult:
		t.pendingResult(&m)
	case *messages.PlatformRewriteResult:
		t.rewriteResult(m)
	case messages.PlatformRewriteResult:
		t.rewriteResult(&m)
	case *messages.PlatformResolveResult:
		t.resolveResult(ctx, m)
	case messages.PlatformResolveResult:
		t.resolveResult(ctx, &m)
	case loadTimeout:
		t.loadTimedOut(m)
	case askTimeout:
		t.askTimedOut(m)
	}
}

// --- connection ---

func (t *terminalActor) attach(c *conn) bool {
	cur := t.s.conn
	switch {
	case cur == c:
		return true
	case cur != nil && c.id < cur.id:
		return false // a late frame from a replaced connection
	case cur != nil:
		t.log.Info("kiosk connection replaced", "old", cur.remote, "new", c.remote)
		cur.close()
	default:
		t.log.Info("kiosk online", "remote", c.remote)
	}
	t.s.conn = c
	return true
}

func (t *terminalActor) connLost(m connLost) {
	if t.s.conn != m.conn {
		return
	}
	t.s.conn = nil
	t.log.Warn("kiosk offline", "remote", m.conn.remote, "why", m.why)
}

// send packs resp, signed under the kiosk's MAK unless its code may go unsigned, and
// writes it to the kiosk's connection.
func (t *terminalActor) send(resp kiosk.Response, code kiosk.Code) {
	var signer kiosk.ResponseMACer
	if !unsigned(code) {
		signer = makSigner{hsm: t.k.deps.HSM, name: MAKName(t.reg.ID)}
	}
	b, err := resp.Pack(signer)
	if err != nil {
		t.log.Error("kiosk response not packed", "kind", resp.Kind().String(), "code", string(code), "err", err)
		return
	}
	if t.s.conn == nil {
		t.log.Warn("kiosk response not sent: no connection", "kind", resp.Kind().String(), "code", string(code))
		return
	}
	if err := t.s.conn.send(b); err != nil {
		t.log.Warn("kiosk response not sent: connection closed", "kind", resp.Kind().String(), "code", string(code),
			"remote", t.s.conn.remote, "err", err)
		return
	}
	t.log.Debug("kiosk response", "kind", resp.Kind().String(), "code", string(code))
}

// refuse answers r with code and nothing else.
func (t *terminalActor) refuse(r kiosk.Request, code kiosk.Code) {
	e := envOf(r)
	t.send(answer(r, replyEnv(e, t.k.deps.Now(), e.Batch), code), code)
}

// --- requests ---

func (t *terminalActor) inbound(ctx actor.Context, m inbound) {
	if !t.attach(m.conn) {
		return
	}
	e := envOf(m.req)
	switch {
	case m.err != nil:
		t.log.Warn("kiosk request MAC failed: sign in again", "kind", m.req.Kind().String(), "trace", e.Trace, "err", m.err)
		t.s.signedIn = false
		t.refuse(m.req, kiosk.MACError)
		return
	case e.PSAM != t.reg.PSAM:
		t.log.Warn("kiosk PSAM not registered with this terminal", "psam", e.PSAM.String())
		t.refuse(m.req, kiosk.NotRegistered)
		return
	}
	if r, ok := m.req.(*kiosk.SignIn); ok {
		t.signIn(r)
		return
	}
	if !t.s.signedIn || e.Batch != t.s.batch {
		t.log.Info("kiosk request before sign-in or with a stale batch", "kind", m.req.Kind().String(),
			"batch", e.Batch, "current", t.s.batch, "signed_in", t.s.signedIn)
		t.refuse(m.req, kiosk.SignInAgain)
		return
	}
	switch r := m.req.(type) {
	case *kiosk.Heartbeat:
		t.refuse(r, kiosk.Approved)
	case *kiosk.SignOut:
		t.refuse(r, kiosk.Approved)
		t.s.signedIn = false
		t.log.Info("kiosk signed out", "batch", t.s.batch)
	case *kiosk.Load:
		t.load(ctx, r)
	case *kiosk.Confirm:
		t.confirm(ctx, r)
	case *kiosk.PendingQuery, *kiosk.Rewrite, *kiosk.Resolve:
		t.askPlatform(ctx, r)
	}
}

func (t *terminalActor) signIn(r *kiosk.SignIn) {
	id, h := t.reg.ID, t.k.deps.HSM
	n, err := t.k.deps.Batch.Next()
	if err != nil {
		// Nothing changed yet: the kiosk retries its sign-in.
		t.log.Error("kiosk sign-in: no batch number (store unavailable?): connection closed", "err", err)
		t.s.conn.close()
		return
	}
	batch := uint32(n % 1000000)
	keys := &kiosk.WorkingKeys{}
	var pikKCV, makKCV []byte
	err = func() error {
		if _, err := h.Generate(PIKName(id), hsm.UsagePIN); err != nil {
			return err
		}
		if _, err := h.Generate(MAKName(id), hsm.UsageMAC); err != nil {
			return err
		}
		wp, kp, err := h.Export(PIKName(id), TMKName(id))
		if err != nil {
			return err
		}
		wm, km, err := h.Export(MAKName(id), TMKName(id))
		if err != nil {
			return err
		}
		if len(wp) != 16 || len(wm) != 16 || len(kp) < 4 || len(km) < 4 {
			return fmt.Errorf("working keys of unexpected length")
		}
		copy(keys.PIK[:], wp)
		copy(keys.PIKKCV[:], kp)
		copy(keys.MAK[:], wm)
		copy(keys.MAKKCV[:], km)
		pikKCV, makKCV = kp[:4], km[:4]
		return nil
	}()
	if err != nil {
		t.s.signedIn = false
		if errors.Is(err, hsm.ErrNoKey) {
			t.log.Error("kiosk sign-in refused: no TMK for this terminal", "tmk", TMKName(id), "err", err)
			t.refuse(r, kiosk.NotRegistered)
			return
		}
		t.log.Error("kiosk sign-in: working keys not issued: connection closed", "err", err)
		t.s.conn.close()
		return
	}
	t.s.signedIn, t.s.batch = true, batch
	t.log.Info("kiosk signed in", "batch", batch, "psam", t.reg.PSAM.String(),
		"pik_kcv", strings.ToUpper(hex.EncodeToString(pikKCV)), "mak_kcv", strings.ToUpper(hex.EncodeToString(makKCV)))
	resp := &kiosk.SignInResponse{Envelope: replyEnv(&r.Envelope, t.k.deps.Now(), batch),
		Reply: kiosk.Reply{Result: kiosk.Approved}, Keys: keys}
	t.send(resp, kiosk.Approved)
}

// precheck is the fast refusal of a load that cannot complete: every link it needs must be
// up and the store must take writes, so a kiosk never starts a debit that cannot finish.
func (t *terminalActor) precheck(r *kiosk.Load) (kiosk.Code, string) {
	switch {
	case !t.k.banks[r.BankCode]:
		return kiosk.InvalidBankCard, "no link for bank " + r.BankCode
	case t.k.deps.Store.Healthy() != nil:
		return kiosk.SystemError, "store unavailable: " + t.k.deps.Store.Healthy().Error()
	case !t.k.deps.Status.Up(linkstatus.Platform):
		return kiosk.PlatformDown, "platform session down"
	case !t.k.deps.Status.Up(linkstatus.Bank(r.BankCode)):
		return kiosk.BankUnavailable, "bank link " + r.BankCode + " down"
	}
	return "", ""
}

func (t *terminalActor) load(ctx actor.Context, r *kiosk.Load) {
	key := loadKey(&r.Envelope)
	pan := r.PAN
	if pan == "" {
		pan, _, _ = strings.Cut(strings.ReplaceAll(r.Track2, "=", "D"), "D")
	}
	lg := t.log.With("trace", r.Trace, "amount", r.Amount, "bank", r.BankCode, "pan", kiosk.MaskPAN(pan))
	if prev := t.s.recent.get(key); prev != nil {
		lg.Warn("repeated LOAD REQUEST: the first answer again, nothing done", "code", string(prev.Result))
		t.send(prev, prev.Result)
		return
	}
	if f := t.s.load; f != nil {
		if f.key == key {
			lg.Warn("repeated LOAD REQUEST while it is in flight: ignored, its answer follows")
			return
		}
		t.refuseLoad(r, key, kiosk.InvalidTxn, "another load is in flight (trace "+f.req.Trace+")", lg)
		return
	}
	if code, why := t.precheck(r); code != "" {
		t.refuseLoad(r, key, code, why, lg)
		return
	}
	txnID := t.reg.ID + r.Date + r.Trace
	start := &messages.StartLoad{TxnID: txnID, Terminal: t.reg.ID, KioskTrace: r.Trace, Amount: r.Amount,
		BankCode: r.BankCode,
		Card: messages.CardInit{AppSerial: r.Card.AppSerial, CityCode: strings.ToUpper(hex.EncodeToString(r.Card.City[:])),
			OldBalance: r.Init.OldBalance, Serial: r.Init.Serial, KeyIndex: r.Init.KeyIndex, KeyVersion: r.Init.KeyVersion,
			AlgID: r.Init.AlgID, Random: r.Init.Random, MAC1: r.Init.MAC1, TermID: [6]byte(r.PSAM)},
		Payer: messages.BankCard{PAN: r.PAN, Track2: r.Track2, Expiry: r.Expiry, EntryMode: r.EntryMode,
			CardSeq: r.CardSeq, PINBlock: r.PINBlock, PINKey: PIKName(t.reg.ID)}}
	pid := ctx.Self()
	sys := t.k.deps.System
	t.s.load = &flight{key: key, txnID: txnID, req: r,
		timer: time.AfterFunc(t.k.cfg.LoadTimeout, func() { sys.Root.Send(pid, loadTimeout{txnID: txnID}) })}
	lg.Info("load handed to the loads supervisor", "txn", txnID)
	ctx.Request(t.k.deps.Loads, start)
}

func (t *terminalActor) refuseLoad(r *kiosk.Load, key string, code kiosk.Code, why string, lg *slog.Logger) {
	lg.Info("load refused", "code", string(code), "why", why)
	resp := answer(r, replyEnv(&r.Envelope, t.k.deps.Now(), r.Batch), code).(*kiosk.LoadResponse)
	t.s.recent.put(key, resp)
	t.send(resp, code)
}

func (t *terminalActor) loadReply(m *messages.LoadReply) {
	f := t.s.load
	if f == nil || f.txnID != m.TxnID {
		t.log.Warn("load answer for no load in flight (late, or after a restart): dropped",
			"txn", m.TxnID, "result", m.Result, "code", m.Code, "ref", m.Ref)
		return
	}
	f.timer.Stop()
	t.s.load = nil
	r := f.req
	code := loadCode(m.Result, m.Code)
	resp := &kiosk.LoadResponse{Envelope: replyEnv(&r.Envelope, t.k.deps.Now(), r.Batch),
		Reply: kiosk.Reply{Result: code, Text: strings.TrimSpace(m.Result + " " + m.Code)}, Amount: r.Amount}
	if validRef(m.Ref) {
		resp.Reference = m.Ref
	}
	if len(m.RRN) == 12 {
		resp.RRN = m.RRN
	}
	if len(m.AuthCode) == 6 {
		resp.AuthCode = m.AuthCode
	}
	if code == kiosk.Approved {
		ht, err := hostTime(m.HostTime)
		if err != nil || resp.Reference == "" {
			// Booked but not deliverable: the card is not written now; the load's confirm
			// timeout makes it U and the re-write completes it later.
			t.log.Error("approved load without a usable reference or host time: answered 96",
				"txn", m.TxnID, "ref", m.Ref, "host_time", m.HostTime, "err", err)
			code = kiosk.SystemError
			resp.Result = code
		} else {
			resp.Credit = &kiosk.Credit{HostTime: ht, MAC2: m.MAC2}
		}
	}
	t.log.Info("load answered", "trace", r.Trace, "txn", m.TxnID, "result", m.Result, "party_code", m.Code,
		"code", string(code), "ref", resp.Reference)
	t.s.recent.put(f.key, resp)
	t.send(resp, code)
}

func (t *terminalActor) loadTimedOut(m loadTimeout) {
	f := t.s.load
	if f == nil || f.txnID != m.txnID {
		return
	}
	t.s.load = nil
	t.log.Error("no answer from the loads supervisor in time: answered 96 (a booked load is re-written later)",
		"txn", m.txnID, "timeout", t.k.cfg.LoadTimeout)
	resp := answer(f.req, replyEnv(&f.req.Envelope, t.k.deps.Now(), f.req.Batch), kiosk.SystemError).(*kiosk.LoadResponse)
	t.s.recent.put(f.key, resp)
	t.send(resp, kiosk.SystemError)
}

// --- confirm and platform requests ---

func (t *terminalActor) wait(ctx actor.Context, reqID string, r kiosk.Request) bool {
	if old := t.s.asks[reqID]; old != nil {
		t.log.Info("repeated request while the first is open: its answer follows", "req", reqID)
		return false
	}
	pid, sys := ctx.Self(), t.k.deps.System
	if t.s.asks == nil {
		t.s.asks = map[string]*ask{}
	}
	t.s.asks[reqID] = &ask{req: r,
		timer: time.AfterFunc(t.k.cfg.RequestTimeout, func() { sys.Root.Send(pid, askTimeout{reqID: reqID}) })}
	return true
}

func (t *terminalActor) done(reqID string) kiosk.Request {
	a := t.s.asks[reqID]
	if a == nil {
		return nil
	}
	a.timer.Stop()
	delete(t.s.asks, reqID)
	if len(t.s.asks) == 0 {
		t.s.asks = nil // an idle terminal holds no map
	}
	return a.req
}

func confirmID(trace string) string { return "confirm:" + trace }

func (t *terminalActor) platformID(e *kiosk.Envelope) string {
	return t.reg.ID + "/" + e.Date + "/" + e.Trace
}

func (t *terminalActor) confirm(ctx actor.Context, r *kiosk.Confirm) {
	if err := t.k.deps.Store.Healthy(); err != nil {
		t.log.Warn("confirm refused: store unavailable", "ref", r.Reference, "err", err)
		t.refuse(r, kiosk.SystemError)
		return
	}
	if !t.wait(ctx, confirmID(r.Trace), r) {
		return
	}
	t.log.Info("confirm handed to the loads supervisor", "trace", r.Trace, "ref", r.Reference, "status", string(rune(r.Write.Status)))
	ctx.Request(t.k.deps.Loads, &messages.KioskConfirm{Terminal: t.reg.ID, KioskTrace: r.Trace, Ref: r.Reference,
		Status: byte(r.Write.Status), TAC: r.Write.TAC, NewBalance: r.Write.NewBalance})
}

func (t *terminalActor) confirmReply(m *messages.KioskConfirmReply) {
	req := t.done(confirmID(m.KioskTrace))
	if req == nil {
		t.log.Info("confirm answer for no open confirm: dropped", "trace", m.KioskTrace, "ref", m.Ref, "code", m.Code)
		return
	}
	code := kiosk.Approved
	switch {
	case m.Code == "" || m.Code == "00":
	case m.Code == loads.CodePlatformDown:
		code = kiosk.PlatformDown
	case known(m.Code):
		code = kiosk.Code(m.Code)
	default:
		code = platformCode(m.Code)
	}
	t.log.Info("confirm answered", "trace", m.KioskTrace, "ref", m.Ref, "code", string(code))
	t.refuse(req, code)
}

func (t *terminalActor) askPlatform(ctx actor.Context, r kiosk.Request) {
	e := envOf(r)
	if !t.k.deps.Status.Up(linkstatus.Platform) {
		t.log.Info("platform session down: refused", "kind", r.Kind().String(), "trace", e.Trace)
		t.refuse(r, kiosk.PlatformDown)
		return
	}
	reqID := t.platformID(e)
	if !t.wait(ctx, reqID, r) {
		return
	}
	var msg any
	switch m := r.(type) {
	case *kiosk.PendingQuery:
		msg = &messages.PlatformPendingQuery{ReqID: reqID, AppSerial: m.Card.AppSerial}
	case *kiosk.Rewrite:
		msg = &messages.PlatformRewrite{ReqID: reqID, Ref: m.Reference, Amount: m.Amount,
			Terminal: m.Terminal, KioskTrace: m.Trace, Card: messages.CardInit{
				AppSerial: m.Card.AppSerial, CityCode: strings.ToUpper(hex.EncodeToString(m.Card.City[:])),
				OldBalance: m.Init.OldBalance, Serial: m.Init.Serial, KeyIndex: m.Init.KeyIndex, KeyVersion: m.Init.KeyVersion,
				AlgID: m.Init.AlgID, Random: m.Init.Random, MAC1: m.Init.MAC1, TermID: [6]byte(m.PSAM)}}
	case *kiosk.Resolve:
		msg = &messages.PlatformResolve{ReqID: reqID, Ref: m.Reference, AppSerial: m.Card.AppSerial,
			Serial: m.Evidence.Serial, Method: byte(m.Evidence.Method), HasMAC: m.Evidence.Method == kiosk.ByProve,
			MAC2: m.Evidence.MAC2, TAC: m.Evidence.TAC, Record: m.Evidence.Record}
	}
	t.log.Info("asking the platform", "kind", r.Kind().String(), "req", reqID)
	ctx.Request(t.k.deps.Platform, msg)
}

func (t *terminalActor) pendingResult(m *messages.PlatformPendingResult) {
	req, ok := t.done(m.ReqID).(*kiosk.PendingQuery)
	if !ok {
		return
	}
	if m.Err != "" {
		t.log.Warn("pending query failed at the platform", "req", m.ReqID, "err", m.Err)
		t.refuse(req, kiosk.PlatformDown)
		return
	}
	resp := answer(req, replyEnv(&req.Envelope, t.k.deps.Now(), req.Batch), kiosk.Approved).(*kiosk.PendingResponse)
	for _, p := range m.Loads {
		if len(resp.Loads) == kiosk.MaxPending {
			t.log.Warn("card has more pending loads than one answer carries", "req", m.ReqID, "pending", len(m.Loads))
			break
		}
		ht, err := hostTime(p.HostTime)
		if err != nil || !validRef(p.Ref) || p.Amount <= 0 || p.Amount > 0xFFFFFFFF {
			t.log.Error("pending load from the platform not usable: left out", "ref", p.Ref, "err", err)
			continue
		}
		resp.Loads = append(resp.Loads, kiosk.Pending{Reference: p.Ref, Amount: uint32(p.Amount),
			Status: kiosk.WriteStatus(p.Write), Serial: p.Serial, OldBalance: p.OldBalance, TermID: p.TermID,
			HostTime: ht, MAC2: p.MAC2})
	}
	t.log.Info("pending query answered", "req", m.ReqID, "pending", len(resp.Loads))
	t.send(resp, kiosk.Approved)
}

func (t *terminalActor) rewriteResult(m *messages.PlatformRewriteResult) {
	req, ok := t.done(m.ReqID).(*kiosk.Rewrite)
	if !ok {
		return
	}
	code := kiosk.Approved
	var credit *kiosk.Credit
	switch {
	case m.Err != "":
		code = kiosk.PlatformDown
	case m.Refused != "":
		code = platformCode(m.Refused)
	default:
		ht, err := hostTime(m.HostTime)
		if err != nil {
			t.log.Error("re-write MAC2 without a usable host time", "req", m.ReqID, "err", err)
			code = kiosk.SystemError
		} else {
			credit = &kiosk.Credit{HostTime: ht, MAC2: m.MAC2}
		}
	}
	resp := answer(req, replyEnv(&req.Envelope, t.k.deps.Now(), req.Batch), code).(*kiosk.RewriteResponse)
	resp.Credit = credit
	t.log.Info("re-write answered", "req", m.ReqID, "ref", req.Reference, "code", string(code), "err", m.Err, "refused", m.Refused)
	t.send(resp, code)
}

func (t *terminalActor) resolveResult(ctx actor.Context, m *messages.PlatformResolveResult) {
	req, ok := t.done(m.ReqID).(*kiosk.Resolve)
	if !ok {
		return
	}
	code := kiosk.Approved
	switch {
	case m.Err != "":
		code = kiosk.PlatformDown
	case m.Refused != "":
		code = platformCode(m.Refused)
	case !m.Applied:
		code = kiosk.NotApplied
	}
	t.log.Info("U resolution answered", "req", m.ReqID, "ref", req.Reference, "code", string(code))
	if code == kiosk.Approved {
		// The load is on the card after all: the FEP's record (and its file) must say so.
		ctx.Send(t.k.deps.Loads, messages.LoadSettled{Ref: req.Reference, TAC: req.Evidence.TAC, How: 'P'})
	}
	t.refuse(req, code)
}

func (t *terminalActor) askTimedOut(m askTimeout) {
	req := t.done(m.reqID)
	if req == nil {
		return
	}
	code := kiosk.PlatformDown
	if _, ok := req.(*kiosk.Confirm); ok {
		code = kiosk.SystemError // the kiosk re-sends its confirm; it is idempotent
	}
	t.log.Warn("no answer in time", "req", m.reqID, "kind", req.Kind().String(), "code", string(code))
	t.refuse(req, code)
}

// --- helpers ---

func validRef(r string) bool {
	if len(r) != 20 {
		return false
	}
	for i := 0; i < len(r); i++ {
		if r[i] < '0' || r[i] > '9' {
			return false
		}
	}
	return true
}

// hostTime packs a YYYYMMDDhhmmss string as the 7 BCD bytes CREDIT FOR LOAD takes.
func hostTime(s string) (kiosk.HostTime, error) {
	tm, err := time.Parse("20060102150405", s)
	if err != nil {
		return kiosk.HostTime{}, fmt.Errorf("host time %q: %w", s, err)
	}
	return kiosk.HostTimeOf(tm), nil
}
