package bank

// Action is what a response code asks the FEP to do.
type Action int

// Actions.
const (
	// Approve: the debit was made.
	Approve Action = iota + 1
	// Decline: final; the kiosk shows the meaning and the customer must change something
	// (card, PIN, amount) before trying again.
	Decline
	// Retry: a passing condition at the bank or issuer; nothing was debited and the same
	// request may succeed later as a NEW transaction (new STAN). Never re-send the 0200.
	Retry
	// ReSignOn: our keys or registration are wrong (MAC, PIN format, unknown terminal); sign on
	// again before the next debit, and decline this one.
	ReSignOn
)

func (a Action) String() string {
	switch a {
	case Approve:
		return "approve"
	case Decline:
		return "decline"
	case Retry:
		return "retry"
	case ReSignOn:
		return "re-sign-on"
	}
	return "unknown"
}

// ResponseCode is one F39 value with its meaning (for the kiosk and the operator) and action.
type ResponseCode struct {
	Code    string
	Meaning string
	Action  Action
}

// responseCodes is card-and-host.md 7.7's F39 table (CUPS POS). Read-only.
var responseCodes = [...]ResponseCode{
	{"00", "approved", Approve},
	{"01", "refer to card issuer", Decline},
	{"03", "invalid merchant", Decline},
	{"04", "pick up card", Decline},
	{"05", "do not honour", Decline},
	{"12", "invalid transaction", Decline},
	{"13", "invalid amount", Decline},
	{"14", "invalid card number", Decline},
	{"15", "no such issuer", Decline},
	{"21", "card not initialised or dormant", Decline},
	{"22", "operation error or beyond allowed days", Decline},
	{"25", "original transaction not found", Decline},
	{"30", "format error", Decline},
	{"40", "function not supported", Decline},
	{"41", "lost card", Decline},
	{"43", "stolen card", Decline},
	{"51", "insufficient funds", Decline},
	{"54", "expired card", Decline},
	{"55", "incorrect PIN", Decline},
	{"57", "transaction not permitted to cardholder", Decline},
	{"58", "transaction not permitted to terminal", Decline},
	{"61", "exceeds amount limit", Decline},
	{"64", "original amount mismatch", Decline},
	{"65", "exceeds frequency limit", Decline},
	{"68", "response received too late", Retry},
	{"75", "PIN tries exceeded", Decline},
	{"90", "cut-over in progress", Retry},
	{"91", "issuer or switch inoperative", Retry},
	{"92", "issuer unreachable", Retry},
	{"94", "duplicate transmission", Decline},
	{"96", "system malfunction", Retry},
	{"97", "terminal not registered", ReSignOn},
	{"98", "issuer timeout", Retry},
	{"99", "PIN format error", ReSignOn},
	{"A0", "MAC error", ReSignOn},
}

// Lookup returns the table entry for code; an unknown code declines (the safe reading of a
// code we cannot interpret) with meaning "unknown response code".
func Lookup(code string) ResponseCode {
	for _, c := range responseCodes {
		if c.Code == code {
			return c
		}
	}
	return ResponseCode{Code: code, Meaning: "unknown response code", Action: Decline}
}

// ResponseCodes returns a copy of the table, for documentation and the kiosk's texts.
func ResponseCodes() []ResponseCode { return append([]ResponseCode(nil), responseCodes[:]...) }
