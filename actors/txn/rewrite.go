package txn

import (
	"crypto/subtle"
	"fmt"
	"time"
)

// The re-write (补写卡, DESIGN 5) of one booked load whose write status is F or U. It never
// touches the bank: the money is either on the card already or is written now, and a
// U load is never reversed. Same contract as Step: persist, then effects, then timers.

// RewritePhase is where a re-write stands.
type RewritePhase string

const (
	RewriteNew         RewritePhase = ""
	RewriteAwaitInit   RewritePhase = "await_init"   // kiosk asked for a fresh INIT FOR LOAD
	RewriteAsking      RewritePhase = "rewriting"    // platform REWRITE sent (MAC1 -> MAC2')
	RewriteAwaitCredit RewritePhase = "await_credit" // MAC2' given to the kiosk
	RewriteConfirming  RewritePhase = "confirming"   // platform CONFIRM sent, retried until acked
	RewriteDone        RewritePhase = "done"
)

// Outcomes of one re-write attempt (Done carries them like a load's).
const (
	RewriteWasApplied   Outcome = "was_applied"   // card had it already: S, nothing written
	RewriteWritten      Outcome = "written"       // written now: S
	RewriteStillPending Outcome = "still_pending" // F or U again: next visit tries again
	RewriteManual       Outcome = "manual"        // evidence inconclusive or refused: list it
)

// LogEvidence is what the card's load log (file 0018) says about serial S.
type LogEvidence string

const (
	LogUnknown LogEvidence = ""      // not read, or record rotated out
	LogOurs    LogEvidence = "ours"  // type-02 record with serial S matches amount, terminal, time
	LogOther   LogEvidence = "other" // serial S was used by a different load
)

// RewriteStart opens a re-write for one pending booked load found for the presented card.
// Serial, MAC2 and HostTime are the live evidence of the order: the INIT serial and the
// MAC2 last issued for it.
type RewriteStart struct {
	ID         string
	Ref        string
	Terminal   string
	CardSerial string
	Amount     int64
	Write      WriteStatus // F or U
	Serial     int
	MAC2       string
	HostTime   string
	Limits     Limits // uses Kiosk (INIT wait), Check (REWRITE answer), Confirm*, zero = default
}

// KioskInit is the kiosk's fresh INITIALIZE FOR LOAD for the pending amount, with the
// evidence it gathered when the serial had moved (GET TRANSACTION PROVE or the log).
type KioskInit struct {
	CardSerial string
	Serial     int // S' from the fresh INIT
	Balance    int64
	Random     string
	MAC1       string
	ProveMAC2  string // from 805A with serial S+1; "" if unavailable
	ProveTAC   string
	Log        LogEvidence
}

// PlatformRewriteOK: the platform checked MAC1 and issued MAC2' against the original ref.
type PlatformRewriteOK struct {
	MAC2     string
	HostTime string
}

// PlatformRewriteRefused: the platform will not re-write this order.
type PlatformRewriteRefused struct{ Code string }

func (RewriteStart) msg()           {}
func (KioskInit) msg()              {}
func (PlatformRewriteOK) msg()      {}
func (PlatformRewriteRefused) msg() {}

// AskKioskInit asks the kiosk for a fresh INIT FOR LOAD of Amount (and the evidence).
type AskKioskInit struct {
	Ref    string
	Amount int64
}

// SendPlatformRewrite asks MAC2' for the original reference against a fresh INIT.
type SendPlatformRewrite struct {
	Ref     string
	Serial  int
	Balance int64
	Random  string
	MAC1    string
}

func (AskKioskInit) effect()        {}
func (SendPlatformRewrite) effect() {}

// KioskNothingToWrite tells the kiosk the card already holds the pending load.
const KioskNothingToWrite KioskResult = "nothing_to_write"

// Kiosk codes of a re-write.
const (
	CodeWrongCard = "WC" // INIT came from another card
	CodeUndecided = "UD" // evidence inconclusive: left for manual handling
)

// RewriteState is one re-write attempt; plain and comparable like State.
type RewriteState struct {
	ID         string
	Phase      RewritePhase
	Ref        string
	Terminal   string
	CardSerial string
	Amount     int64
	Orig       WriteStatus // F or U when the re-write started

	// Live evidence of the order. When MAC2' is issued it replaces these: a fresh INIT
	// drew a new card random, so the older MAC2 can never be accepted by the card again.
	Serial   int
	MAC2     string
	HostTime string

	Init     KioskInit // the fresh INIT the decision was made on
	Decision string    // why: read by people and by reconciliation
	Write    WriteStatus
	TAC      string
	Kiosk    KioskResult
	Outcome  Outcome

	ConfirmAttempts int
	Limits          Limits
	InitDeadline    time.Time
	RewriteDeadline time.Time
	ConfirmDeadline time.Time
	ConfirmRetryAt  time.Time
	Finished        time.Time
}

// Final reports whether the attempt has ended.
func (s RewriteState) Final() bool { return s.Phase == RewriteDone }

// StepRewrite advances one re-write by one event.
func StepRewrite(s RewriteState, ev Event) (RewriteState, []Effect) {
	rw := &rewriter{s: s, now: ev.Now}
	if s.Final() {
		if _, ok := ev.Msg.(Restarted); !ok {
			rw.note("final (%s): %T ignored", s.Outcome, ev.Msg)
		}
		return s, rw.out
	}
	switch m := ev.Msg.(type) {
	case RewriteStart:
		rw.start(m)
	case KioskInit:
		rw.kioskInit(m)
	case PlatformRewriteOK:
		rw.rewriteOK(m)
	case PlatformRewriteRefused:
		rw.rewriteFailed(KioskFailed, m.Code, RewriteManual, "platform refused the re-write")
	case PlatformError:
		rw.rewriteFailed(KioskFailed, CodePlatformDown, RewriteStillPending, "platform error: "+m.Why)
	case KioskConfirm:
		rw.kioskConfirm(m)
	case PlatformConfirmAck:
		rw.confirmAck()
	case PlatformConfirmRefused:
		rw.confirmRefused(m)
	case Timer:
		rw.timer(m.Kind)
	case Restarted:
		rw.restarted()
	default:
		rw.note("%T is not a re-write event: ignored", m)
	}
	return rw.s, rw.out
}

type rewriter struct {
	s   RewriteState
	now time.Time
	out []Effect
}

func (rw *rewriter) emit(e ...Effect) { rw.out = append(rw.out, e...) }

func (rw *rewriter) note(format string, args ...any) {
	rw.emit(Note{Text: fmt.Sprintf(format, args...)})
}

func (rw *rewriter) ignored(what string) { rw.note("%s in phase %s: ignored", what, rw.s.Phase) }

func (rw *rewriter) reply(r ReplyKiosk) {
	if rw.s.Kiosk != "" {
		return
	}
	rw.s.Kiosk = r.Result
	rw.emit(r)
}

func (rw *rewriter) finish(o Outcome) {
	rw.s.Phase = RewriteDone
	rw.s.Outcome = o
	rw.s.Finished = rw.now
	rw.emit(Done{Outcome: o})
}

func (rw *rewriter) start(m RewriteStart) {
	s := &rw.s
	if s.Phase != RewriteNew {
		rw.ignored("duplicate re-write start")
		return
	}
	s.ID, s.Ref, s.Terminal, s.CardSerial, s.Amount = m.ID, m.Ref, m.Terminal, m.CardSerial, m.Amount
	s.Orig, s.Serial, s.MAC2, s.HostTime = m.Write, m.Serial, m.MAC2, m.HostTime
	s.Limits = m.Limits.withDefaults()
	s.Phase = RewriteAwaitInit
	s.InitDeadline = rw.now.Add(s.Limits.Kiosk)
	rw.emit(AskKioskInit{Ref: s.Ref, Amount: s.Amount}, SetTimer{Kind: TimerInit, At: s.InitDeadline})
}

// verdict of the evidence (spec/card-and-host.md section 4).
type verdict int

const (
	rewriteIt verdict = iota
	wasApplied
	undecided
)

// decide applies the interrupted-load procedure. Only a U needs evidence: an F is a load
// the card refused, so its serial was not consumed by it.
func decide(s RewriteState, in KioskInit) (verdict, string) {
	if s.Orig != WriteU {
		return rewriteIt, "write status F: not on the card"
	}
	switch {
	case in.Serial == s.Serial:
		return rewriteIt, "serial unchanged: not applied"
	case in.Serial < s.Serial:
		return undecided, "serial went backwards"
	case in.Serial == s.Serial+1 && in.ProveMAC2 != "":
		if subtle.ConstantTimeCompare([]byte(in.ProveMAC2), []byte(s.MAC2)) == 1 {
			return wasApplied, "serial moved and the card's MAC2 is ours: applied"
		}
		return rewriteIt, "serial moved by another load's MAC2: not applied"
	}
	switch in.Log {
	case LogOurs:
		return wasApplied, "serial moved; log record of serial S is ours: applied"
	case LogOther:
		return rewriteIt, "serial moved; log record of serial S is another load: not applied"
	}
	return undecided, "serial moved and no evidence left on the card"
}

func (rw *rewriter) kioskInit(m KioskInit) {
	s := &rw.s
	if s.Phase != RewriteAwaitInit {
		rw.ignored("kiosk INIT")
		return
	}
	rw.emit(CancelTimer{Kind: TimerInit})
	if m.CardSerial != s.CardSerial {
		rw.note("INIT from card %s, order is for %s", m.CardSerial, s.CardSerial)
		rw.reply(ReplyKiosk{Result: KioskFailed, Code: CodeWrongCard, Ref: s.Ref})
		rw.finish(RewriteStillPending)
		return
	}
	s.Init = m
	v, why := decide(*s, m)
	s.Decision = why
	rw.note("%s", why)
	switch v {
	case wasApplied:
		// Nothing to write; the platform checks the TAC in the CONFIRM.
		s.Write, s.TAC = WriteS, m.ProveTAC
		rw.reply(ReplyKiosk{Result: KioskNothingToWrite, Ref: s.Ref})
		rw.confirm()
	case undecided:
		rw.reply(ReplyKiosk{Result: KioskFailed, Code: CodeUndecided, Ref: s.Ref})
		rw.finish(RewriteManual)
	default:
		s.Phase = RewriteAsking
		s.RewriteDeadline = rw.now.Add(s.Limits.Check)
		rw.emit(SendPlatformRewrite{Ref: s.Ref, Serial: m.Serial, Balance: m.Balance, Random: m.Random, MAC1: m.MAC1},
			SetTimer{Kind: TimerRewrite, At: s.RewriteDeadline})
	}
}

func (rw *rewriter) rewriteOK(m PlatformRewriteOK) {
	s := &rw.s
	if s.Phase != RewriteAsking {
		rw.ignored("REWRITE answer")
		return
	}
	s.Serial, s.MAC2, s.HostTime = s.Init.Serial, m.MAC2, m.HostTime
	s.Phase = RewriteAwaitCredit
	s.ConfirmDeadline = rw.now.Add(s.Limits.Confirm)
	rw.emit(CancelTimer{Kind: TimerRewrite})
	rw.reply(ReplyKiosk{Result: KioskApproved, Code: "00", Ref: s.Ref, MAC2: m.MAC2, HostTime: m.HostTime})
	rw.emit(SetTimer{Kind: TimerConfirm, At: s.ConfirmDeadline})
}

// rewriteFailed ends an attempt before any MAC2' reached the kiosk: the order stays as it was.
func (rw *rewriter) rewriteFailed(r KioskResult, code string, o Outcome, why string) {
	if rw.s.Phase != RewriteAsking {
		rw.ignored(why)
		return
	}
	rw.note("%s", why)
	rw.emit(CancelTimer{Kind: TimerRewrite})
	rw.reply(ReplyKiosk{Result: r, Code: code, Ref: rw.s.Ref})
	rw.finish(o)
}

func (rw *rewriter) kioskConfirm(m KioskConfirm) {
	s := &rw.s
	if s.Phase != RewriteAwaitCredit {
		rw.ignored("kiosk confirm " + string(m.Status))
		return
	}
	switch m.Status {
	case WriteS, WriteF, WriteU:
	default:
		m.Status = WriteU
	}
	s.Write = m.Status
	if m.Status == WriteS {
		s.TAC = m.TAC
	}
	rw.emit(CancelTimer{Kind: TimerConfirm})
	rw.confirm()
}

func (rw *rewriter) confirm() {
	rw.s.Phase = RewriteConfirming
	rw.s.ConfirmAttempts = 0
	rw.sendConfirm()
}

func (rw *rewriter) sendConfirm() {
	s := &rw.s
	s.ConfirmAttempts++
	s.ConfirmRetryAt = rw.now.Add(backoff(s.Limits.ConfirmFirst, s.Limits.ConfirmMax, s.ConfirmAttempts))
	rw.emit(SendPlatformConfirm{Ref: s.Ref, Status: s.Write, TAC: s.TAC},
		SetTimer{Kind: TimerConfirmRetry, At: s.ConfirmRetryAt})
}

func (rw *rewriter) confirmAck() {
	s := &rw.s
	if s.Phase != RewriteConfirming {
		rw.ignored("confirm ack")
		return
	}
	rw.emit(CancelTimer{Kind: TimerConfirmRetry})
	switch {
	case s.Write != WriteS:
		rw.finish(RewriteStillPending)
	case s.Kiosk == KioskNothingToWrite:
		rw.finish(RewriteWasApplied)
	default:
		rw.finish(RewriteWritten)
	}
}

func (rw *rewriter) confirmRefused(m PlatformConfirmRefused) {
	if rw.s.Phase != RewriteConfirming {
		rw.ignored("confirm refusal")
		return
	}
	rw.note("platform refused CONFIRM %s (code %s): manual", rw.s.Write, m.Code)
	rw.emit(CancelTimer{Kind: TimerConfirmRetry})
	rw.finish(RewriteManual)
}

func (rw *rewriter) due(at time.Time) bool { return !at.IsZero() && !rw.now.Before(at) }

func (rw *rewriter) timer(k TimerKind) {
	s := &rw.s
	switch {
	case k == TimerInit && s.Phase == RewriteAwaitInit && rw.due(s.InitDeadline):
		rw.note("no INIT from the kiosk: order left pending")
		rw.finish(RewriteStillPending)
	case k == TimerRewrite && s.Phase == RewriteAsking && rw.due(s.RewriteDeadline):
		rw.rewriteFailed(KioskFailed, CodePlatformDown, RewriteStillPending, "REWRITE not answered")
	case k == TimerConfirm && s.Phase == RewriteAwaitCredit && rw.due(s.ConfirmDeadline):
		rw.note("no kiosk confirm by the deadline: write status U")
		rw.kioskConfirm(KioskConfirm{Status: WriteU})
	case k == TimerConfirmRetry && s.Phase == RewriteConfirming && rw.due(s.ConfirmRetryAt):
		rw.sendConfirm()
	default:
		rw.ignored("timer " + string(k) + " (stale or early)")
	}
}

func (rw *rewriter) restarted() {
	s := &rw.s
	switch s.Phase {
	case RewriteNew:
		rw.note("restarted with no re-write: nothing to do")
	case RewriteAwaitInit, RewriteAsking:
		// No MAC2' reached the kiosk: the order is exactly as it was.
		rw.note("restarted before MAC2' reached the kiosk: order left pending")
		rw.finish(RewriteStillPending)
	case RewriteAwaitCredit:
		if rw.due(s.ConfirmDeadline) {
			rw.timer(TimerConfirm)
			return
		}
		rw.emit(SetTimer{Kind: TimerConfirm, At: s.ConfirmDeadline})
	case RewriteConfirming:
		rw.sendConfirm()
	}
}
