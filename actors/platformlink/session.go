package platformlink

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/quancun/quancun/actors/internal/dial"
	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/platform"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// SignOut closes the batch (day cut-over): the session sends SIGN-OUT, refuses new
// requests and does not sign in again until SignIn. Sent with Request, it is answered
// with Status once the platform acknowledged (or RequestTimeout passed).
type SignOut struct{}

// SignIn asks for a session with a new batch: after SignOut, or while up (a fresh batch).
// Sent with Request, it is answered with Status once the new session is up.
type SignIn struct{}

// StatusRequest asks for Status (answered with ctx.Respond).
type StatusRequest struct{}

// Status is the session as the actor sees it.
type Status struct {
	Up         bool      // signed in and the platform can process loads: requests are sent
	Batch      uint32    // current batch; while down, the last one (also after a restart)
	SignedInAt time.Time // when Batch was issued
	InFlight   int       // requests waiting for their answer
}

// SessionKey is the persistence key of the session record: the current batch and when it
// was issued, written (synced) after every sign-in and before the session is used.
func SessionKey() []byte { return persistence.Key("platform", "session") }

// sessionRecord is the value at SessionKey.
type sessionRecord struct {
	Batch      uint32    `json:"batch"`
	SignedInAt time.Time `json:"signed_in_at"`
}

// Props is the platform session actor. Requests (sent with ctx.Request; values or
// pointers): messages.PlatformCheck, PlatformBook, PlatformConfirm, PlatformPendingQuery,
// PlatformRewrite, PlatformResolve, each answered with its *Result value; SignOut, SignIn
// and StatusRequest, answered with Status. A Config or Deps that Check refuses makes the
// actor log the error and stop.
func Props(cfg Config, deps Deps) *actor.Props {
	cfg.Defaults()
	return actor.PropsFromProducer(func() actor.Actor { return &session{cfg: cfg, deps: deps} })
}

type phase int

const (
	phaseDown       phase = iota // no connection; dialing or waiting to
	phaseConnected               // connected, no session (signed out)
	phaseSigningIn               // SIGN-IN sent
	phaseSaving                  // signed in; the session record is being synced
	phaseUp                      // requests are sent
	phaseSigningOut              // SIGN-OUT sent
)

func (p phase) String() string {
	return [...]string{"down", "connected", "signing-in", "saving", "up", "signing-out"}[p]
}

// slot identifies a request on the wire: the platform echoes batch and sequence number.
type slot struct{ batch, seq uint32 }

// pending is one request of a requester, from its arrival to its answer.
type pending struct {
	req     any // the normalized messages.Platform* value
	reqID   string
	sender  *actor.PID
	wire    platform.Message
	at      slot
	retried bool // re-sent once after a stale-key answer
	gen     uint64
	timer   scheduler.CancelFunc
}

// Timer messages. Those of a connection carry it, so a timer that fires after the
// connection changed does nothing.
type (
	reconnectNow  struct{}
	signInTimeout struct {
		conn *connection
		seq  uint32
	}
	signOutTimeout struct{ conn *connection }
	heartbeatTick  struct{ conn *connection }
	heartbeatLost  struct {
		conn *connection
		at   slot
	}
	requestTimeout struct {
		at  slot
		gen uint64
	}
	sessionSaved struct {
		batch uint32
		err   error
	}
	// panicForTest makes Receive panic, so a test can watch the supervisor restart the
	// session. Unexported: nothing outside the package can send it.
	panicForTest struct{}
)

// maxExpired bounds the memory of timed-out requests kept to recognise their late answers.
const maxExpired = 4096

// session is the actor. One value per incarnation: a restart builds a new one.
type session struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	disabled bool

	self     *actor.PID
	post     func(any)
	sched    *scheduler.TimerScheduler
	wg       sync.WaitGroup
	signInK  platform.MACer
	dynamicK platform.MACer

	phase     phase
	why       string // why the session is not up
	conn      *connection
	connSeq   uint64
	dialing   *dial.Attempt
	backoff   time.Duration
	want      bool      // a session is wanted (false after SignOut until SignIn)
	degraded  bool      // up, but the last heartbeat said the platform cannot process loads
	lastRx    time.Time // last business answer
	reconnect scheduler.CancelFunc

	batch      uint32
	signedInAt time.Time
	seq        uint32
	signInSeq  uint32
	signOutSeq uint32
	heartbeat  slot // outstanding heartbeat; zero when none
	gen        uint64

	hbTicker, hbWait, signInTimer, signOutTimer scheduler.CancelFunc

	inFlight map[slot]*pending
	parked   []*pending // waiting for a re-sign-in to be re-sent
	expired  map[slot]string

	signInWaiters, signOutWaiters []*actor.PID
}

// Receive is the type switch: each case hands over to one handler.
func (s *session) Receive(ctx actor.Context) {
	if s.disabled {
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.started(ctx)
	case *actor.Stopping:
		s.shutdown(ctx, "stopping")
	case *actor.Restarting:
		s.shutdown(ctx, "restarting")
	case messages.PlatformCheck, *messages.PlatformCheck, messages.PlatformBook, *messages.PlatformBook,
		messages.PlatformConfirm, *messages.PlatformConfirm, messages.PlatformPendingQuery,
		*messages.PlatformPendingQuery, messages.PlatformRewrite, *messages.PlatformRewrite,
		messages.PlatformResolve, *messages.PlatformResolve:
		s.request(ctx, normalize(m))
	case StatusRequest, *StatusRequest:
		ctx.Respond(s.status())
	case SignOut, *SignOut:
		s.signOutAsked(ctx)
	case SignIn, *SignIn:
		s.signInAsked(ctx)
	case dialed:
		s.dialed(ctx, m)
	case inbound:
		s.inbound(ctx, m)
	case connClosed:
		if m.conn == s.conn && m.conn != nil {
			s.drop(ctx, fmt.Sprintf("connection lost: %v", m.err))
		}
	case reconnectNow:
		s.reconnect = nil
		if s.conn == nil && s.dialing == nil {
			s.dial()
		}
	case signInTimeout:
		if m.conn == s.conn && s.phase == phaseSigningIn && m.seq == s.signInSeq {
			s.drop(ctx, "no SIGN-IN RESPONSE within "+s.cfg.RequestTimeout.String())
		}
	case signOutTimeout:
		if m.conn == s.conn && s.phase == phaseSigningOut {
			s.log.Warn("SIGN-OUT not answered; session closed on our side", "batch", s.batch)
			s.signedOut(ctx)
		}
	case heartbeatTick:
		s.sendHeartbeat(ctx, m.conn)
	case heartbeatLost:
		if m.conn == s.conn && m.at == s.heartbeat && m.at != (slot{}) {
			s.drop(ctx, "heartbeat not answered within "+s.cfg.HeartbeatTimeout.String())
		}
	case requestTimeout:
		s.requestTimedOut(ctx, m)
	case sessionSaved:
		s.sessionSaved(ctx, m)
	case panicForTest:
		panic("platformlink: panic injected by a test")
	}
}

func (s *session) now() time.Time { return s.deps.Now() }

func (s *session) started(ctx actor.Context) {
	s.log = slog.Default()
	if s.deps.Logger != nil {
		s.log = s.deps.Logger
	}
	s.log = s.log.With("link", linkstatus.Platform)
	if err := Check(s.cfg, s.deps); err != nil {
		s.log.Error("platform session not started", "err", err)
		s.disabled = true
		ctx.Stop(ctx.Self())
		return
	}
	_ = s.deps.check() // fills Logger and Now
	s.self = ctx.Self()
	sys, self := ctx.ActorSystem(), ctx.Self()
	s.post = func(m any) { sys.Root.Send(self, m) }
	s.sched = scheduler.NewTimerScheduler(sys.Root)
	s.signInK = hsmMAC{s.deps.HSM, SignInMACKeyName(s.cfg.SignInKey)}
	s.dynamicK = hsmMAC{s.deps.HSM, DynamicKeyName(s.cfg.SignInKey)}
	s.inFlight = map[slot]*pending{}
	s.expired = map[slot]string{}
	s.backoff = s.cfg.ReconnectMin
	s.want = true

	if rec, err := s.loadSession(); err != nil {
		s.log.Error("session record unreadable", "err", err)
	} else if rec.Batch != 0 {
		s.batch, s.signedInAt = rec.Batch, rec.SignedInAt
		s.log.Info("last platform session", "batch", rec.Batch, "signed_in_at", rec.SignedInAt)
	}
	ltk, _ := s.deps.HSM.Info(s.cfg.SignInKey)
	ks, _ := s.deps.HSM.Info(SignInMACKeyName(s.cfg.SignInKey))
	s.log.Info("platform session starting", "addr", s.cfg.Addr, "ltk_kcv", ltk.KCV, "signin_kcv", ks.KCV)
	s.setStatus(false, "connecting")
	s.dial()
}

func (s *session) loadSession() (sessionRecord, error) {
	var rec sessionRecord
	b, err := s.deps.Store.Get(SessionKey())
	if errors.Is(err, persistence.ErrNotFound) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("platformlink: session record: %w", err)
	}
	return rec, nil
}

// shutdown ends this incarnation: every waiting requester gets Err at once, then timers,
// dialer, connection and reader goroutines go.
func (s *session) shutdown(ctx actor.Context, why string) {
	if s.post == nil {
		return // never started
	}
	s.failAll(ctx, "platform session "+why)
	s.phase = phaseDown
	s.answerWaiters(ctx)
	for _, w := range s.signInWaiters {
		ctx.Send(w, s.status())
	}
	s.signInWaiters = nil
	for _, c := range []*scheduler.CancelFunc{&s.hbTicker, &s.hbWait, &s.signInTimer, &s.signOutTimer, &s.reconnect} {
		cancelTimer(c)
	}
	if s.dialing != nil {
		s.dialing.Abort()
		s.dialing = nil
	}
	if s.conn != nil {
		s.conn.c.Close()
		s.conn = nil
	}
	s.phase = phaseDown
	s.setStatus(false, why)
	s.wg.Wait()
}

func cancelTimer(c *scheduler.CancelFunc) {
	if *c != nil {
		(*c)()
		*c = nil
	}
}

func (s *session) after(d time.Duration, m any) scheduler.CancelFunc {
	return s.sched.SendOnce(max(d, 0), s.self, m)
}

func (s *session) setStatus(up bool, why string) {
	if !up {
		s.why = why
	}
	s.deps.Status.Set(linkstatus.Platform, up, why, s.now())
}

func (s *session) usable() bool { return s.phase == phaseUp && !s.degraded }

func (s *session) status() Status {
	return Status{Up: s.usable(), Batch: s.batch, SignedInAt: s.signedInAt, InFlight: len(s.inFlight) + len(s.parked)}
}

// ---- connection ----

func (s *session) dial() {
	s.dialing = startDial(&s.wg, s.cfg.Addr, min(dialTimeout, s.cfg.RequestTimeout), s.post)
}

func (s *session) dialed(ctx actor.Context, m dialed) {
	if m.attempt != s.dialing {
		m.attempt.Abort()
		return
	}
	s.dialing = nil
	if m.err != nil {
		s.log.Warn("platform unreachable", "addr", s.cfg.Addr, "err", m.err, "retry_in", s.backoff)
		s.setStatus(false, "dial: "+m.err.Error())
		s.scheduleReconnect()
		return
	}
	c := m.attempt.Take()
	if c == nil {
		return
	}
	s.connSeq++
	s.conn = &connection{id: s.connSeq, c: c}
	s.phase = phaseConnected
	s.log.Info("connected to platform", "addr", s.cfg.Addr, "conn", s.conn.id)
	startReader(&s.wg, s.conn, s.signInK, s.dynamicK, s.post)
	if s.want {
		s.signIn(ctx)
	} else {
		s.setStatus(false, "signed out")
	}
}

func (s *session) scheduleReconnect() {
	cancelTimer(&s.reconnect)
	s.reconnect = s.after(s.backoff, reconnectNow{})
	s.backoff = min(2*s.backoff, s.cfg.ReconnectMax)
}

// markDown takes the session out of use; the connection stays.
func (s *session) markDown(why string) {
	if s.usable() {
		s.log.Warn("platform session down", "why", why, "batch", s.batch)
	}
	cancelTimer(&s.hbTicker)
	cancelTimer(&s.hbWait)
	s.heartbeat = slot{}
	s.degraded = false
	s.setStatus(false, why)
}

// drop closes the connection, fails everything waiting on it and reconnects after the
// back-off. Answers cannot come on another connection, so each requester learns at once
// that the outcome is open.
func (s *session) drop(ctx actor.Context, why string) {
	s.markDown(why)
	cancelTimer(&s.signInTimer)
	cancelTimer(&s.signOutTimer)
	s.failAll(ctx, "platform link lost: "+why)
	if s.phase == phaseSigningOut {
		s.phase = phaseDown
		s.answerWaiters(ctx)
	}
	s.phase = phaseDown
	if s.conn != nil {
		s.log.Warn("closing platform connection", "conn", s.conn.id, "why", why, "reconnect_in", s.backoff)
		s.conn.c.Close()
		s.conn = nil
	}
	if s.dialing == nil {
		s.scheduleReconnect()
	}
}

// write sends one message as one frame.
func (s *session) write(payload []byte) error {
	if s.conn == nil {
		return errors.New("no connection")
	}
	if len(payload) > 0xFFFF {
		return fmt.Errorf("frame of %d bytes", len(payload))
	}
	b := make([]byte, 0, len(payload)+2)
	b = append(b, byte(len(payload)>>8), byte(len(payload)))
	b = append(b, payload...)
	_ = s.conn.c.SetWriteDeadline(time.Now().Add(min(5*time.Second, s.cfg.RequestTimeout)))
	_, err := s.conn.c.Write(b)
	return err
}

// failWrite closes the connection after a failed write and lets connClosed do the rest.
func (s *session) failWrite(err error) {
	if s.conn == nil {
		return
	}
	s.conn.c.Close()
	s.post(connClosed{conn: s.conn, err: fmt.Errorf("write: %w", err)})
}

func (s *session) header(batch uint32) platform.Header {
	s.seq++
	return platform.Header{Seq: s.seq, Batch: batch, Time: platform.HostTimeOf(s.now().In(cst))}
}

// ---- sign-in, sign-out ----

// signIn sends SIGN-IN on the current connection (sequence 1 of the coming batch).
func (s *session) signIn(ctx actor.Context) {
	s.markDown("signing in")
	s.seq = 0
	h := s.header(0)
	p, err := platform.Pack(h, &platform.SignIn{AuthCode: s.cfg.AuthCode}, s.signInK)
	if err != nil {
		s.drop(ctx, fmt.Sprintf("pack SIGN-IN: %v", err))
		return
	}
	if err := s.write(p); err != nil {
		s.drop(ctx, fmt.Sprintf("write SIGN-IN: %v", err))
		return
	}
	s.phase, s.signInSeq = phaseSigningIn, h.Seq
	cancelTimer(&s.signInTimer)
	s.signInTimer = s.after(s.cfg.RequestTimeout, signInTimeout{conn: s.conn, seq: h.Seq})
	s.log.Info("signing in", "conn", s.conn.id, "last_batch", s.batch)
}

func (s *session) signInResponse(ctx actor.Context, in inbound) {
	h := in.hdr
	if s.phase != phaseSigningIn || h.Seq != s.signInSeq {
		s.log.Warn("unexpected SIGN-IN RESPONSE dropped", "seq", h.Seq, "batch", h.Batch, "phase", s.phase)
		return
	}
	cancelTimer(&s.signInTimer)
	if in.err != nil {
		s.drop(ctx, fmt.Sprintf("SIGN-IN RESPONSE refused: %v", in.err))
		return
	}
	if h.Result != platform.OK {
		s.log.Error("sign-in refused by the platform", "code", string(h.Result), "why", codeText(h.Result))
		s.drop(ctx, "sign-in refused: "+codeText(h.Result))
		return
	}
	m, ok := in.msg.(*platform.SignInResponse)
	if !ok || m.Key == nil || h.Batch == 0 {
		s.drop(ctx, "SIGN-IN RESPONSE without a batch or dynamic key")
		return
	}
	dk, err := s.deps.HSM.Import(DynamicKeyName(s.cfg.SignInKey), hsm.UsageMAC, s.cfg.SignInKey, m.Key.Block[:], m.Key.KCV[:])
	if err != nil {
		// Nothing of this sign-in is used: sign in again after the back-off.
		s.drop(ctx, "dynamic key refused: "+err.Error())
		return
	}
	s.batch, s.signedInAt = h.Batch, s.now()
	s.phase = phaseSaving
	s.log.Info("signed in", "batch", s.batch, "dk_kcv", dk.KCV)
	b, _ := json.Marshal(sessionRecord{Batch: s.batch, SignedInAt: s.signedInAt})
	batch, post := s.batch, s.post
	s.deps.Store.CommitAsync([]persistence.Op{{Key: SessionKey(), Value: b}},
		func(err error) { post(sessionSaved{batch: batch, err: err}) })
}

func (s *session) sessionSaved(ctx actor.Context, m sessionSaved) {
	if s.phase != phaseSaving || m.batch != s.batch {
		return
	}
	if m.err != nil {
		// Each reference carries its batch in its transaction's own record, so the session
		// record is the restart's memory only; an operator must look at the store.
		s.log.Error("session record not saved", "batch", m.batch, "err", m.err)
	}
	s.goUp(ctx)
}

func (s *session) goUp(ctx actor.Context) {
	s.phase = phaseUp
	s.backoff = s.cfg.ReconnectMin
	s.lastRx = time.Time{} // the first tick heartbeats
	s.setStatus(true, fmt.Sprintf("signed in, batch %d", s.batch))
	cancelTimer(&s.hbTicker)
	s.hbTicker = s.sched.SendRepeatedly(s.cfg.HeartbeatInterval, s.cfg.HeartbeatInterval, s.self, heartbeatTick{conn: s.conn})
	parked := s.parked
	s.parked = nil
	for _, p := range parked {
		s.send(ctx, p)
	}
	if !s.want { // SignOut arrived while signing in
		s.signOut(ctx)
		return
	}
	for _, w := range s.signInWaiters {
		ctx.Send(w, s.status())
	}
	s.signInWaiters = nil
}

// reSignIn signs in again on the same connection after a stale-key answer.
func (s *session) reSignIn(ctx actor.Context, why string) {
	if s.phase != phaseUp || s.conn == nil {
		return // already signing in, or no connection to do it on
	}
	s.log.Warn("signing in again", "why", why, "batch", s.batch)
	s.signIn(ctx)
}

func (s *session) signInAsked(ctx actor.Context) {
	s.want = true
	if ctx.Sender() != nil {
		s.signInWaiters = append(s.signInWaiters, ctx.Sender())
	}
	switch s.phase {
	case phaseConnected:
		s.signIn(ctx)
	case phaseUp:
		s.log.Info("new batch asked for")
		s.signIn(ctx)
	}
	// down: the next connection signs in; signing in/saving: under way; signing out:
	// signedOut signs in.
}

func (s *session) signOutAsked(ctx actor.Context) {
	s.want = false
	if ctx.Sender() != nil {
		s.signOutWaiters = append(s.signOutWaiters, ctx.Sender())
	}
	switch s.phase {
	case phaseUp:
		s.signOut(ctx)
	case phaseDown, phaseConnected:
		s.answerWaiters(ctx)
	}
	// signing in/saving: goUp signs out; signing out: under way.
}

func (s *session) signOut(ctx actor.Context) {
	s.markDown("signing out")
	h := s.header(s.batch)
	p, err := platform.Pack(h, &platform.SignOut{}, s.dynamicK)
	if err == nil {
		err = s.write(p)
	}
	if err != nil {
		s.log.Warn("SIGN-OUT not sent", "err", err)
		s.phase = phaseConnected
		s.signedOut(ctx)
		return
	}
	s.phase, s.signOutSeq = phaseSigningOut, h.Seq
	cancelTimer(&s.signOutTimer)
	s.signOutTimer = s.after(s.cfg.RequestTimeout, signOutTimeout{conn: s.conn})
	s.log.Info("signing out", "batch", s.batch)
}

func (s *session) signOutResponse(ctx actor.Context, in inbound) {
	if s.phase != phaseSigningOut || in.hdr.Seq != s.signOutSeq {
		s.log.Warn("unexpected SIGN-OUT RESPONSE dropped", "seq", in.hdr.Seq)
		return
	}
	s.log.Info("signed out", "batch", s.batch, "code", string(in.hdr.Result), "err", in.err)
	s.signedOut(ctx)
}

func (s *session) signedOut(ctx actor.Context) {
	cancelTimer(&s.signOutTimer)
	if s.conn != nil {
		s.phase = phaseConnected
	}
	s.setStatus(false, "signed out")
	s.answerWaiters(ctx)
	if s.want && s.phase == phaseConnected {
		s.signIn(ctx)
	}
}

// answerWaiters gives SignOut's waiters the status.
func (s *session) answerWaiters(ctx actor.Context) {
	for _, w := range s.signOutWaiters {
		ctx.Send(w, s.status())
	}
	s.signOutWaiters = nil
}

// ---- heartbeat ----

func (s *session) sendHeartbeat(ctx actor.Context, conn *connection) {
	if conn != s.conn || s.phase != phaseUp || s.heartbeat != (slot{}) {
		return
	}
	if !s.degraded && s.now().Sub(s.lastRx) < s.cfg.HeartbeatInterval {
		return // an answer arrived within the interval: the session is alive
	}
	h := s.header(s.batch)
	p, err := platform.Pack(h, &platform.Heartbeat{}, s.dynamicK)
	if err != nil {
		s.log.Error("heartbeat not packed", "err", err)
		return
	}
	if err := s.write(p); err != nil {
		s.failWrite(err)
		return
	}
	s.heartbeat = slot{h.Batch, h.Seq}
	s.hbWait = s.after(s.cfg.HeartbeatTimeout, heartbeatLost{conn: s.conn, at: s.heartbeat})
}

func (s *session) heartbeatResponse(ctx actor.Context, in inbound) {
	at := slot{in.hdr.Batch, in.hdr.Seq}
	if at != s.heartbeat || at == (slot{}) {
		s.log.Info("unmatched heartbeat answer dropped", "batch", at.batch, "seq", at.seq)
		return
	}
	s.heartbeat = slot{}
	cancelTimer(&s.hbWait)
	switch c := in.hdr.Result; {
	case in.err != nil:
		s.reSignIn(ctx, fmt.Sprintf("heartbeat answer refused: %v", in.err))
	case staleKey(c):
		s.reSignIn(ctx, "heartbeat: "+codeText(c))
	case c == platform.OK:
		if s.degraded {
			s.degraded = false
			s.log.Info("platform service back")
			s.setStatus(true, fmt.Sprintf("signed in, batch %d", s.batch))
		}
	default:
		if !s.degraded {
			s.log.Warn("platform cannot process loads", "why", codeText(c))
		}
		s.degraded = true
		s.setStatus(false, "heartbeat: "+codeText(c))
	}
}

// ---- requests ----

func (s *session) request(ctx actor.Context, req any) {
	p := &pending{req: req, reqID: reqIDOf(req), sender: ctx.Sender()}
	if !s.usable() {
		s.answer(ctx, p, failure(req, "platform link down: "+s.why))
		return
	}
	if len(s.inFlight)+len(s.parked) >= s.cfg.MaxInFlight {
		s.answer(ctx, p, failure(req, fmt.Sprintf("platform link busy: %d requests in flight", s.cfg.MaxInFlight)))
		return
	}
	w, err := wireOf(req, s.now())
	if err != nil {
		s.log.Error("platform request not sent", "req_id", p.reqID, "err", err)
		s.answer(ctx, p, failure(req, err.Error()))
		return
	}
	p.wire = w
	s.send(ctx, p)
}

// send numbers, MACs and writes one request and arms its timeout.
func (s *session) send(ctx actor.Context, p *pending) {
	h := s.header(s.batch)
	b, err := platform.Pack(h, p.wire, s.dynamicK)
	if err != nil {
		s.log.Error("platform request not packed", "req_id", p.reqID, "err", err)
		s.answer(ctx, p, failure(p.req, fmt.Sprintf("not sent: %v", err)))
		return
	}
	if err := s.write(b); err != nil {
		s.answer(ctx, p, failure(p.req, fmt.Sprintf("write: %v", err)))
		s.failWrite(err)
		return
	}
	s.gen++
	p.at, p.gen = slot{h.Batch, h.Seq}, s.gen
	p.timer = s.after(s.cfg.RequestTimeout, requestTimeout{at: p.at, gen: p.gen})
	s.inFlight[p.at] = p
}

func (s *session) answer(ctx actor.Context, p *pending, res any) {
	if p.sender == nil {
		s.log.Warn("platform answer for nobody dropped (request not sent with Request)", "req_id", p.reqID, "answer", fmt.Sprintf("%T", res))
		return
	}
	ctx.Send(p.sender, res)
}

// failAll answers every waiting request with Err.
func (s *session) failAll(ctx actor.Context, why string) {
	for at, p := range s.inFlight {
		cancelTimer(&p.timer)
		delete(s.inFlight, at)
		s.answer(ctx, p, failure(p.req, why))
	}
	for _, p := range s.parked {
		s.answer(ctx, p, failure(p.req, why))
	}
	s.parked = nil
}

func (s *session) requestTimedOut(ctx actor.Context, m requestTimeout) {
	p := s.inFlight[m.at]
	if p == nil || p.gen != m.gen {
		return
	}
	delete(s.inFlight, m.at)
	if len(s.expired) >= maxExpired {
		clear(s.expired)
	}
	s.expired[m.at] = p.reqID
	s.log.Warn("platform request timed out", "req_id", p.reqID, "type", p.wire.Type(), "batch", m.at.batch, "seq", m.at.seq)
	s.answer(ctx, p, failure(p.req, "no answer from the platform within "+s.cfg.RequestTimeout.String()))
}

func (s *session) inbound(ctx actor.Context, in inbound) {
	if in.conn != s.conn || in.conn == nil {
		return
	}
	if !in.peeked {
		s.log.Warn("unreadable frame from the platform dropped", "err", in.err)
		return
	}
	switch in.hdr.Type {
	case platform.TypeSignInResp:
		s.signInResponse(ctx, in)
	case platform.TypeSignOutResp:
		s.signOutResponse(ctx, in)
	case platform.TypeHeartbeatResp:
		s.heartbeatResponse(ctx, in)
	default:
		if !in.hdr.Type.IsResponse() {
			s.log.Warn("request from the platform dropped", "type", in.hdr.Type)
			return
		}
		s.response(ctx, in)
	}
}

// response matches an answer to its request by batch and sequence number.
func (s *session) response(ctx actor.Context, in inbound) {
	h := in.hdr
	at := slot{h.Batch, h.Seq}
	p := s.inFlight[at]
	if p == nil {
		if reqID, ok := s.expired[at]; ok {
			delete(s.expired, at)
			s.log.Info("late answer dropped", "req_id", reqID, "type", h.Type, "code", string(h.Result), "batch", h.Batch, "seq", h.Seq)
		} else {
			s.log.Warn("unmatched answer dropped", "type", h.Type, "code", string(h.Result), "batch", h.Batch, "seq", h.Seq)
		}
		return
	}
	delete(s.inFlight, at)
	cancelTimer(&p.timer)
	s.lastRx = s.now() // a business answer proves the session as well as a heartbeat
	if h.Type != p.wire.Type().Response() {
		s.log.Error("answer of the wrong type", "req_id", p.reqID, "want", p.wire.Type().Response(), "got", h.Type)
		s.answer(ctx, p, failure(p.req, fmt.Sprintf("platform answered %s to %s", h.Type, p.wire.Type())))
		return
	}
	if in.err != nil {
		// The answer cannot be trusted, so the outcome is open. A MAC failure under the
		// current key means the keys disagree: sign in again.
		s.log.Warn("platform answer refused", "req_id", p.reqID, "err", in.err)
		s.answer(ctx, p, failure(p.req, fmt.Sprintf("platform answer refused: %v", in.err)))
		if errors.Is(in.err, platform.ErrMAC) && h.Batch == s.batch {
			s.reSignIn(ctx, "answer MAC does not verify")
		}
		return
	}
	if staleKey(h.Result) {
		s.stale(ctx, p, h)
		return
	}
	res, err := answerOf(p.req, h, in.msg)
	if err != nil {
		s.log.Error("platform answer does not fit its request", "req_id", p.reqID, "err", err)
		res = failure(p.req, err.Error())
	}
	s.answer(ctx, p, res)
}

// stale handles A0/A1/A4: sign in again (unless that already happened) and re-send the
// request once with the new batch; a second stale answer ends it with Err.
func (s *session) stale(ctx actor.Context, p *pending, h platform.Header) {
	why := codeText(h.Result)
	if p.retried {
		s.answer(ctx, p, failure(p.req, why+" again after signing in again"))
		return
	}
	p.retried = true
	switch s.phase {
	case phaseUp, phaseSigningIn, phaseSaving:
	default: // signed out or signing out: no new session to re-send it in
		s.answer(ctx, p, failure(p.req, why+"; session closed"))
		return
	}
	s.log.Info("stale key: request re-sent after sign-in", "req_id", p.reqID, "code", string(h.Result), "batch", h.Batch)
	if s.phase == phaseUp && h.Batch != s.batch {
		s.send(ctx, p) // a newer session exists already
		return
	}
	s.parked = append(s.parked, p)
	s.reSignIn(ctx, why)
}
