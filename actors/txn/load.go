package txn

import (
	"fmt"
	"time"
)

// Step advances one load by one event. It never fails: an event the phase does not
// expect leaves the state as it was and yields at most a Note.
func Step(s State, ev Event) (State, []Effect) {
	st := &stepper{s: s, now: ev.Now}
	if s.Final() {
		if _, ok := ev.Msg.(Restarted); !ok {
			st.note("final (%s): %T ignored", s.Outcome, ev.Msg)
		}
		return s, st.out
	}
	switch m := ev.Msg.(type) {
	case KioskLoadRequest:
		st.start(m)
	case PlatformCheckOK:
		st.checkOK(m)
	case PlatformCheckRefused:
		st.checkFailed(KioskRefused, m.Code, OutcomeRefused, "platform refused")
	case PlatformError:
		st.platformError(m)
	case BankResponse:
		st.bankResponse(m)
	case BookOK:
		st.bookOK(m)
	case BookRefused:
		st.bookRefused(m)
	case BookError:
		st.bookError(m)
	case KioskConfirm:
		st.kioskConfirm(m)
	case PlatformConfirmAck:
		st.confirmAck()
	case PlatformConfirmRefused:
		st.confirmRefused(m)
	case ReversalDone:
		st.reversalDone(m)
	case Timer:
		st.timer(m.Kind)
	case Restarted:
		st.restarted()
	default:
		st.note("%T is not a load event: ignored", m)
	}
	return st.s, st.out
}

// stepper collects the new state and the effects of one Step.
type stepper struct {
	s   State
	now time.Time
	out []Effect
}

func (st *stepper) emit(e ...Effect) { st.out = append(st.out, e...) }

func (st *stepper) note(format string, args ...any) {
	st.emit(Note{Text: fmt.Sprintf(format, args...)})
}

func (st *stepper) ignored(what string) {
	st.note("%s in phase %s: ignored", what, st.s.Phase)
}

// reply tells the kiosk, once: the kiosk waits for exactly one answer to its request.
func (st *stepper) reply(r ReplyKiosk) {
	if st.s.Kiosk != "" {
		return
	}
	st.s.Kiosk = r.Result
	st.emit(r)
}

func (st *stepper) finish(o Outcome) {
	st.s.Phase = PhaseDone
	st.s.Outcome = o
	st.s.Finished = st.now
	st.emit(Done{Outcome: o})
}

func (st *stepper) start(m KioskLoadRequest) {
	s := &st.s
	if s.Phase != PhaseNew {
		st.ignored("duplicate load request")
		return
	}
	s.ID, s.Terminal, s.KioskTrace = m.ID, m.Terminal, m.KioskTrace
	s.CardSerial, s.Amount, s.BankCode, s.MaskedPAN = m.CardSerial, m.Amount, m.BankCode, m.MaskedPAN
	s.STAN, s.BankDate = m.STAN, m.BankDate
	s.Limits = m.Limits.withDefaults()
	s.Started = st.now
	s.CheckDeadline = st.now.Add(s.Limits.Check)
	s.KioskDeadline = st.now.Add(s.Limits.Kiosk)
	s.Phase = PhaseChecking
	st.emit(SendPlatformCheck{}, SetTimer{Kind: TimerCheck, At: s.CheckDeadline})
}

func (st *stepper) checkOK(m PlatformCheckOK) {
	s := &st.s
	if s.Phase != PhaseChecking {
		st.ignored("card check answer")
		return
	}
	// The phase change is persisted before SendBankDebit leaves: "sent to bank" is the
	// durable state that makes a crash end in a reversal rather than a lost debit.
	s.Ref = m.Ref
	s.Phase = PhaseSentToBank
	s.BankDeadline = st.now.Add(s.Limits.Bank)
	st.emit(CancelTimer{Kind: TimerCheck},
		SendBankDebit{Bank: s.BankCode, STAN: s.STAN, Amount: s.Amount},
		SetTimer{Kind: TimerBank, At: s.BankDeadline})
}

// checkFailed ends a load before the bank was asked: nothing to undo.
func (st *stepper) checkFailed(r KioskResult, code string, o Outcome, why string) {
	if st.s.Phase != PhaseChecking {
		st.ignored(why)
		return
	}
	st.emit(CancelTimer{Kind: TimerCheck})
	st.reply(ReplyKiosk{Result: r, Code: code})
	st.finish(o)
}

func (st *stepper) platformError(m PlatformError) {
	switch st.s.Phase {
	case PhaseChecking:
		st.checkFailed(KioskFailed, CodePlatformDown, OutcomeFailed, "platform error")
	case PhaseBooking:
		st.bookError(BookError{Why: m.Why})
	case PhaseConfirming:
		st.note("platform error while confirming: re-sent at the retry timer")
	default:
		st.ignored("platform error")
	}
}

func (st *stepper) bankResponse(m BankResponse) {
	s := &st.s
	switch s.Phase {
	case PhaseSentToBank:
	case PhaseReversing:
		// The reversal is already on its way and is never recalled: the 0400 undoes the
		// debit whatever this late 0210 says.
		st.note("late 0210 (code %s) after the reversal started: not un-reversed", m.Code)
		return
	default:
		st.ignored("0210 (code " + m.Code + ")")
		return
	}
	st.emit(CancelTimer{Kind: TimerBank})
	switch {
	case m.Malformed:
		st.reverse("96")
	case !m.MACOK:
		st.reverse("A0")
	case m.Code == "00":
		s.BankResp, s.RRN, s.AuthCode, s.SettleDate = m.Code, m.RRN, m.Auth, m.SettleDate
		s.Txn = TxnS
		s.Phase = PhaseBooking
		s.BookAttempts = 0
		st.askBook()
		st.armKiosk()
	default:
		s.BankResp = m.Code
		st.reply(ReplyKiosk{Result: KioskDeclined, Code: m.Code, Ref: s.Ref})
		st.finish(OutcomeDeclined)
	}
}

// reverse starts the reversal of the 0200. Only reached before any BOOK succeeded, so a
// booked load (write S, F or U) is never reversed.
func (st *stepper) reverse(reason string) {
	s := &st.s
	s.Phase = PhaseReversing
	s.Reversal = ReversalQueued
	s.RevWhy = reason
	st.emit(st.enqueueReversal())
	st.reply(ReplyKiosk{Result: KioskFailed, Code: reason, Ref: s.Ref})
}

func (st *stepper) enqueueReversal() EnqueueReversal {
	s := st.s
	return EnqueueReversal{TxnID: s.ID, Bank: s.BankCode, STAN: s.STAN, Date: s.BankDate, Amount: s.Amount, Reason: s.RevWhy}
}

// askBook sends BOOK (again) with the same reference and arms the bounded back-off.
func (st *stepper) askBook() {
	s := &st.s
	s.BookAttempts++
	s.BookRetryAt = st.now.Add(backoff(s.Limits.BookFirst, s.Limits.BookMax, s.BookAttempts))
	st.emit(SendPlatformBook{Ref: s.Ref}, SetTimer{Kind: TimerBookRetry, At: s.BookRetryAt})
}

// armKiosk arms the kiosk's deadline while BOOK is open (only then can it pass).
func (st *stepper) armKiosk() {
	if st.s.Kiosk == "" {
		st.emit(SetTimer{Kind: TimerKiosk, At: st.s.KioskDeadline})
	}
}

func (st *stepper) bookOK(m BookOK) {
	s := &st.s
	if s.Phase != PhaseBooking {
		st.ignored("BOOK answer")
		return
	}
	s.MAC2, s.HostTime = m.MAC2, m.HostTime
	st.emit(CancelTimer{Kind: TimerBookRetry})
	if s.Kiosk != "" {
		// The kiosk already gave up (told "pending"): MAC2 cannot reach this card now.
		// Booked and unwritten = F, for the re-write on its next visit.
		s.Write = WriteF
		st.note("BOOK answered after the kiosk was told %s: write status F", s.Kiosk)
		st.confirm()
		return
	}
	st.emit(CancelTimer{Kind: TimerKiosk})
	st.reply(ReplyKiosk{Result: KioskApproved, Code: "00", Ref: s.Ref, MAC2: s.MAC2, HostTime: s.HostTime})
	s.Phase = PhaseAwaitConfirm
	s.ConfirmDeadline = st.now.Add(s.Limits.Confirm)
	st.emit(SetTimer{Kind: TimerConfirm, At: s.ConfirmDeadline})
}

func (st *stepper) bookRefused(m BookRefused) {
	if st.s.Phase != PhaseBooking {
		st.ignored("BOOK refusal")
		return
	}
	// Definitive: the platform will never book this reference, so the debit must go.
	st.note("platform refused BOOK (code %s): debit reversed", m.Code)
	st.emit(CancelTimer{Kind: TimerBookRetry}, CancelTimer{Kind: TimerKiosk})
	st.reverse("06")
}

func (st *stepper) bookError(m BookError) {
	if st.s.Phase != PhaseBooking {
		st.ignored("BOOK error")
		return
	}
	// Not an answer: the retry timer asks again with the same reference.
	st.note("BOOK not answered (%s): asked again at %s", m.Why, st.s.BookRetryAt.Format(time.TimeOnly))
}

func (st *stepper) kioskConfirm(m KioskConfirm) {
	s := &st.s
	if s.Phase != PhaseAwaitConfirm {
		st.ignored("kiosk confirm " + string(m.Status))
		return
	}
	switch m.Status {
	case WriteS, WriteF, WriteU:
	default:
		st.note("kiosk confirm with status %q: treated as U", m.Status)
		m.Status = WriteU
	}
	s.Write = m.Status
	if m.Status == WriteS {
		s.TAC = m.TAC
	}
	st.emit(CancelTimer{Kind: TimerConfirm})
	st.confirm()
}

// confirm enters "confirming" and sends the first platform CONFIRM.
func (st *stepper) confirm() {
	s := &st.s
	s.Phase = PhaseConfirming
	s.ConfirmAttempts = 0
	st.sendConfirm()
}

func (st *stepper) sendConfirm() {
	s := &st.s
	s.ConfirmAttempts++
	s.ConfirmRetryAt = st.now.Add(backoff(s.Limits.ConfirmFirst, s.Limits.ConfirmMax, s.ConfirmAttempts))
	st.emit(SendPlatformConfirm{Ref: s.Ref, Status: s.Write, TAC: s.TAC},
		SetTimer{Kind: TimerConfirmRetry, At: s.ConfirmRetryAt})
}

func (st *stepper) confirmAck() {
	if st.s.Phase != PhaseConfirming {
		st.ignored("confirm ack")
		return
	}
	st.emit(CancelTimer{Kind: TimerConfirmRetry})
	switch st.s.Write {
	case WriteS:
		st.finish(OutcomeLoaded)
	case WriteF:
		st.finish(OutcomeUnwritten)
	default:
		st.finish(OutcomeUnknown)
	}
}

// confirmRefused: the platform refuses a CONFIRM with 08 only for a booked load whose write
// status is already a final S (platform.md: "a final S is never changed"), i.e. the card got
// the money by another way — a re-write or a U resolution at the card's next visit, which can
// happen while this load waited for its own BOOK answer across FEP restarts. Re-sending the
// CONFIRM would be refused for ever, so the load ends as written. Other refusals change
// nothing: the confirm is re-sent at its retry timer.
func (st *stepper) confirmRefused(m PlatformConfirmRefused) {
	if st.s.Phase == PhaseConfirming && m.Code == "09" && st.s.Write == WriteS {
		// The kiosk said written but its TAC does not verify: the card alone can tell
		// now. Confirm U, so the card's next visit resolves it; never reverse a booked load.
		st.note("confirm S refused 09 (TAC invalid): confirming U instead")
		st.s.Write, st.s.TAC = WriteU, ""
		st.sendConfirm()
		return
	}
	if st.s.Phase != PhaseConfirming || m.Code != "08" {
		st.ignored("confirm refused " + m.Code)
		return
	}
	st.emit(CancelTimer{Kind: TimerConfirmRetry})
	st.note("confirm %s refused 08: the platform holds a final S (written by a re-write or resolution)", st.s.Write)
	st.s.Write = WriteS
	st.finish(OutcomeLoaded)
}

func (st *stepper) reversalDone(m ReversalDone) {
	s := &st.s
	if s.Phase != PhaseReversing {
		st.ignored("reversal done")
		return
	}
	s.Reversal = ReversalAcked
	s.RevCode = m.Code
	s.Txn = TxnC
	st.finish(OutcomeReversed)
}

// due reports whether a deadline has passed; a timer firing earlier is stale.
func (st *stepper) due(at time.Time) bool { return !at.IsZero() && !st.now.Before(at) }

func (st *stepper) timer(k TimerKind) {
	s := &st.s
	switch {
	case k == TimerCheck && s.Phase == PhaseChecking && st.due(s.CheckDeadline):
		st.checkFailed(KioskFailed, CodePlatformDown, OutcomeFailed, "check timeout")
	case k == TimerBank && s.Phase == PhaseSentToBank && st.due(s.BankDeadline):
		st.reverse("98")
	case k == TimerBookRetry && s.Phase == PhaseBooking && st.due(s.BookRetryAt):
		st.askBook()
	case k == TimerKiosk && s.Phase == PhaseBooking && s.Kiosk == "" && st.due(s.KioskDeadline):
		st.reply(ReplyKiosk{Result: KioskPending, Ref: s.Ref})
	case k == TimerConfirm && s.Phase == PhaseAwaitConfirm && st.due(s.ConfirmDeadline):
		st.note("no kiosk confirm by the deadline: write status U")
		st.kioskConfirm(KioskConfirm{Status: WriteU})
	case k == TimerConfirmRetry && s.Phase == PhaseConfirming && st.due(s.ConfirmRetryAt):
		st.sendConfirm()
	default:
		st.ignored("timer " + string(k) + " (stale or early)")
	}
}

// restarted re-issues what the phase still needs; effects lost in the crash are
// idempotent at their receivers. Timers are gone after a restart, so they are re-armed.
func (st *stepper) restarted() {
	s := &st.s
	switch s.Phase {
	case PhaseNew:
		st.note("restarted with no request: nothing to do")
	case PhaseChecking:
		// Nothing was sent to the bank: failing is free and the kiosk has gone anyway.
		st.reply(ReplyKiosk{Result: KioskFailed, Code: CodeRestarted})
		st.finish(OutcomeFailed)
	case PhaseSentToBank:
		// The 0200 may or may not have left: treat as a bank timeout. A reversal of a
		// debit the bank never saw is answered 25 and ends it.
		st.reverse("98")
	case PhaseBooking:
		st.askBook()
		st.armKiosk()
	case PhaseAwaitConfirm:
		if st.due(s.ConfirmDeadline) {
			st.timer(TimerConfirm)
			return
		}
		st.emit(SetTimer{Kind: TimerConfirm, At: s.ConfirmDeadline})
	case PhaseConfirming:
		st.sendConfirm()
	case PhaseReversing:
		st.emit(st.enqueueReversal())
	}
}
