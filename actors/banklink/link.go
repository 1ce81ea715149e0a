// Package banklink is the bank link actor: one per bank code. It keeps the TCP connection
// to the bank host (dial, back-off, sign-on with KCV-checked working-key import, echo),
// sends the transactions' 0200 debits and matches their 0210s, and runs the bank's durable
// store-and-forward reversal queue (the pure core actors/reversal) with 0400/0401s.
//
// What it must never do: answer BankDebitResult{NotSent: true} when any byte of the 0200
// may have left; send or acknowledge a reversal before the queue holding it is synced to
// disk; decide a money rule (the transaction core and the reversal core do); log a key, a
// PIN block or a clear PAN. docs/bank-link.md describes the behaviour and the config.
package banklink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/quancun/quancun/actors/internal/dial"
	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/reversal"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// Props is the bank link actor of one bank. Messages it takes: messages.BankDebit (sent
// with Request; answered with messages.BankDebitResult) and messages.EnqueueReversal
// (answered with messages.ReversalQueued once durable). It sends messages.ReversalDone to
// deps.Loads. Values and pointers of these messages are both accepted; answers are values.
// A Config or Deps that Check refuses makes the actor log the error and stop.
func Props(cfg Config, deps Deps) *actor.Props {
	cfg.Defaults()
	return actor.PropsFromProducer(func() actor.Actor { return &link{cfg: cfg, deps: deps} })
}

// Check validates what Props would be given, so the FEP root can refuse to start.
func Check(cfg Config, deps Deps) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	return deps.check()
}

type phase int

const (
	phaseDown      phase = iota // no connection; dialing or waiting to
	phaseSigningOn              // connected, 0800 sent
	phaseUp                     // signed on, keys in the security module
)

func (p phase) String() string {
	return [...]string{"down", "signing-on", "up"}[p]
}

// debitRec is one 0200 this incarnation sent, kept for 2*ResponseTimeout: while unanswered
// it is in flight (its requester waits); once answered it remembers RRN and auth code for
// a reversal of the same STAN and tells a duplicate 0210 from a late one.
type debitRec struct {
	reqID    string
	sender   *actor.PID
	stan     string
	amount   int64
	pan      string
	batch    uint32
	sentAt   time.Time
	answered bool
	rrn      string
	auth     string
}

// Timer messages. Those of a connection carry it, so a timer that fires after the
// connection changed does nothing.
type (
	reconnectNow  struct{}
	signOnTimeout struct{ conn *connection }
	echoTick      struct{ conn *connection }
	echoTimeout   struct {
		conn *connection
		key  bank.Key
	}
	revTick   struct{}
	sweepTick struct{}
)

const commitTimeout = 10 * time.Second

// link is the actor. One value per incarnation: a restart builds a new one from the store.
type link struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	d        bank.Dialect
	macAlg   hsm.MACAlg
	self     *actor.PID
	post     func(any) // from goroutines and timers to self
	sched    *scheduler.TimerScheduler
	wg       sync.WaitGroup // dialer and reader goroutines of this incarnation
	disabled bool           // bad config: the actor stops

	phase     phase
	conn      *connection
	connSeq   uint64
	dialing   *dial.Attempt
	batch     uint32 // from the last 0810
	backoff   time.Duration
	lastRx    time.Time // last non-echo frame
	signOnKey bank.Key
	echoKey   bank.Key // pending echo; zero when none

	signOnTimer, echoTimer, echoWait, reconnectTimer, revTimer, sweepTimer scheduler.CancelFunc

	debits   map[bank.Key]*debitRec // by slot key (class 0200, terminal, STAN)
	inFlight int

	q      reversal.Queue
	qBytes []byte // the queue as last persisted
	origs  map[reversal.Key]original
}

// Receive is the type switch: decode, call the pure core or the handler, perform effects.
func (l *link) Receive(ctx actor.Context) {
	if l.disabled {
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		l.started(ctx)
	case *actor.Stopping:
		l.shutdown(true)
	case *actor.Restarting:
		l.shutdown(false)
	case *messages.BankDebit:
		l.bankDebit(ctx, m)
	case messages.BankDebit:
		l.bankDebit(ctx, &m)
	case *messages.EnqueueReversal:
		l.enqueueReversal(ctx, m)
	case messages.EnqueueReversal:
		l.enqueueReversal(ctx, &m)
	case dialed:
		l.dialed(ctx, m)
	case inbound:
		l.inbound(ctx, m)
	case connClosed:
		if m.conn == l.conn && m.conn != nil {
			l.drop(ctx, fmt.Sprintf("connection lost: %v", m.err))
		}
	case reconnectNow:
		l.reconnectTimer = nil
		if l.conn == nil && l.dialing == nil {
			l.dial()
		}
	case signOnTimeout:
		if m.conn == l.conn && l.phase == phaseSigningOn {
			l.drop(ctx, "no 0810 within "+l.cfg.ResponseTimeout.String())
		}
	case echoTick:
		l.echo(m)
	case echoTimeout:
		if m.conn == l.conn && l.echoKey == m.key && m.key != (bank.Key{}) {
			l.drop(ctx, "echo not answered within "+l.cfg.EchoTimeout.String())
		}
	case revTick:
		l.revTimer = nil
		l.stepAndPerform(ctx, reversal.Tick{})
	case sweepTick:
		l.sweep()
	}
}

func (l *link) now() time.Time { return l.deps.Now() }

func (l *link) started(ctx actor.Context) {
	l.log = slog.Default()
	if l.deps.Logger != nil {
		l.log = l.deps.Logger
	}
	l.log = l.log.With("bank", l.cfg.BankCode)
	if err := Check(l.cfg, l.deps); err != nil {
		l.log.Error("bank link not started", "err", err)
		l.disabled = true
		ctx.Stop(ctx.Self())
		return
	}
	_ = l.deps.check() // fills Logger and Now
	l.d, _ = DialectByName(l.cfg.Dialect)
	l.macAlg, _ = hsmMAC(l.d.MAC)
	knobs := l.cfg.Reversal
	knobs.MTI, knobs.RepeatMTI = l.d.ReversalMTI, l.d.RepeatMTI
	l.self = ctx.Self()
	sys := ctx.ActorSystem()
	self := l.self
	l.post = func(m any) { sys.Root.Send(self, m) }
	l.sched = scheduler.NewTimerScheduler(sys.Root)
	l.debits = map[bank.Key]*debitRec{}
	l.backoff = l.cfg.ReconnectMin

	q, origs, err := loadQueue(l.deps.Store, l.cfg.BankCode, knobs)
	if err != nil {
		// Without its queue the link must not run: the supervisor restarts it (backing off).
		panic(fmt.Errorf("banklink %s: %w", l.cfg.BankCode, err))
	}
	l.q, l.origs = q, origs
	if len(q.Entries) > 0 || len(q.Manual) > 0 {
		l.log.Info("reversal queue loaded", "queued", len(q.Entries), "manual", len(q.Manual),
			"finished", len(q.Finished))
	}
	l.status(false, "connecting")
	l.stepAndPerform(ctx, reversal.Restarted{})
	period := max(l.cfg.ResponseTimeout/2, 10*time.Millisecond)
	l.sweepTimer = l.sched.SendRepeatedly(period, period, l.self, sweepTick{})
	l.dial()
}

// shutdown ends this incarnation: timers, dialer, connection and reader goroutines. On a
// stop (not a restart) it signs off first, best effort.
func (l *link) shutdown(stopping bool) {
	if l.post == nil {
		return // never started
	}
	for _, c := range []*scheduler.CancelFunc{&l.signOnTimer, &l.echoTimer, &l.echoWait,
		&l.reconnectTimer, &l.revTimer, &l.sweepTimer} {
		cancelTimer(c)
	}
	if l.dialing != nil {
		l.dialing.Abort()
		l.dialing = nil
	}
	if l.conn != nil {
		if stopping && l.phase == phaseUp {
			l.signOff()
		}
		l.conn.c.Close()
		l.conn = nil
	}
	why := "stopped"
	if !stopping {
		why = "restarting"
	}
	l.phase = phaseDown
	l.status(false, why)
	l.wg.Wait()
}

func cancelTimer(c *scheduler.CancelFunc) {
	if *c != nil {
		(*c)()
		*c = nil
	}
}

func (l *link) after(d time.Duration, m any) scheduler.CancelFunc {
	return l.sched.SendOnce(max(d, 0), l.self, m)
}

func (l *link) status(up bool, why string) {
	l.deps.Status.Set(linkstatus.Bank(l.cfg.BankCode), up, why, l.now())
}

// ---- connection lifecycle ----

func (l *link) dial() {
	l.dialing = startDial(&l.wg, l.cfg.Addr, l.cfg.ResponseTimeout, l.post)
}

func (l *link) dialed(ctx actor.Context, m dialed) {
	if m.attempt != l.dialing {
		m.attempt.Abort() // an attempt given up on
		return
	}
	l.dialing = nil
	if m.err != nil {
		l.log.Warn("bank host unreachable", "addr", l.cfg.Addr, "err", m.err, "retry_in", l.backoff)
		l.status(false, "dial: "+m.err.Error())
		l.scheduleReconnect()
		return
	}
	c := m.attempt.Take()
	if c == nil {
		return
	}
	l.connSeq++
	l.conn = &connection{id: l.connSeq, c: c}
	l.log.Info("connected to bank host", "addr", l.cfg.Addr, "conn", l.conn.id)
	startReader(&l.wg, l.conn, l.d, l.post)
	l.signOn(ctx)
}

func (l *link) scheduleReconnect() {
	cancelTimer(&l.reconnectTimer)
	l.reconnectTimer = l.after(l.backoff, reconnectNow{})
	l.backoff = min(2*l.backoff, l.cfg.ReconnectMax)
}

// markDown takes the link out of use: status, echo, queue. The connection stays.
func (l *link) markDown(ctx actor.Context, why string) {
	wasUp := l.phase == phaseUp
	l.phase = phaseDown
	cancelTimer(&l.echoTimer)
	cancelTimer(&l.echoWait)
	cancelTimer(&l.signOnTimer)
	l.echoKey = bank.Key{}
	l.status(false, why)
	if wasUp {
		l.log.Warn("bank link down", "why", why)
		l.stepAndPerform(ctx, reversal.LinkDown{})
	}
}

// drop closes the connection and reconnects after the back-off.
func (l *link) drop(ctx actor.Context, why string) {
	l.markDown(ctx, why)
	if l.conn != nil {
		l.log.Warn("closing bank connection", "conn", l.conn.id, "why", why, "reconnect_in", l.backoff)
		l.conn.c.Close()
		l.conn = nil
	}
	if l.dialing == nil {
		l.scheduleReconnect()
	}
}

// failWrite closes the connection after a failed write and lets connClosed do the rest:
// this may run in the middle of a list of effects, which must not be interleaved with the
// effects of the LinkDown step.
func (l *link) failWrite(err error) {
	if l.conn == nil {
		return
	}
	l.conn.c.Close()
	l.post(connClosed{conn: l.conn, err: fmt.Errorf("write: %w", err)})
}

// write sends one payload; n > 0 with an error means part of it may have left.
func (l *link) write(payload []byte) (int, error) {
	if l.conn == nil {
		return 0, errors.New("no connection")
	}
	b, err := frame.Append(make([]byte, 0, len(payload)+2), payload)
	if err != nil {
		return 0, err
	}
	_ = l.conn.c.SetWriteDeadline(time.Now().Add(min(5*time.Second, l.cfg.ResponseTimeout)))
	return l.conn.c.Write(b)
}

func (l *link) terminal() bank.Terminal {
	return bank.Terminal{ID: l.cfg.Terminal, Merchant: l.cfg.Merchant}
}

func (l *link) nextSTAN() (uint32, error) {
	n, err := l.deps.STAN.Next()
	if err != nil {
		return 0, fmt.Errorf("banklink %s: STAN: %w", l.cfg.BankCode, err)
	}
	if n > 999999 {
		return 0, fmt.Errorf("banklink %s: STAN %d beyond 999999", l.cfg.BankCode, n)
	}
	return uint32(n), nil
}

// ---- sign-on and working keys ----

func (l *link) signOn(ctx actor.Context) {
	stan, err := l.nextSTAN()
	if err != nil {
		l.drop(ctx, err.Error())
		return
	}
	m := &bank.SignOn{STAN: stan, Terminal: l.terminal(), Batch: l.batch, Operator: "001"}
	p, err := l.d.Pack(m)
	if err != nil {
		l.drop(ctx, fmt.Sprintf("pack 0800: %v", err))
		return
	}
	l.phase = phaseSigningOn
	l.signOnKey = bank.KeyOfMessage(&l.d, m).Slot()
	l.status(false, "signing on")
	if _, err := l.write(p); err != nil {
		l.drop(ctx, fmt.Sprintf("write 0800: %v", err))
		return
	}
	cancelTimer(&l.signOnTimer)
	l.signOnTimer = l.after(l.cfg.ResponseTimeout, signOnTimeout{conn: l.conn})
	l.log.Info("signing on", "stan", fmt.Sprintf("%06d", stan), "conn", l.conn.id)
}

// reSignOn takes the link out of use and signs on again on the same connection (response
// codes 97/99/A0, a response whose MAC failed: our keys may be wrong).
func (l *link) reSignOn(ctx actor.Context, why string) {
	if l.phase != phaseUp || l.conn == nil {
		return
	}
	l.markDown(ctx, why)
	l.signOn(ctx)
}

func (l *link) signOnResponse(ctx actor.Context, fr *bank.Frame, m *bank.SignOnResponse) {
	if l.phase != phaseSigningOn || bank.KeyOf(fr.Fields).Slot() != l.signOnKey {
		l.log.Warn("unexpected 0810 dropped", "key", bank.KeyOf(fr.Fields).String())
		return
	}
	cancelTimer(&l.signOnTimer)
	if m.Code != "00" {
		l.drop(ctx, fmt.Sprintf("sign-on refused: F39 %s (%s)", m.Code, bank.Lookup(m.Code).Meaning))
		return
	}
	code := l.cfg.BankCode
	pik, err := l.deps.HSM.Import(zpkName(code), hsm.UsagePIN, l.cfg.ZMKKey, m.Keys.PIK, m.Keys.PIKKCV)
	if err == nil {
		var mak hsm.KeyInfo
		mak, err = l.deps.HSM.Import(makName(code), hsm.UsageMAC, l.cfg.ZMKKey, m.Keys.MAK, m.Keys.MAKKCV)
		if err == nil {
			l.log.Info("working keys imported", "pik_kcv", pik.KCV, "mak_kcv", mak.KCV)
		}
	}
	if err != nil {
		// Any refusal rejects the session: the link stays down (so no key of this sign-on
		// is ever used) and signs on again after the back-off.
		l.log.Error("working keys refused", "keys", m.Keys, "err", err)
		l.drop(ctx, "working keys refused: "+err.Error())
		return
	}
	l.batch = m.Batch
	l.phase = phaseUp
	l.backoff = l.cfg.ReconnectMin
	l.lastRx = l.now()
	l.status(true, "signed on")
	l.log.Info("bank link up", "batch", fmt.Sprintf("%06d", m.Batch), "conn", l.conn.id)
	cancelTimer(&l.echoTimer)
	l.echoTimer = l.sched.SendRepeatedly(l.cfg.EchoInterval, l.cfg.EchoInterval, l.self, echoTick{conn: l.conn})
	l.stepAndPerform(ctx, reversal.LinkUp{})
}

func (l *link) signOff() {
	stan, err := l.nextSTAN()
	if err != nil {
		return
	}
	p, err := l.d.Pack(&bank.SignOff{NetRequest: bank.NetRequest{STAN: stan, Terminal: l.terminal(), Batch: l.batch}})
	if err == nil {
		_, err = l.write(p)
	}
	if err != nil {
		l.log.Info("sign-off not sent", "err", err)
	}
}

// ---- echo ----

// echo runs every EchoInterval while up; it sends 0820/301 only on a link that received
// nothing but echo answers for the interval, and at most one at a time.
func (l *link) echo(m echoTick) {
	if m.conn != l.conn || l.phase != phaseUp || l.echoKey != (bank.Key{}) {
		return
	}
	if l.now().Sub(l.lastRx) < l.cfg.EchoInterval {
		return
	}
	stan, err := l.nextSTAN()
	if err != nil {
		l.log.Error("echo not sent", "err", err)
		return
	}
	e := &bank.Echo{NetRequest: bank.NetRequest{STAN: stan, Terminal: l.terminal(), Batch: l.batch}}
	p, err := l.d.Pack(e)
	if err != nil {
		l.log.Error("echo not packed", "err", err)
		return
	}
	if _, err := l.write(p); err != nil {
		l.failWrite(err)
		return
	}
	l.echoKey = bank.KeyOfMessage(&l.d, e).Slot()
	l.echoWait = l.after(l.cfg.EchoTimeout, echoTimeout{conn: l.conn, key: l.echoKey})
}

// ---- inbound frames ----

func (l *link) inbound(ctx actor.Context, m inbound) {
	if m.conn != l.conn || m.conn == nil {
		return
	}
	if m.frame == nil {
		l.log.Warn("undecodable frame from bank dropped", "err", m.err)
		return
	}
	fr := m.frame
	switch msg := fr.Msg.(type) {
	case *bank.SignOnResponse:
		l.signOnResponse(ctx, fr, msg)
	case *bank.EchoResponse:
		if bank.KeyOf(fr.Fields).Slot() == l.echoKey && l.echoKey != (bank.Key{}) {
			l.echoKey = bank.Key{}
			cancelTimer(&l.echoWait)
		} else {
			l.log.Info("unmatched echo answer dropped", "key", bank.KeyOf(fr.Fields).String())
		}
	case *bank.Echo:
		l.answerEcho(msg)
	case *bank.DebitResponse:
		l.lastRx = l.now()
		l.debitResponse(ctx, fr, msg, nil)
	case *bank.ReversalResponse:
		l.lastRx = l.now()
		l.reversalResponse(ctx, fr, msg)
	case *bank.SignOffResponse:
		l.log.Info("sign-off answered", "code", msg.Code)
	case nil:
		if fr.Fields.MTI == "0210" {
			l.lastRx = l.now()
			l.debitResponse(ctx, fr, nil, m.err)
			return
		}
		l.log.Warn("malformed frame from bank dropped", "mti", fr.Fields.MTI, "stan", fr.Fields.Get(11), "err", m.err)
	default:
		l.log.Warn("unexpected message from bank dropped", "mti", fr.Fields.MTI)
	}
}

// answerEcho: the bank never needs to echo, but if it does it gets 0830/00 (bank.md 7).
func (l *link) answerEcho(e *bank.Echo) {
	r := &bank.EchoResponse{NetResponse: bank.NetResponse{STAN: e.STAN, Code: "00",
		Terminal: e.Terminal, Batch: e.Batch, LocalTime: l.now().Format("150405"), LocalDate: l.now().Format("0102")}}
	p, err := l.d.Pack(r)
	if err == nil {
		_, err = l.write(p)
	}
	if err != nil {
		l.log.Warn("echo answer not sent", "err", err)
	}
}

// ---- debits ----

func (l *link) bankDebit(ctx actor.Context, m *messages.BankDebit) {
	notSent := func(why string) {
		l.log.Info("debit not sent", "req", m.ReqID, "stan", m.STAN, "why", why)
		ctx.Respond(messages.BankDebitResult{ReqID: m.ReqID, STAN: m.STAN, NotSent: true})
	}
	if l.phase != phaseUp || l.conn == nil {
		notSent("link " + l.phase.String())
		return
	}
	if l.inFlight >= l.cfg.MaxInFlight {
		notSent(fmt.Sprintf("%d debits in flight (max_in_flight)", l.inFlight))
		return
	}
	stan, err := parseSTAN(m.STAN)
	if err != nil {
		notSent(err.Error())
		return
	}
	d := &bank.Debit{PAN: m.Payer.PAN, ProcCode: "000000", Amount: m.Amount, STAN: stan,
		Expiry: m.Payer.Expiry, EntryMode: m.Payer.EntryMode, CardSeq: m.Payer.CardSeq,
		Condition: "00", Track2: m.Payer.Track2, Terminal: l.terminal(), Currency: "156",
		F60: bank.F60{Type: "22", Batch: l.batch, Code: "000"}, Private: m.Ref}
	if len(m.Payer.PINBlock) > 0 {
		blk, err := l.deps.HSM.TranslatePIN(m.Payer.PINKey, zpkName(l.cfg.BankCode), m.Payer.PAN, m.Payer.PINBlock)
		if err != nil {
			notSent(fmt.Sprintf("PIN translation: %v", err))
			return
		}
		d.PINBlock, d.PINCapture, d.SecurityCtl = blk, "12", "2600000000000000"
	}
	if d.EntryMode == "" {
		d.EntryMode = "022" // magstripe, no PIN
		if d.PINBlock != nil {
			d.EntryMode = "021"
		}
	}
	key := bank.KeyOfMessage(&l.d, d).Slot()
	if r, dup := l.debits[key]; dup {
		// A 0200 is never sent twice (a second one could debit twice); a transaction that
		// asks again waits on its own timer and reverses.
		l.log.Error("debit with a STAN already sent on this link: not sent again", "req", m.ReqID,
			"first_req", r.reqID, "stan", m.STAN)
		return
	}
	p, err := l.d.PackMACed(d, l.macer())
	if err != nil {
		notSent(fmt.Sprintf("pack 0200: %v", err))
		return
	}
	n, err := l.write(p)
	if err != nil && n == 0 {
		notSent(fmt.Sprintf("write 0200: %v", err))
		l.failWrite(err)
		return
	}
	l.debits[key] = &debitRec{reqID: m.ReqID, sender: ctx.Sender(), stan: m.STAN, amount: m.Amount,
		pan: m.Payer.PAN, batch: l.batch, sentAt: l.now()}
	l.inFlight++
	if err != nil {
		// Part of the 0200 may be at the bank: it stays in flight; the transaction's timer
		// reverses it.
		l.log.Error("0200 partly written", "req", m.ReqID, "debit", d, "err", err)
		l.failWrite(err)
		return
	}
	l.log.Debug("0200 sent", "req", m.ReqID, "debit", d)
}

// debitResponse matches a 0210 (decoded, or only its fields when decodeErr) and answers
// the transaction that sent the 0200.
func (l *link) debitResponse(ctx actor.Context, fr *bank.Frame, m *bank.DebitResponse, decodeErr error) {
	k := bank.KeyOf(fr.Fields)
	r := l.debits[k.Slot()]
	switch {
	case r == nil:
		l.log.Warn("0210 matches no 0200 in flight (late or stale): dropped", "key", k.String(),
			"code", fr.Fields.Get(39))
		return
	case r.answered:
		l.log.Info("duplicate 0210 dropped", "key", k.String(), "code", fr.Fields.Get(39))
		return
	}
	r.answered = true
	l.inFlight--
	macErr := fr.VerifyMAC(l.verifier())
	res := messages.BankDebitResult{ReqID: r.reqID, STAN: r.stan, Code: fr.Fields.Get(39),
		RRN: fr.Fields.Get(37), AuthCode: fr.Fields.Get(38), SettleDate: fr.Fields.Get(15),
		LocalDate: fr.Fields.Get(13), MACOK: macErr == nil}
	switch {
	case decodeErr != nil:
		res.Malformed = true
	case m.Amount != r.amount || (m.PAN != "" && m.PAN != r.pan) || m.Code == "":
		res.Malformed = true
		decodeErr = fmt.Errorf("0210 does not answer the 0200 (amount %d, want %d)", m.Amount, r.amount)
	}
	if !res.Malformed && res.MACOK {
		r.rrn, r.auth = res.RRN, res.AuthCode
	}
	l.log.Info("0210 matched", "req", r.reqID, "stan", r.stan, "pan", maskPAN(r.pan), "code", res.Code,
		"mac_ok", res.MACOK, "malformed", res.Malformed, "decode_err", decodeErr)
	if r.sender != nil {
		ctx.Send(r.sender, res)
	}
	switch {
	case macErr != nil:
		l.reSignOn(ctx, "0210 MAC did not verify")
	case !res.Malformed && bank.Lookup(res.Code).Action == bank.ReSignOn:
		l.reSignOn(ctx, "bank asked for sign-on: F39 "+res.Code)
	}
}

// sweep forgets 0200s older than twice the response timeout; an unanswered one is no longer
// waited for (its transaction has timed out and reversed it).
func (l *link) sweep() {
	cut := l.now().Add(-2 * l.cfg.ResponseTimeout)
	for k, r := range l.debits {
		if r.sentAt.After(cut) {
			continue
		}
		if !r.answered {
			l.inFlight--
			l.log.Warn("0200 unanswered: in-flight entry expired", "req", r.reqID, "stan", r.stan)
		}
		delete(l.debits, k)
	}
}

func (l *link) macer() bank.MACer {
	name, alg := makName(l.cfg.BankCode), l.macAlg
	return bank.MACFunc(func(mab []byte) ([]byte, error) { return l.deps.HSM.MAC(name, alg, mab) })
}

type hsmVerifier struct {
	m    hsm.MessageMAC
	name string
	alg  hsm.MACAlg
}

func (v hsmVerifier) VerifyMAC(mab, mac []byte) error {
	if err := v.m.VerifyMAC(v.name, v.alg, mab, mac); err != nil {
		if errors.Is(err, hsm.ErrMACMismatch) {
			return fmt.Errorf("%w: %w", bank.ErrMAC, err)
		}
		return err
	}
	return nil
}

func (l *link) verifier() bank.Verifier {
	return hsmVerifier{m: l.deps.HSM, name: makName(l.cfg.BankCode), alg: l.macAlg}
}

func parseSTAN(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || len(s) == 0 || len(s) > 6 || n == 0 {
		return 0, fmt.Errorf("bad STAN %q", s)
	}
	return uint32(n), nil
}

// ---- reversals ----

func (l *link) enqueueReversal(ctx actor.Context, m *messages.EnqueueReversal) {
	stan, err := parseSTAN(m.STAN)
	if err != nil {
		l.log.Error("reversal refused: bad STAN", "req", m.ReqID, "err", err)
		return
	}
	stanStr := fmt.Sprintf("%06d", stan)
	k := reversal.Key{STAN: stanStr, Date: m.Date}
	o := original{TxnID: m.ReqID, PAN: m.Original.Payer.PAN, Amount: m.Amount, STAN: stanStr,
		Expiry: m.Original.Payer.Expiry, EntryMode: m.Original.Payer.EntryMode,
		CardSeq: m.Original.Payer.CardSeq, Terminal: l.cfg.Terminal, Merchant: l.cfg.Merchant, Batch: l.batch}
	if o.Amount == 0 {
		o.Amount = m.Original.Amount
	}
	if o.EntryMode == "" {
		o.EntryMode = "022"
		if len(m.Original.Payer.PINBlock) > 0 {
			o.EntryMode = "021"
		}
	}
	// What this incarnation knows of the 0200 it sent: its batch and the 0210's RRN/auth.
	if r := l.debits[bank.Key{Class: "0200", Terminal: strings.TrimRight(l.cfg.Terminal, " "), STAN: stanStr}]; r != nil {
		o.Batch, o.RRN, o.AuthCode = r.batch, r.rrn, r.auth
	}
	reason := m.Reason
	if reason == "" {
		reason = bank.ReasonTimeout
	}
	oop, err := origOp(l.cfg.BankCode, k, o)
	if err != nil {
		l.log.Error("reversal not queued", "req", m.ReqID, "err", err)
		return
	}
	_, had := l.origs[k]
	effs, err := l.step(reversal.Enqueue{TxnID: m.ReqID, STAN: stanStr, Date: m.Date, Amount: o.Amount, Reason: reason},
		func(q reversal.Queue) []persistence.Op {
			// The original goes into the same commit as the entry that needs it.
			if had || !slices.ContainsFunc(q.Entries, func(e reversal.Entry) bool { return e.Key == k }) {
				return nil
			}
			l.origs[k] = o
			return []persistence.Op{oop}
		})
	if err != nil {
		if !had {
			delete(l.origs, k)
		}
		l.log.Error("reversal not queued: store failed", "req", m.ReqID, "stan", stanStr, "err", err)
		return
	}
	l.log.Info("reversal queued", "req", m.ReqID, "key", k.String(), "pan", maskPAN(o.PAN),
		"amount", o.Amount, "reason", reason)
	ctx.Respond(messages.ReversalQueued{ReqID: m.ReqID, STAN: m.STAN})
	l.perform(ctx, effs)
}

func (l *link) reversalResponse(ctx actor.Context, fr *bank.Frame, m *bank.ReversalResponse) {
	k := bank.KeyOf(fr.Fields)
	if err := fr.VerifyMAC(l.verifier()); err != nil {
		// Not acted upon: the reversal is repeated; our MAK may be stale.
		l.log.Warn("reversal answer with a bad MAC ignored", "key", k.String(), "err", err)
		l.reSignOn(ctx, "reversal answer MAC did not verify")
		return
	}
	qk, ok := l.findReversal(k)
	if !ok {
		l.log.Info("reversal answer matches no queued reversal: dropped", "key", k.String(), "code", m.Code)
		return
	}
	l.stepAndPerform(ctx, reversal.Response{STAN: qk.STAN, Date: qk.Date, Code: m.Code})
}

// findReversal maps a 0410 (terminal + original STAN; its F13 is the bank's date, which
// need not be ours) to the queue's key: oldest queued entry first, then manual ones, then
// finished ones (so the queue reports the duplicate).
func (l *link) findReversal(k bank.Key) (reversal.Key, bool) {
	match := func(rk reversal.Key) bool {
		if rk.STAN != k.STAN {
			return false
		}
		o, ok := l.origs[rk]
		return !ok || strings.TrimRight(o.Terminal, " ") == k.Terminal
	}
	for _, e := range l.q.Entries {
		if match(e.Key) {
			return e.Key, true
		}
	}
	for _, e := range l.q.Manual {
		if match(e.Entry.Key) {
			return e.Entry.Key, true
		}
	}
	for _, f := range l.q.Finished {
		if f.Key.STAN == k.STAN {
			return f.Key, true
		}
	}
	return reversal.Key{}, false
}

// stepAndPerform: Step, persist, effects. A store failure leaves the queue as it was and
// performs nothing (the store then refuses every write: the FEP must be restarted).
func (l *link) stepAndPerform(ctx actor.Context, msg reversal.Msg) {
	effs, err := l.step(msg, nil)
	if err != nil {
		l.log.Error("reversal queue not persisted: effects withheld", "event", fmt.Sprintf("%T", msg), "err", err)
		return
	}
	l.perform(ctx, effs)
}

// step runs the pure queue and persists the result (synced) before returning its effects.
// extra adds ops to the same commit (an entry's original); originals of finished entries
// are deleted in it.
func (l *link) step(msg reversal.Msg, extra func(reversal.Queue) []persistence.Op) ([]reversal.Effect, error) {
	q, effs := reversal.Step(l.q, reversal.Event{Now: l.now(), Msg: msg})
	var ops []persistence.Op
	if extra != nil {
		ops = extra(q)
	}
	var done []reversal.Key
	for _, e := range effs {
		if d, ok := e.(reversal.Done); ok {
			if _, have := l.origs[d.Key]; have {
				done = append(done, d.Key)
				ops = append(ops, persistence.Op{Key: origKey(l.cfg.BankCode, d.Key), Delete: true})
			}
		}
	}
	op, b, err := queueOp(q)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b, l.qBytes) {
		ops = append(ops, op)
	}
	if len(ops) > 0 {
		cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		if err := l.deps.Store.Commit(cctx, ops...); err != nil {
			return nil, fmt.Errorf("banklink %s: persist queue: %w", l.cfg.BankCode, err)
		}
	}
	l.q, l.qBytes = q, b
	for _, k := range done {
		delete(l.origs, k)
	}
	return effs, nil
}

// perform runs the queue's effects in order.
func (l *link) perform(ctx actor.Context, effs []reversal.Effect) {
	for _, e := range effs {
		switch e := e.(type) {
		case reversal.Send:
			l.sendReversal(e)
		case reversal.Done:
			l.log.Info("reversal answered", "req", e.TxnID, "key", e.Key.String(), "code", e.Code)
			if l.deps.Loads != nil {
				ctx.Send(l.deps.Loads, messages.ReversalDone{ReqID: e.TxnID, STAN: e.Key.STAN, Code: e.Code})
			}
		case reversal.Manual:
			o := l.origs[e.Key]
			l.log.Error("reversal needs an operator", "req", e.TxnID, "key", e.Key.String(), "why", e.Why,
				"pan", maskPAN(o.PAN), "amount", o.Amount, "terminal", o.Terminal, "rrn", o.RRN)
		case reversal.SetTimer:
			cancelTimer(&l.revTimer)
			l.revTimer = l.after(e.At.Sub(l.now()), revTick{})
		case reversal.Note:
			l.log.Debug("reversal queue", "note", e.Text)
		}
	}
}

func (l *link) sendReversal(s reversal.Send) {
	o, ok := l.origs[s.Key]
	if !ok {
		l.log.Error("reversal without its stored original: not sent", "req", s.TxnID, "key", s.Key.String())
		return
	}
	d, err := o.debit()
	if err != nil {
		l.log.Error("reversal original unusable: not sent", "req", s.TxnID, "key", s.Key.String(), "err", err)
		return
	}
	r := bank.ReversalOf(d, s.Reason)
	r.Repeat = s.Attempt > 1
	r.RRN, r.AuthCode = o.RRN, o.AuthCode
	p, err := l.d.PackMACed(&r, l.macer())
	if err != nil {
		l.log.Error("reversal not packed", "req", s.TxnID, "key", s.Key.String(), "err", err)
		return
	}
	if _, err := l.write(p); err != nil {
		l.log.Warn("reversal not written", "req", s.TxnID, "err", err)
		l.failWrite(err)
		return
	}
	l.log.Info("reversal sent", "req", s.TxnID, "mti", s.MTI, "attempt", s.Attempt, "reversal", &r)
}
