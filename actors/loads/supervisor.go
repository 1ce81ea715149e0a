package loads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// forwardTimeout bounds the wait for the platform's answer to a forwarded (re-write) confirm.
const forwardTimeout = 30 * time.Second

// Props is the loads supervisor: it starts a transaction actor per load, routes kiosk
// confirms and reversal answers to them, and on start resumes every unfinished transaction
// from the store. Its children are restarted one for one with back-off, from their
// persisted state.
func Props(cfg Config, deps Deps) *actor.Props {
	deps = deps.withDefaults()
	pool := newWorkerPool(poolWorkers, poolIdle)
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{cfg: cfg, deps: deps, log: deps.Logger.With("actor", "loads"),
			live: map[string]*actor.PID{}, recovering: map[string]bool{}, pool: pool}
	}, actor.WithSupervisor(actor.NewExponentialBackoffStrategy(time.Minute, 100*time.Millisecond)),
		actor.WithDispatcher(pool))
}

type supervisor struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	live       map[string]*actor.PID // transaction id -> its actor
	recovering map[string]bool       // recovered ids not yet resumed
	recStart   time.Time
	stats      Stats
	fwdSeq     uint64
	pool       *workerPool // the dispatcher of this supervisor and its transaction actors
}

// The worker pool of the loads actors (dispatch.go): at most poolWorkers parked goroutines,
// each gone after poolIdle without work.
const (
	poolWorkers = 64
	poolIdle    = 2 * time.Second
)

func (s *supervisor) Receive(ctx actor.Context) {
	switch m := value(ctx.Message()).(type) {
	case *actor.Started:
		s.recover(ctx)
	case messages.StartLoad:
		s.startLoad(ctx, m)
	case messages.LoadSettled:
		s.settle(m)
	case *messages.LoadSettled:
		s.settle(*m)
	case messages.KioskConfirm:
		s.kioskConfirm(ctx, m)
	case messages.ReversalDone:
		s.reversalDone(ctx, m)
	case resumed:
		s.resumed(m.id)
	case retire:
		s.retire(ctx, m)
	case *actor.Terminated:
		s.terminated(ctx, m)
	case StatsRequest:
		st := s.stats
		st.Live = len(s.live)
		ctx.Respond(st)
	}
}

// recover resumes every unfinished transaction: one actor each, stepped with Restarted.
func (s *supervisor) recover(ctx actor.Context) {
	s.recStart = time.Now()
	var unfinished []Record
	bad := 0
	err := s.deps.Store.Scan(persistence.Key("txn"), func(_, v []byte) error {
		rec, err := DecodeRecord(v)
		if err != nil {
			bad++
			s.log.Error("unreadable transaction record skipped: needs manual handling", "err", err)
			return nil
		}
		if !rec.State.Final() {
			unfinished = append(unfinished, rec)
		}
		return nil
	})
	if err != nil {
		s.log.Error("recovery scan failed: unfinished transactions may not have been resumed", "err", err)
	}
	scanned := time.Since(s.recStart)
	for i := range unfinished {
		rec := &unfinished[i]
		id := rec.State.ID
		if _, err := s.spawn(ctx, txnSpec{id: id, seed: rec, resume: true}); err != nil {
			s.log.Error("cannot resume transaction", "txn", id, "err", err)
			continue
		}
		s.recovering[id] = true
	}
	s.stats.Recovered = len(s.recovering)
	s.log.Info("recovery started", "unfinished", s.stats.Recovered, "unreadable", bad, "scan_took", scanned)
	if len(s.recovering) == 0 {
		s.stats.RecoveryTook = time.Since(s.recStart)
	}
}

func (s *supervisor) resumed(id string) {
	if !s.recovering[id] {
		return
	}
	delete(s.recovering, id)
	if len(s.recovering) == 0 {
		s.stats.RecoveryTook = time.Since(s.recStart)
		s.log.Info("recovery finished", "resumed", s.stats.Recovered, "took", s.stats.RecoveryTook)
	}
}

// startLoad allocates the STAN and starts the transaction actor, unless the load is known.
func (s *supervisor) startLoad(ctx actor.Context, m messages.StartLoad) {
	if pid := s.live[m.TxnID]; pid != nil {
		ctx.Send(pid, m) // a duplicate: the live load answers it or ignores it
		return
	}
	rec, found, err := s.stored(m.TxnID)
	switch {
	case err != nil:
		s.loadLog(m).Error("cannot check for a duplicate load: refused", "err", err)
		s.reply(ctx, m.Terminal, failedReply(m, CodeSystem))
		return
	case found && rec.Reply != nil:
		s.loadLog(m).Info("duplicate load request answered from the store", "result", rec.Reply.Result)
		s.reply(ctx, m.Terminal, *rec.Reply)
		return
	case found && !rec.State.Final():
		s.respawn(ctx, m.TxnID, m)
		return
	case found:
		s.loadLog(m).Info("duplicate load request for a finished load with no answer on record: ignored")
		return
	}
	if err := s.deps.Store.Healthy(); err != nil {
		s.loadLog(m).Error("store unavailable: load refused", "err", err)
		s.reply(ctx, m.Terminal, failedReply(m, CodeSystem))
		return
	}
	ctr := s.deps.STAN[m.BankCode]
	if ctr == nil || s.deps.Banks[m.BankCode] == nil {
		s.loadLog(m).Warn("no link for bank code: load refused", "bank", m.BankCode)
		s.reply(ctx, m.Terminal, failedReply(m, CodeNoRoute))
		return
	}
	n, err := ctr.Next()
	if err != nil {
		s.loadLog(m).Error("cannot allocate a STAN: load refused", "bank", m.BankCode, "err", err)
		s.reply(ctx, m.Terminal, failedReply(m, CodeSystem))
		return
	}
	now := s.deps.Now()
	req := txn.KioskLoadRequest{
		ID:         m.TxnID,
		Terminal:   m.Terminal,
		KioskTrace: m.KioskTrace,
		CardSerial: hexUpper(m.Card.AppSerial[:]),
		Amount:     m.Amount,
		BankCode:   m.BankCode,
		MaskedPAN:  maskPAN(m.Payer.PAN),
		STAN:       stan6(n),
		BankDate:   now.Format("0102"),
		Limits:     s.cfg.Limits,
	}
	load := m
	if _, err := s.spawn(ctx, txnSpec{id: m.TxnID, load: &load, req: &req}); err != nil {
		s.loadLog(m).Error("cannot start the transaction actor: load refused", "err", err)
		s.reply(ctx, m.Terminal, failedReply(m, CodeSystem))
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.loadLog(m).Info("load started", "amount", m.Amount, "bank", m.BankCode, "pan", req.MaskedPAN, "stan", req.STAN)
	}
}

// loadLog is the logger of one load's lines (built only when a line is written: With
// costs several allocations even when the level is off).
func (s *supervisor) loadLog(m messages.StartLoad) *slog.Logger {
	return s.log.With("txn", m.TxnID, "terminal", m.Terminal, "trace", m.KioskTrace)
}

// stan6 is n as the 6-digit STAN (mod 10^6), without fmt.
func stan6(n uint64) string {
	n %= 1000000
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[:])
}

// kioskConfirm routes a CONFIRM by reference: to our load, or, for a reference that is not
// a load of ours (a re-write's), to the platform, answered when it acks.
func (s *supervisor) kioskConfirm(ctx actor.Context, m messages.KioskConfirm) {
	id, err := s.deps.Store.Get(RefKey(m.Ref))
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		s.forwardConfirm(ctx, m)
		return
	case err != nil:
		s.log.Error("cannot look up the confirm's reference", "ref", m.Ref, "err", err)
		s.reply(ctx, m.Terminal, confirmReply(m, CodeSystem))
		return
	}
	// A load that ended booked but not written (F or U) is completed by a re-write, whose
	// CONFIRM carries the same reference: that one is the platform's to record.
	if rec, found, err := s.stored(string(id)); err == nil && found && rec.State.Final() &&
		(rec.State.Write == txn.WriteF || rec.State.Write == txn.WriteU) {
		s.forwardConfirm(ctx, m)
		return
	}
	s.route(ctx, string(id), m, func(rec Record) {
		s.reply(ctx, m.Terminal, confirmReply(m, confirmCode(rec.State, m.Status)))
	})
}

func (s *supervisor) forwardConfirm(ctx actor.Context, m messages.KioskConfirm) {
	if s.deps.Platform == nil {
		s.reply(ctx, m.Terminal, confirmReply(m, CodePlatformDown))
		return
	}
	s.fwdSeq++
	req := messages.PlatformConfirm{ReqID: fmt.Sprintf("loads/confirm/%s/%d", m.Ref, s.fwdSeq),
		Ref: m.Ref, Status: m.Status, TAC: m.TAC}
	f := ctx.RequestFuture(s.deps.Platform, req, forwardTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		code := CodePlatformDown
		if r, ok := value(res).(messages.PlatformConfirmResult); ok && err == nil {
			switch {
			case r.Err != "":
			case r.Refused != "":
				code = r.Refused
			default:
				code = "00"
			}
		}
		s.log.Info("re-write confirm forwarded to the platform", "ref", m.Ref, "status", string(rune(m.Status)), "code", code, "err", err)
		if code == "00" && m.Status == 'S' {
			s.settle(messages.LoadSettled{Ref: m.Ref, TAC: m.TAC, How: 'R'})
		}
		s.reply(ctx, m.Terminal, confirmReply(m, code))
	})
}

// settle records against a load that ended F or U that its money reached the card later,
// so the reconciliation file lists it as written. Loads that are not ours (unknown
// reference) and loads already written are left alone.
func (s *supervisor) settle(m messages.LoadSettled) {
	id, err := s.deps.Store.Get(RefKey(m.Ref))
	if err != nil {
		if !errors.Is(err, persistence.ErrNotFound) {
			s.log.Error("cannot record a settled load", "ref", m.Ref, "err", err)
		}
		return
	}
	rec, found, err := s.stored(string(id))
	if err != nil || !found || !rec.State.Final() || rec.State.Write == txn.WriteS || rec.Settled != nil {
		return
	}
	how := "rewrite"
	if m.How == 'P' {
		how = "resolved"
	}
	rec.Settled = &Settled{At: s.deps.Now(), How: how, TAC: fmt.Sprintf("%X", m.TAC)}
	ops, err := rec.ops(rec) // same state: only the record itself is written
	if err != nil {
		s.log.Error("cannot record a settled load", "ref", m.Ref, "err", err)
		return
	}
	// Asynchronous: nothing waits on this note, and a crash before it lands only leaves
	// the file line at F/U, which the platform's journal corrects at reconciliation.
	s.deps.Store.CommitAsync(ops, func(err error) {
		if err != nil {
			s.log.Error("cannot record a settled load", "ref", m.Ref, "err", err)
		}
	})
	s.log.Info("load settled on its card", "ref", m.Ref, "how", how)
}

// reversalDone routes the bank link's answer to the load it reverses.
func (s *supervisor) reversalDone(ctx actor.Context, m messages.ReversalDone) {
	s.route(ctx, m.ReqID, m, func(rec Record) {
		s.log.Info("reversal answer for a finished load: nothing to do", "txn", m.ReqID, "outcome", rec.State.Outcome)
	})
}

// route delivers msg to the live actor of id, or to a respawned one if the load is
// unfinished in the store; for a finished one, final answers from the stored record.
func (s *supervisor) route(ctx actor.Context, id string, msg any, final func(Record)) {
	if pid := s.live[id]; pid != nil {
		ctx.Send(pid, msg)
		return
	}
	rec, found, err := s.stored(id)
	switch {
	case err != nil:
		s.log.Error("cannot read transaction: message dropped", "txn", id, "msg", fmt.Sprintf("%T", msg), "err", err)
	case !found:
		s.log.Warn("message for an unknown transaction dropped", "txn", id, "msg", fmt.Sprintf("%T", msg))
	case rec.State.Final():
		final(rec)
	default:
		s.respawn(ctx, id, msg)
	}
}

// respawn starts the actor of an unfinished stored load (it stopped after a failure) and
// hands it msg.
func (s *supervisor) respawn(ctx actor.Context, id string, msg any) {
	pid, err := s.spawn(ctx, txnSpec{id: id})
	if err != nil {
		s.log.Error("cannot restart transaction: message dropped", "txn", id, "err", err)
		return
	}
	ctx.Send(pid, msg)
}

func (s *supervisor) spawn(ctx actor.Context, spec txnSpec) (*actor.PID, error) {
	spec.cfg, spec.deps, spec.pool = s.cfg, s.deps, s.pool
	pid, err := ctx.SpawnNamed(txnProps(spec), spec.id)
	if err != nil {
		return nil, fmt.Errorf("spawn txn %s: %w", spec.id, err)
	}
	s.live[spec.id] = pid
	return pid, nil
}

func (s *supervisor) stored(id string) (Record, bool, error) {
	b, err := s.deps.Store.Get(TxnKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read txn %s: %w", id, err)
	}
	rec, err := DecodeRecord(b)
	if err != nil {
		return Record{}, false, err
	}
	return rec, true, nil
}

// retire stops routing to a transaction actor, then stops it once its mailbox is drained,
// so whatever was already sent to it is still answered.
func (s *supervisor) retire(ctx actor.Context, m retire) {
	if pid := s.live[m.id]; pid != nil && pid.Equal(m.pid) {
		delete(s.live, m.id)
	}
	ctx.Poison(m.pid)
}

func (s *supervisor) terminated(ctx actor.Context, m *actor.Terminated) {
	id := strings.TrimPrefix(m.Who.Id, ctx.Self().Id+"/")
	if pid := s.live[id]; pid != nil && pid.Equal(m.Who) {
		delete(s.live, id) // stopped by the supervision strategy (too many failures)
		s.log.Warn("transaction actor stopped while unfinished; resumed by the next message or restart", "txn", id)
	}
	s.resumed(id)
}

func (s *supervisor) reply(ctx actor.Context, terminal string, msg any) {
	pid := s.deps.Terminal(terminal)
	if pid == nil {
		s.log.Warn("terminal gone: answer dropped", "terminal", terminal, "msg", fmt.Sprintf("%T", msg))
		return
	}
	ctx.Send(pid, msg)
}

func confirmReply(m messages.KioskConfirm, code string) messages.KioskConfirmReply {
	return messages.KioskConfirmReply{Terminal: m.Terminal, KioskTrace: m.KioskTrace, Ref: m.Ref, Code: code}
}
