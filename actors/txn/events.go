package txn

import "time"

// Event is one input to Step: what happened (Msg) and when (Now). Now is the only clock
// the core sees.
type Event struct {
	Now time.Time
	Msg Msg
}

// Msg is one of the message types below. The shell decodes wire messages into these and
// has already matched them to this transaction (bank answers by STAN + terminal + date).
type Msg interface{ msg() }

// KioskLoadRequest starts a load. The terminal actor has verified the PSAM MAC and the
// duplicate check (terminal + trace) and allocated the STAN for the bank link.
type KioskLoadRequest struct {
	ID         string
	Terminal   string
	KioskTrace string
	CardSerial string
	Amount     int64
	BankCode   string
	MaskedPAN  string
	STAN       string
	BankDate   string
	Limits     Limits // zero fields take DefaultLimits
}

// PlatformCheckOK: the platform verified MAC1 and the card, and issued the reference.
type PlatformCheckOK struct{ Ref string }

// PlatformCheckRefused: the platform refused the card (blocked, ceiling, bad MAC1).
type PlatformCheckRefused struct{ Code string }

// PlatformError: the platform link failed or answered with a non-definitive error.
type PlatformError struct{ Why string }

// BankResponse is the 0210. MACOK is false when the response MAC did not verify;
// Malformed when it could be matched but not understood. Either way its code is untrusted.
type BankResponse struct {
	Code       string
	RRN        string
	Auth       string
	SettleDate string
	MACOK      bool
	Malformed  bool
}

// BookOK: the platform booked the load and computed MAC2 over HostTime.
type BookOK struct {
	MAC2     string
	HostTime string
}

// BookRefused: the platform definitively will not book this reference.
type BookRefused struct{ Code string }

// BookError: no definitive answer (link lost, busy); BOOK is asked again.
type BookError struct{ Why string }

// KioskConfirm is the kiosk's CONFIRM after CREDIT FOR LOAD: S with TAC, F or U.
type KioskConfirm struct {
	Status WriteStatus
	TAC    string
}

// PlatformConfirmAck: the platform recorded the CONFIRM.
type PlatformConfirmAck struct{}

// PlatformConfirmRefused: the platform rejected the CONFIRM (re-write: TAC did not check).
type PlatformConfirmRefused struct{ Code string }

// ReversalDone: the reversal queue got a 0410 for this load's 0400; any code ends it.
type ReversalDone struct{ Code string }

// Timer: a timer armed by SetTimer fired. Fired early or stale timers change nothing.
type Timer struct{ Kind TimerKind }

// Restarted: the process restarted and this state was loaded from disk.
type Restarted struct{}

func (KioskLoadRequest) msg()       {}
func (PlatformCheckOK) msg()        {}
func (PlatformCheckRefused) msg()   {}
func (PlatformError) msg()          {}
func (BankResponse) msg()           {}
func (BookOK) msg()                 {}
func (BookRefused) msg()            {}
func (BookError) msg()              {}
func (KioskConfirm) msg()           {}
func (PlatformConfirmAck) msg()     {}
func (PlatformConfirmRefused) msg() {}
func (ReversalDone) msg()           {}
func (Timer) msg()                  {}
func (Restarted) msg()              {}

// TimerKind names the timers of a load (and of a re-write); one of each kind at most.
type TimerKind string

const (
	TimerCheck        TimerKind = "check"
	TimerBank         TimerKind = "bank"
	TimerBookRetry    TimerKind = "book_retry"
	TimerKiosk        TimerKind = "kiosk"
	TimerConfirm      TimerKind = "confirm"
	TimerConfirmRetry TimerKind = "confirm_retry"
	TimerInit         TimerKind = "init"    // re-write: kiosk's fresh INIT data
	TimerRewrite      TimerKind = "rewrite" // re-write: platform REWRITE answer
)

// Effect is one thing the shell must do, in order, after persisting the new state.
type Effect interface{ effect() }

// SendPlatformCheck asks the platform's CARD CHECK (MAC1 and card data come from the
// terminal's request, which the shell keeps with the transaction).
type SendPlatformCheck struct{}

// SendBankDebit sends the 0200. It is only ever emitted once per load, after the state
// "sent to bank" has been persisted.
type SendBankDebit struct {
	Bank   string
	STAN   string
	Amount int64
}

// EnqueueReversal hands the 0400 to the bank's store-and-forward queue (idempotent by
// bank + STAN + date). Reason is the 0400 F39: 98 no answer, 96 format/system error,
// A0 response MAC failed, 06 other (platform refused to book).
type EnqueueReversal struct {
	TxnID  string // the queue's ReversalDone goes back to this load
	Bank   string
	STAN   string
	Date   string
	Amount int64
	Reason string
}

// SendPlatformBook asks BOOK for Ref; re-asks use the same Ref and are never guessed.
type SendPlatformBook struct{ Ref string }

// SendPlatformConfirm reports the card write to the platform.
type SendPlatformConfirm struct {
	Ref    string
	Status WriteStatus
	TAC    string
}

// KioskResult is the gist of the answer to the kiosk; Code carries the party's code.
type KioskResult string

const (
	KioskApproved KioskResult = "approved" // MAC2 + host time attached: credit the card
	KioskDeclined KioskResult = "declined" // bank declined; Code = bank F39
	KioskRefused  KioskResult = "refused"  // platform refused the card; Code = platform's
	KioskFailed   KioskResult = "failed"   // nothing debited, or it is being reversed; Code why
	KioskPending  KioskResult = "pending"  // debited, booking unresolved: written on a later visit
)

// Kiosk failure codes the core chooses (bank and platform codes are passed through).
const (
	CodePlatformDown = "91" // platform check failed or timed out; bank not asked
	CodeRestarted    = "96" // the FEP restarted before the bank was asked
)

// ReplyKiosk answers the kiosk's LOAD REQUEST (exactly once per load).
type ReplyKiosk struct {
	Result   KioskResult
	Code     string
	Ref      string
	MAC2     string
	HostTime string
}

// SetTimer arms (or re-arms) the timer of Kind to fire at At.
type SetTimer struct {
	Kind TimerKind
	At   time.Time
}

// CancelTimer disarms the timer of Kind; a fire that races the cancel is harmless.
type CancelTimer struct{ Kind TimerKind }

// Done: the transaction is final; the shell may stop the actor.
type Done struct{ Outcome Outcome }

// Note is for the log only: an event that changed nothing, and why.
type Note struct{ Text string }

func (SendPlatformCheck) effect()   {}
func (SendBankDebit) effect()       {}
func (EnqueueReversal) effect()     {}
func (SendPlatformBook) effect()    {}
func (SendPlatformConfirm) effect() {}
func (ReplyKiosk) effect()          {}
func (SetTimer) effect()            {}
func (CancelTimer) effect()         {}
func (Done) effect()                {}
func (Note) effect()                {}
