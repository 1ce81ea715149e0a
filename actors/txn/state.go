package txn

import "time"

// Phase is where a load stands. Strings, not ints, so persisted states and logs read
// the same and a reordering of constants cannot change the meaning of stored data.
type Phase string

const (
	PhaseNew          Phase = ""              // nothing received yet
	PhaseChecking     Phase = "checking"      // CARD CHECK sent to the platform; nothing debited
	PhaseSentToBank   Phase = "sent_to_bank"  // durable before the 0200 leaves; answer unknown
	PhaseBooking      Phase = "booking"       // bank approved; BOOK asked (again) until answered
	PhaseAwaitConfirm Phase = "await_confirm" // MAC2 given to the kiosk; waiting for its CONFIRM
	PhaseConfirming   Phase = "confirming"    // platform CONFIRM sent, retried until acked
	PhaseReversing    Phase = "reversing"     // reversal queued; waiting for the bank's 0410
	PhaseDone         Phase = "done"          // final: nothing changes any more
)

// WriteStatus is the card-write status of the reconciliation file (seed 5).
type WriteStatus string

const (
	WriteNone WriteStatus = ""  // no MAC2 reached a card (yet)
	WriteS    WriteStatus = "S" // written, TAC returned
	WriteF    WriteStatus = "F" // not written (card said no, or MAC2 never reached it)
	WriteU    WriteStatus = "U" // card pulled midway: unknown until the re-write decides
)

// TxnStatus is the bank-side status of the reconciliation file.
type TxnStatus string

const (
	TxnNone TxnStatus = ""  // the bank holds no debit for this load
	TxnS    TxnStatus = "S" // approved debit stands
	TxnC    TxnStatus = "C" // debit reversed (or reversal of an unanswered 0200)
)

// ReversalState follows the reversal of this load's 0200.
type ReversalState string

const (
	ReversalNone   ReversalState = ""
	ReversalQueued ReversalState = "queued" // the queue retries until a 0410 comes back
	ReversalAcked  ReversalState = "acked"  // a 0410 came back (any response code ends it)
)

// Outcome is how a load ended. Reconciliation derives the file columns from it.
type Outcome string

const (
	OutcomeNone      Outcome = ""
	OutcomeRefused   Outcome = "refused"   // platform refused the card; no debit asked
	OutcomeFailed    Outcome = "failed"    // failed before the bank; no debit asked
	OutcomeDeclined  Outcome = "declined"  // bank declined; nothing to undo
	OutcomeReversed  Outcome = "reversed"  // debit (or unanswered 0200) reversed; never booked
	OutcomeLoaded    Outcome = "loaded"    // booked and written (S)
	OutcomeUnwritten Outcome = "unwritten" // booked, not written (F): re-write on next visit
	OutcomeUnknown   Outcome = "unknown"   // booked, write unknown (U): re-write decides
)

// Limits are the timeouts of one load. They are copied into the state when the load starts,
// so a restart or a configuration change never moves the deadlines of a running load.
type Limits struct {
	Check        time.Duration // platform CARD CHECK answer
	Bank         time.Duration // bank 0210 answer; past it the 0200 is reversed (98)
	Kiosk        time.Duration // kiosk's wait for MAC2; past it the kiosk is told "pending"
	BookFirst    time.Duration // first BOOK re-ask; doubles up to BookMax, forever
	BookMax      time.Duration
	Confirm      time.Duration // kiosk CONFIRM after MAC2; past it the write status is U
	ConfirmFirst time.Duration // platform CONFIRM re-send; doubles up to ConfirmMax, forever
	ConfirmMax   time.Duration
}

// DefaultLimits: Kiosk must exceed Check+Bank so that a kiosk is only ever told "pending"
// once the bank has approved (see withDefaults).
func DefaultLimits() Limits {
	return Limits{
		Check:        10 * time.Second,
		Bank:         30 * time.Second,
		Kiosk:        60 * time.Second,
		BookFirst:    5 * time.Second,
		BookMax:      60 * time.Second,
		Confirm:      120 * time.Second,
		ConfirmFirst: 5 * time.Second,
		ConfirmMax:   60 * time.Second,
	}
}

// withDefaults fills zero fields and keeps Kiosk > Check+Bank.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.Check, d.Check)
	fill(&l.Bank, d.Bank)
	fill(&l.Kiosk, d.Kiosk)
	fill(&l.BookFirst, d.BookFirst)
	fill(&l.BookMax, d.BookMax)
	fill(&l.Confirm, d.Confirm)
	fill(&l.ConfirmFirst, d.ConfirmFirst)
	fill(&l.ConfirmMax, d.ConfirmMax)
	if l.Kiosk <= l.Check+l.Bank {
		l.Kiosk = l.Check + l.Bank + 10*time.Second
	}
	return l
}

// backoff is first, 2*first, 4*first, ... capped at max; attempt counts from 1.
func backoff(first, max time.Duration, attempt int) time.Duration {
	d := first
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// State is everything known about one load. It is a plain comparable value (no maps,
// slices or pointers) so the shell can persist it whole and compare old and new with ==.
type State struct {
	ID    string
	Phase Phase

	// From the kiosk's LOAD REQUEST (already MAC- and duplicate-checked by the terminal).
	Terminal   string // 8 chars
	KioskTrace string
	CardSerial string // card application serial (file 0015)
	Amount     int64  // fen
	BankCode   string // 10 chars, the platform's code of the funding bank
	MaskedPAN  string // 6+4; the clear PAN never enters the state
	STAN       string // allocated by the shell for the bank link before the load starts
	BankDate   string // MMDD transmission date: with STAN and terminal, the 0210/0410 match key

	// From the platform and the bank.
	Ref        string // 20-digit reference number from CARD CHECK
	BankResp   string // F39 of the 0210 that decided the debit
	RRN        string
	AuthCode   string
	SettleDate string // F15, kept for T+2
	MAC2       string
	HostTime   string // YYYYMMDDhhmmss that MAC2 was computed over
	TAC        string

	Write    WriteStatus
	Txn      TxnStatus
	Reversal ReversalState
	RevWhy   string      // 0400 F39 reason: 98, 96, A0, 06
	RevCode  string      // F39 of the 0410
	Kiosk    KioskResult // what the kiosk was told; "" until told (it is told once)
	Outcome  Outcome

	BookAttempts    int
	ConfirmAttempts int

	Limits          Limits
	Started         time.Time
	CheckDeadline   time.Time
	BankDeadline    time.Time
	KioskDeadline   time.Time // the kiosk is told "pending" here if BOOK is still open
	BookRetryAt     time.Time
	ConfirmDeadline time.Time // no kiosk CONFIRM by here counts as U
	ConfirmRetryAt  time.Time
	Finished        time.Time
}

// Final reports whether the load has ended; a final state never changes again.
func (s State) Final() bool { return s.Phase == PhaseDone }

// FileRecord is this load's line in the reconciliation file (DESIGN 8).
type FileRecord struct {
	Listed bool // false: the bank holds nothing for it (never sent, or declined)
	Write  WriteStatus
	Txn    TxnStatus
}

// Reconciliation maps the state onto the file's write status S/F/U and txn status S/C.
// Loads the bank never saw or declined are not listed. A reversed load, or one whose
// reversal is still queued, is C with write F (no MAC2 ever left). A debit still waiting
// for its BOOK is S with write F: the platform books it from the file (seed outcome 1) and
// the card gets it by re-write. Booked loads carry the kiosk's S/F/U (U while undecided).
func (s State) Reconciliation() FileRecord {
	switch {
	case s.Reversal != ReversalNone:
		return FileRecord{Listed: true, Write: WriteF, Txn: TxnC}
	case s.Txn != TxnS:
		return FileRecord{}
	case s.Write == WriteNone && s.Phase == PhaseAwaitConfirm:
		return FileRecord{Listed: true, Write: WriteU, Txn: TxnS}
	case s.Write == WriteNone:
		return FileRecord{Listed: true, Write: WriteF, Txn: TxnS}
	default:
		return FileRecord{Listed: true, Write: s.Write, Txn: TxnS}
	}
}
