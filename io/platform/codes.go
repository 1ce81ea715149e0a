package platform

// Code is a result code: 2 ASCII characters in the header.
type Code string

// The result codes; Codes describes each.
const (
	OK             Code = "00"
	CardBlocked    Code = "01"
	OverCeiling    Code = "02"
	MAC1Invalid    Code = "03"
	CardUnknown    Code = "04"
	UnknownRef     Code = "05"
	AmountInvalid  Code = "06"
	Duplicate      Code = "07"
	StateConflict  Code = "08"
	TACInvalid     Code = "09"
	SerialMoved    Code = "10"
	PendingExists  Code = "11"
	FormatError    Code = "30"
	SystemError    Code = "96"
	MACError       Code = "A0"
	StaleKey       Code = "A1"
	AuthRefused    Code = "A2"
	VersionRefused Code = "A3"
	NotSignedIn    Code = "A4"
)

// CodeInfo is one row of the result code table: what the code means, what the FEP does,
// and the kiosk response code (io/kiosk) it becomes.
type CodeInfo struct {
	Code      Code
	Meaning   string
	FEPAction string
	Kiosk     string
	// Unsigned marks codes the platform may send with an all-zero MAC because it cannot, or
	// need not, use the key the request claims. The FEP treats them as hints only: each leads
	// to a sign-in, which is itself authenticated, or to nothing being done.
	Unsigned bool
}

// Codes is the result code table (docs/protocols/platform.md section 6).
func Codes() []CodeInfo {
	return []CodeInfo{
		{OK, "done", "continue", "00", false},
		{CardBlocked, "card blocked (blacklisted)", "refuse the load; no bank message", "C1", false},
		{OverCeiling, "old balance + amount over the card's ceiling", "refuse the load; no bank message", "C2", false},
		{MAC1Invalid, "MAC1 does not verify", "refuse the load / re-write; no bank message", "C3", false},
		{CardUnknown, "card not issued by the scheme", "refuse the load; no bank message", "C4", false},
		{UnknownRef, "reference number unknown", "BOOK: reverse the bank debit; others: manual", "25", false},
		{AmountInvalid, "amount zero or over the single-load limit, or differs from the reference's", "refuse; no bank message", "13", false},
		{Duplicate, "same kiosk terminal + trace + date seen with different data", "refuse the load", "94", false},
		{StateConflict, "request not valid in the reference's state (e.g. BOOK of a refused check, REWRITE of an S load, CONFIRM changing a final status)", "BOOK: reverse; others: log and hand to operator", "12", false},
		{TACInvalid, "CONFIRM S or RESOLVE-U evidence with a TAC that does not verify", "leave the load U for manual handling", "C8", false},
		{SerialMoved, "REWRITE with a serial other than the load's while its status is U: send RESOLVE-U first", "ask the kiosk for evidence", "C7", false},
		{PendingExists, "CARD CHECK for a card with booked loads not yet written", "run the re-write first", "C5", false},
		{FormatError, "message not understood", "fix the sender; do not retry unchanged", "96", true},
		{SystemError, "platform internal error; nothing was changed", "retry later (BOOK, CONFIRM: keep retrying)", "92", false},
		{MACError, "request MAC does not verify under the batch's dynamic key", "sign in again, then resend", "92", true},
		{StaleKey, "batch in the header is not the current batch", "sign in again, then resend with the new batch", "92", true},
		{AuthRefused, "SIGN-IN refused: auth code unknown or MAC wrong", "alarm; retry with back-off", "92", true},
		{VersionRefused, "header version not supported", "alarm", "92", true},
		{NotSignedIn, "no session: sign in first", "sign in, then resend", "92", true},
	}
}

// Info returns the row of c.
func (c Code) Info() (CodeInfo, bool) {
	for _, i := range Codes() {
		if i.Code == c {
			return i, true
		}
	}
	return CodeInfo{}, false
}

// validCode accepts any two ASCII letters or digits: a code this table lacks is still a
// well-formed answer, and the FEP treats it as SystemError.
func validCode(c Code) bool {
	if len(c) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		x := c[i]
		if !(x >= '0' && x <= '9' || x >= 'A' && x <= 'Z') {
			return false
		}
	}
	return true
}
