package loads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// Internal messages of a transaction actor. owner is the incarnation that armed the timer or
// started the commit: after a supervisor restart the same PID gets a new actor, which must
// not act on its predecessor's commits and timers (it reloads the durable state instead).
type (
	committed struct {
		owner *txnActor
		err   error
	}
	timerFired struct {
		owner *txnActor
		kind  txn.TimerKind
		gen   uint64
	}
	graceUp struct{ owner *txnActor }
)

// Messages from a transaction actor to the supervisor.
type (
	// retire: the load is final and its grace period is over; stop routing to it.
	retire struct {
		id  string
		pid *actor.PID
	}
	// resumed: a recovered load's Restarted step is durable and its effects performed
	// (or it failed trying).
	resumed struct{ id string }
)

// input is one event for the core and what the shell must remember about it.
type input struct {
	msg     txn.Msg
	batch   uint32                 // PlatformCheckResult.Batch, kept in the record
	confirm *messages.KioskConfirm // answered once the state after it is durable
}

type armed struct {
	at     time.Time
	gen    uint64
	cancel scheduler.CancelFunc
}

// txnSpec is what the supervisor spawns a transaction actor with.
type txnSpec struct {
	id     string
	cfg    Config
	deps   Deps
	load   *messages.StartLoad   // a new load (with the PIN block, kept in memory only)
	req    *txn.KioskLoadRequest // its first event
	seed   *Record               // the record recovery already read (first incarnation only)
	resume bool                  // report resumed to the supervisor after the first step
	pool   *workerPool           // the supervisor's dispatcher; nil: protoactor's default
}

func txnProps(spec txnSpec) *actor.Props {
	first := true // the producer runs again on each supervisor restart: reload from the store
	var opts []actor.PropsOption
	if spec.pool != nil {
		opts = append(opts, actor.WithDispatcher(spec.pool))
	}
	return actor.PropsFromProducer(func() actor.Actor {
		a := &txnActor{spec: spec, timers: make(map[txn.TimerKind]armed, 2)}
		if !first {
			a.spec.seed = nil
		}
		a.fresh = first && spec.req != nil
		first = false
		return a
	}, opts...)
}

// txnActor is the shell of one load: Step, persist (CommitAsync), effects, timers.
type txnActor struct {
	spec   txnSpec
	logger *slog.Logger // lg(): built on the first line written
	self   *actor.PID
	sched  *scheduler.TimerScheduler

	rec      Record  // the last durable record
	busy     bool    // a commit is in flight
	flight   flight  // what it carries
	queue    []input // events that arrived while busy, in order
	timers   map[txn.TimerKind]armed
	gen      uint64
	fresh    bool // first incarnation of a new load: nothing can be stored yet
	told     bool // this incarnation sent the kiosk its LoadReply
	dead     bool // a commit failed: nothing more is done
	retiring bool
	grace    scheduler.CancelFunc
}

type flight struct {
	next    Record
	effects []txn.Effect
	in      input
}

func (a *txnActor) Receive(ctx actor.Context) {
	switch m := value(ctx.Message()).(type) {
	case *actor.Started:
		a.started(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.stopTimers()
	case committed:
		a.committed(ctx, m)
	case timerFired:
		a.timerFired(ctx, m)
	case graceUp:
		a.graceUp(ctx, m)
	case messages.PlatformCheckResult:
		a.step(ctx, input{msg: checkEvent(m), batch: m.Batch})
	case messages.BankDebitResult:
		a.bankResult(ctx, m)
	case messages.PlatformBookResult:
		a.step(ctx, input{msg: bookEvent(m)})
	case messages.PlatformConfirmResult:
		a.step(ctx, input{msg: confirmEvent(m)})
	case messages.ReversalQueued:
		if a.enabled(slog.LevelDebug) {
			a.lg().Debug("reversal queued at the bank link", "stan", m.STAN)
		}
	case messages.ReversalDone:
		a.step(ctx, input{msg: txn.ReversalDone{Code: m.Code}})
	case messages.KioskConfirm:
		a.step(ctx, input{msg: kioskConfirmEvent(m), confirm: &m})
	case messages.StartLoad:
		a.duplicate(ctx, m)
	}
}

// started loads the durable record (or takes the new load) and steps the first event:
// Restarted for a stored unfinished load, the KioskLoadRequest for a new one.
func (a *txnActor) started(ctx actor.Context) {
	a.self = ctx.Self()
	a.sched = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
	rec, found, err := a.load()
	switch {
	case err != nil:
		a.lg().Error("cannot read the transaction record", "err", err)
		a.fail(ctx, err)
	case found:
		a.rec = rec
		if rec.State.Final() {
			a.reportResumed(ctx)
			a.armGrace()
			return
		}
		a.step(ctx, input{msg: txn.Restarted{}})
	case a.spec.req != nil:
		a.rec = Record{V: recordVersion, Start: atRest(*a.spec.load)}
		a.step(ctx, input{msg: *a.spec.req})
	default:
		a.lg().Warn("nothing stored for this transaction: stopping")
		a.reportResumed(ctx)
		a.retire(ctx)
	}
}

func (a *txnActor) load() (Record, bool, error) {
	if a.fresh {
		return Record{}, false, nil
	}
	if a.spec.seed != nil {
		return *a.spec.seed, true, nil
	}
	b, err := a.spec.deps.Store.Get(TxnKey(a.spec.id))
	if errors.Is(err, persistence.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("load txn %s: %w", a.spec.id, err)
	}
	rec, err := DecodeRecord(b)
	if err != nil {
		return Record{}, false, fmt.Errorf("load txn %s: %w", a.spec.id, err)
	}
	return rec, true, nil
}

// step is the loop: Step, then persist if changed, and only after the commit succeeded
// perform the effects (committed). Events that come while a commit is in flight wait.
func (a *txnActor) step(ctx actor.Context, in input) {
	if a.dead {
		a.answerConfirm(ctx, in, CodeSystem)
		return
	}
	if a.busy {
		a.queue = append(a.queue, in)
		return
	}
	prev := a.rec
	s2, effects := txn.Step(prev.State, txn.Event{Now: a.spec.deps.Now(), Msg: in.msg})
	next := a.derive(prev, s2, effects, in)
	if !next.differs(prev) {
		a.perform(ctx, effects)
		a.answerConfirm(ctx, in, "")
		return
	}
	ops, err := next.ops(prev)
	if err != nil {
		a.flight = flight{next: next, in: in}
		a.fail(ctx, err)
		return
	}
	a.busy = true
	a.flight = flight{next: next, effects: effects, in: in}
	owner, self, root := a, a.self, ctx.ActorSystem().Root
	a.spec.deps.Store.CommitAsync(ops, func(err error) { root.Send(self, committed{owner: owner, err: err}) })
}

// derive is the record after a step: the core's state plus what its effects will need.
func (a *txnActor) derive(prev Record, s2 txn.State, effects []txn.Effect, in input) Record {
	next := prev
	next.State = s2
	if s2.Ref != prev.State.Ref && in.batch != 0 {
		next.Batch = in.batch
	}
	for _, e := range effects {
		switch e := e.(type) {
		case txn.SendBankDebit:
			d := messages.BankDebit{ReqID: s2.ID, Bank: e.Bank, STAN: e.STAN, Terminal: s2.Terminal,
				Merchant: a.spec.cfg.Merchant, Amount: e.Amount, Ref: s2.Ref, Payer: next.Start.Payer}
			next.Debit = &d
		case txn.ReplyKiosk:
			r := loadReply(s2, next.Start, e)
			next.Reply = &r
		}
	}
	return next
}

func (a *txnActor) committed(ctx actor.Context, m committed) {
	if m.owner != a {
		return // a commit of the previous incarnation: this one reloaded the state
	}
	a.busy = false
	f := a.flight
	a.flight = flight{}
	if m.err != nil {
		a.flight = f
		a.fail(ctx, m.err)
		return
	}
	a.rec = f.next
	a.perform(ctx, f.effects)
	a.answerConfirm(ctx, f.in, "")
	a.reportResumed(ctx)
	for !a.busy && !a.dead && len(a.queue) > 0 {
		in := a.queue[0]
		a.queue = a.queue[1:]
		a.step(ctx, in)
	}
}

// fail stops the transaction after a failed commit or read: no effect of the failed step
// is performed (its state may or may not be on disk; recovery after a restart resumes
// whichever it is). The kiosk gets a failure if it was not answered; the terminal layer
// refuses new loads while the store is unhealthy.
func (a *txnActor) fail(ctx actor.Context, err error) {
	a.lg().Error("transaction stopped: its state could not be made durable; no effect performed",
		"phase", a.rec.State.Phase, "next_phase", a.flight.next.State.Phase, "err", err)
	a.dead = true
	a.busy = false
	a.stopTimers()
	if !a.told && a.rec.Reply == nil && a.rec.Start.TxnID != "" {
		a.send(ctx, a.rec.Start.Terminal, failedReply(a.rec.Start, CodeSystem))
		a.told = true
	}
	a.answerConfirm(ctx, a.flight.in, CodeSystem)
	for _, in := range a.queue {
		a.answerConfirm(ctx, in, CodeSystem)
	}
	a.queue = nil
	a.flight = flight{}
	a.reportResumed(ctx)
	a.retire(ctx)
}

// perform runs the effects of a durable step in order, timers last.
func (a *txnActor) perform(ctx actor.Context, effects []txn.Effect) {
	for _, e := range effects {
		switch e := e.(type) {
		case txn.SendPlatformCheck:
			a.request(ctx, a.spec.deps.Platform, "platform", a.platformCheck())
		case txn.SendBankDebit:
			a.sendDebit(ctx, e)
		case txn.EnqueueReversal:
			a.request(ctx, a.spec.deps.Banks[e.Bank], e.Bank, a.reversal(e))
		case txn.SendPlatformBook:
			s := a.rec.State
			a.request(ctx, a.spec.deps.Platform, "platform", messages.PlatformBook{
				ReqID: s.ID + "/book/" + strconv.Itoa(s.BookAttempts), Ref: e.Ref, Amount: s.Amount,
				BankCode: s.BankCode, RRN: s.RRN, AuthCode: s.AuthCode, SettleDate: s.SettleDate})
		case txn.SendPlatformConfirm:
			a.request(ctx, a.spec.deps.Platform, "platform", messages.PlatformConfirm{
				ReqID: a.rec.State.ID + "/confirm/" + strconv.Itoa(a.rec.State.ConfirmAttempts),
				Ref:   e.Ref, Status: writeByte(e.Status), TAC: unhex4(e.TAC)})
		case txn.ReplyKiosk:
			if a.rec.Reply != nil {
				a.send(ctx, a.rec.State.Terminal, *a.rec.Reply)
				a.told = true
			}
		case txn.Done:
			if s := a.rec.State; a.enabled(slog.LevelInfo) {
				a.lg().Info("load finished", "outcome", e.Outcome, "ref", s.Ref, "amount", s.Amount,
					"bank", s.BankCode, "pan", s.MaskedPAN, "write", s.Write, "txn_status", s.Txn)
			}
			a.armGrace()
		case txn.Note:
			if a.enabled(slog.LevelDebug) {
				a.lg().Debug("core note", "note", e.Text)
			}
		}
	}
	for _, e := range effects {
		switch e := e.(type) {
		case txn.SetTimer:
			a.setTimer(e.Kind, e.At)
		case txn.CancelTimer:
			a.cancelTimer(e.Kind)
		}
	}
}

func (a *txnActor) platformCheck() messages.PlatformCheck {
	s := a.rec.State
	return messages.PlatformCheck{ReqID: s.ID + "/check", Terminal: s.Terminal, KioskTrace: s.KioskTrace,
		Amount: s.Amount, BankCode: s.BankCode, Card: a.rec.Start.Card}
}

// sendDebit sends the persisted 0200 with the PIN block that only this incarnation holds.
func (a *txnActor) sendDebit(ctx actor.Context, e txn.SendBankDebit) {
	if a.rec.Debit == nil || a.spec.load == nil {
		a.lg().Error("0200 not sent: no PIN block in this incarnation; the bank deadline reverses", "stan", e.STAN)
		return
	}
	d := *a.rec.Debit
	d.Payer.PINBlock = a.spec.load.Payer.PINBlock
	a.request(ctx, a.spec.deps.Banks[e.Bank], e.Bank, d)
}

func (a *txnActor) reversal(e txn.EnqueueReversal) messages.EnqueueReversal {
	r := messages.EnqueueReversal{ReqID: e.TxnID, Bank: e.Bank, STAN: e.STAN, Date: e.Date,
		Amount: e.Amount, Reason: e.Reason}
	if a.rec.Debit != nil {
		r.Original = *a.rec.Debit
	}
	return r
}

func (a *txnActor) bankResult(ctx actor.Context, m messages.BankDebitResult) {
	if m.STAN != "" && m.STAN != a.rec.State.STAN {
		a.lg().Warn("0210 for another STAN dropped", "stan", m.STAN, "ours", a.rec.State.STAN)
		return
	}
	ev, ok := bankEvent(m)
	if !ok {
		a.lg().Warn("0200 not sent (bank link down): waiting for the bank deadline, which reverses",
			"stan", a.rec.State.STAN, "deadline", a.rec.State.BankDeadline)
		return
	}
	a.step(ctx, input{msg: ev})
}

// duplicate answers a repeated StartLoad with what the kiosk was told, or ignores it while
// the load has not answered yet (the terminal also dedupes).
func (a *txnActor) duplicate(ctx actor.Context, m messages.StartLoad) {
	if a.rec.Reply != nil {
		a.send(ctx, m.Terminal, *a.rec.Reply)
		return
	}
	a.lg().Info("duplicate load request while in progress: ignored", "phase", a.rec.State.Phase)
}

// answerConfirm answers a kiosk CONFIRM once the state after it is durable; code "" means
// judge from that state.
func (a *txnActor) answerConfirm(ctx actor.Context, in input, code string) {
	if in.confirm == nil {
		return
	}
	if code == "" {
		code = confirmCode(a.rec.State, in.confirm.Status)
	}
	a.send(ctx, in.confirm.Terminal, messages.KioskConfirmReply{Terminal: in.confirm.Terminal,
		KioskTrace: in.confirm.KioskTrace, Ref: in.confirm.Ref, Code: code})
}

// request sends msg to pid; who is "platform" or a bank code (named only in the error).
func (a *txnActor) request(ctx actor.Context, pid *actor.PID, who string, msg any) {
	if pid == nil {
		if who != "platform" {
			who = "bank " + who
		}
		a.lg().Error("no actor to send to: the timers of the core take over", "to", who, "msg", fmt.Sprintf("%T", msg))
		return
	}
	ctx.Request(pid, msg)
}

func (a *txnActor) send(ctx actor.Context, terminal string, msg any) {
	pid := a.spec.deps.Terminal(terminal)
	if pid == nil {
		a.lg().Warn("terminal gone: answer dropped", "terminal", terminal, "msg", fmt.Sprintf("%T", msg))
		return
	}
	ctx.Send(pid, msg)
}

// setTimer arms the one timer of kind; a fire becomes txn.Timer{Kind}.
func (a *txnActor) setTimer(kind txn.TimerKind, at time.Time) {
	a.cancelTimer(kind)
	a.gen++
	delay := max(at.Sub(a.spec.deps.Now()), 0)
	cancel := a.sched.SendOnce(delay, a.self, timerFired{owner: a, kind: kind, gen: a.gen})
	a.timers[kind] = armed{at: at, gen: a.gen, cancel: cancel}
}

func (a *txnActor) cancelTimer(kind txn.TimerKind) {
	if t, ok := a.timers[kind]; ok {
		t.cancel()
		delete(a.timers, kind)
	}
}

func (a *txnActor) stopTimers() {
	for k := range a.timers {
		a.cancelTimer(k)
	}
	if a.grace != nil {
		a.grace()
		a.grace = nil
	}
}

func (a *txnActor) timerFired(ctx actor.Context, m timerFired) {
	t, ok := a.timers[m.kind]
	if m.owner != a || !ok || t.gen != m.gen {
		return // cancelled, re-armed, or armed by the previous incarnation
	}
	delete(a.timers, m.kind)
	if now := a.spec.deps.Now(); now.Before(t.at) {
		// Fired early by the clock the core sees: the core would ignore it and the
		// deadline would be lost, so wait for the rest.
		a.setTimer(m.kind, t.at)
		return
	}
	a.step(ctx, input{msg: txn.Timer{Kind: m.kind}})
}

func (a *txnActor) armGrace() {
	if a.grace == nil {
		a.grace = a.sched.SendOnce(a.spec.cfg.grace(), a.self, graceUp{owner: a})
	}
}

func (a *txnActor) graceUp(ctx actor.Context, m graceUp) {
	if m.owner == a {
		a.retire(ctx)
	}
}

// retire asks the supervisor to stop routing to this actor and to stop it after what is
// already in its mailbox (answered from memory).
func (a *txnActor) retire(ctx actor.Context) {
	if a.retiring {
		return
	}
	a.retiring = true
	ctx.Send(ctx.Parent(), retire{id: a.spec.id, pid: a.self})
}

func (a *txnActor) reportResumed(ctx actor.Context) {
	if a.spec.resume {
		a.spec.resume = false
		ctx.Send(ctx.Parent(), resumed{id: a.spec.id})
	}
}

// lg is the actor's logger, with its transaction id. Built on first use: slog's With
// allocates even when nothing is logged, and most loads log nothing at the usual levels.
func (a *txnActor) lg() *slog.Logger {
	if a.logger == nil {
		a.logger = a.spec.deps.Logger.With("txn", a.spec.id)
	}
	return a.logger
}

// enabled guards hot log lines whose attributes would allocate with the level off.
func (a *txnActor) enabled(l slog.Level) bool {
	return a.spec.deps.Logger.Enabled(context.Background(), l)
}

func writeByte(w txn.WriteStatus) byte {
	if w == "" {
		return 'U'
	}
	return w[0]
}
