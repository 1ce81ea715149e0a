// Package messages holds the messages that actors of the switch send each other. They are
// plain, serialisable values (no channels, no pointers to shared state, no PIDs inside) so
// that terminal and transaction actors can later live on other cluster nodes, where these
// become protobuf messages of the same shape.
//
// Who talks to whom (docs/architecture.md has the tree):
//
//	terminal actor   -> loads supervisor : StartLoad, KioskConfirm
//	txn actor        -> platform session : PlatformCheck, PlatformBook, PlatformConfirm
//	terminal actor   -> platform session : PlatformPendingQuery, PlatformRewrite, PlatformResolve
//	txn actor        -> bank link        : BankDebit, EnqueueReversal
//	bank link        -> loads supervisor : ReversalDone
//	txn actor        -> terminal actor   : LoadReply
//
// Requests are sent with ctx.Request so the answer goes to the sender; every request carries
// the ID the answer echoes, because an actor may have several requests out at once and a
// restarted actor must drop answers it no longer waits for.
package messages

// CardInit is what the kiosk read from the card: identity and the INIT FOR LOAD answer.
// TermID is the PSAM terminal number the INIT was run with (it is inside MAC1).
type CardInit struct {
	AppSerial  [8]byte
	CityCode   string
	OldBalance uint32
	Serial     uint16 // online serial before the load
	KeyIndex   byte
	KeyVersion byte
	AlgID      byte
	Random     [4]byte
	MAC1       [4]byte
	TermID     [6]byte
}

// BankCard is how the person pays. The PIN block is under the kiosk's PIK (PINKey names it
// in the security module); the bank link translates it to the bank's ZPK at send time, so
// a re-sign-on between request and send cannot leave it under a stale key.
type BankCard struct {
	PAN       string
	Track2    string
	Expiry    string
	EntryMode string
	CardSeq   string
	PINBlock  []byte
	PINKey    string
}

// StartLoad asks the loads supervisor to run one load. The terminal actor has verified the
// PSAM MAC, that the terminal is signed in, and the duplicate check (Terminal+KioskTrace).
type StartLoad struct {
	TxnID      string // unique, chosen by the terminal actor (terminal + trace + date)
	Terminal   string
	KioskTrace string
	Amount     int64 // fen
	BankCode   string
	Card       CardInit
	Payer      BankCard
}

// LoadReply answers a kiosk's LOAD REQUEST; it goes to the terminal actor named Terminal.
type LoadReply struct {
	TxnID      string
	Terminal   string
	KioskTrace string
	Result     string // txn.KioskResult: approved, declined, refused, failed, pending
	Code       string // the deciding party's code (bank F39, platform code, FEP code)
	Ref        string
	MAC2       [4]byte
	HostTime   string // YYYYMMDDhhmmss of MAC2
	RRN        string
	AuthCode   string
}

// KioskConfirm is the kiosk's CONFIRM for a reference: write status S (with TAC), F or U.
type KioskConfirm struct {
	Terminal   string
	KioskTrace string
	Ref        string
	Status     byte // 'S', 'F', 'U'
	TAC        [4]byte
	NewBalance uint32
}

// KioskConfirmReply tells the terminal the confirm was recorded (durably).
type KioskConfirmReply struct {
	Terminal   string
	KioskTrace string
	Ref        string
	Code       string
}

// PlatformCheck is the platform's CARD CHECK: MAC1 and the card are verified and a
// reference number issued; nothing is booked.
type PlatformCheck struct {
	ReqID      string
	Terminal   string
	KioskTrace string
	Amount     int64
	BankCode   string
	Card       CardInit
}

// PlatformCheckResult: Ref on success; Refused carries the platform's code for a
// definitive refusal; Err a link/transient failure (nothing is known to be issued).
type PlatformCheckResult struct {
	ReqID   string
	Ref     string
	Batch   uint32 // the session's batch number when the reference was issued (for the recon file)
	Refused string
	Err     string
}

// PlatformBook books a reference after the bank approved. Idempotent at the platform:
// asking again returns the same MAC2.
type PlatformBook struct {
	ReqID      string
	Ref        string
	Amount     int64
	BankCode   string
	RRN        string
	AuthCode   string
	SettleDate string
}

// PlatformBookResult: MAC2 and the host time it covers; Refused definitive; Err unknown.
type PlatformBookResult struct {
	ReqID    string
	Ref      string
	MAC2     [4]byte
	HostTime string
	Refused  string
	Err      string
}

// PlatformConfirm reports a card write for a reference (load or re-write).
type PlatformConfirm struct {
	ReqID  string
	Ref    string
	Status byte
	TAC    [4]byte
}

// PlatformConfirmResult: acknowledged unless Refused (e.g. TAC did not verify) or Err.
type PlatformConfirmResult struct {
	ReqID   string
	Ref     string
	Refused string
	Err     string
}

// PendingLoad is a booked load whose card write is F or U.
type PendingLoad struct {
	Ref        string
	Amount     int64
	Serial     uint16
	OldBalance uint32
	TermID     [6]byte
	HostTime   string
	MAC2       [4]byte
	Write      byte
}

// PlatformPendingQuery asks for a card's booked loads with write status F or U.
type PlatformPendingQuery struct {
	ReqID     string
	AppSerial [8]byte
}

// PlatformPendingResult lists them, oldest first.
type PlatformPendingResult struct {
	ReqID string
	Loads []PendingLoad
	Err   string
}

// PlatformRewrite asks a new MAC2 for a pending reference over fresh INIT data.
type PlatformRewrite struct {
	ReqID      string
	Ref        string
	Amount     int64 // the pending load's amount, sent again in the fresh INIT
	Terminal   string
	KioskTrace string
	Card       CardInit
}

// PlatformRewriteResult carries the new MAC2.
type PlatformRewriteResult struct {
	ReqID    string
	Ref      string
	MAC2     [4]byte
	HostTime string
	Refused  string
	Err      string
}

// PlatformResolve gives the platform the evidence for a U load (spec section 4).
type PlatformResolve struct {
	ReqID     string
	Ref       string
	AppSerial [8]byte
	Serial    uint16 // serial seen by a fresh INIT
	Method    byte   // 'P' GET TRANSACTION PROVE, 'L' 0018 record, 'N' none
	HasMAC    bool
	MAC2      [4]byte // from GET TRANSACTION PROVE
	TAC       [4]byte
	Record    [23]byte // the 0018 record with the load's serial, when Method is 'L'
}

// PlatformResolveResult: Applied means the platform checked the TAC and closed it as S.
type PlatformResolveResult struct {
	ReqID   string
	Ref     string
	Applied bool
	Refused string
	Err     string
}

// BankDebit is the 0200 a transaction asks its bank link to send. The transaction has
// persisted "sent to bank" before this leaves it.
type BankDebit struct {
	ReqID    string // the TxnID
	Bank     string
	STAN     string
	Terminal string
	Merchant string
	Amount   int64
	Ref      string // the platform reference, carried in F63 for the bank's records
	Payer    BankCard
}

// BankDebitResult is the matched 0210. NotSent means the bytes never left (link down):
// nothing can have been debited. MACOK false or Malformed: the code is untrusted.
type BankDebitResult struct {
	ReqID      string
	STAN       string
	Code       string
	RRN        string
	AuthCode   string
	SettleDate string
	LocalDate  string
	MACOK      bool
	Malformed  bool
	NotSent    bool
}

// EnqueueReversal hands a reversal to the bank link's durable store-and-forward queue.
// Idempotent by Bank+STAN+Date. Original carries what the 0400 must repeat of the 0200.
type EnqueueReversal struct {
	ReqID    string
	Bank     string
	STAN     string
	Date     string
	Amount   int64
	Reason   string
	Original BankDebit
}

// ReversalQueued: the reversal is durable in the queue.
type ReversalQueued struct {
	ReqID string
	STAN  string
}

// ReversalDone: the bank answered the reversal (any 0410 code ends it).
type ReversalDone struct {
	ReqID string
	STAN  string
	Code  string
}

// LinkStatus is published by the platform session and each bank link when they go up or
// down, so terminals can refuse new loads fast.
type LinkStatus struct {
	Link string // "platform" or "bank:<code>"
	Up   bool
	Why  string
}

// LoadSettled tells the loads supervisor that a booked load which ended F or U is now on
// its card: a re-write's CONFIRM S or a U resolution the platform found applied. The FEP
// records it against the load, so its reconciliation file shows S (DESIGN section 8).
type LoadSettled struct {
	Ref string
	TAC [4]byte
	How byte // 'R' re-written, 'P' proved applied (U resolution)
}
