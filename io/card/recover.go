package card

// Decision is what RecoverUnknown concluded about a load with write status U.
type Decision int

const (
	// Undecided: the card's evidence does not settle it; ask the platform's per-(card, serial)
	// MAC2/TAC ledger, else manual handling at T+2. Never reverse the bank debit.
	Undecided Decision = iota
	// Applied: the credit is on the card; confirm S (with the TAC when there is one).
	Applied
	// NotApplied: the credit never reached the card; re-write it with a fresh INIT FOR LOAD.
	NotApplied
)

func (d Decision) String() string {
	switch d {
	case Applied:
		return "applied"
	case NotApplied:
		return "not applied"
	default:
		return "undecided"
	}
}

// PendingLoad is what the kiosk persisted before it sent CREDIT FOR LOAD (spec 4).
type PendingLoad struct {
	Serial       uint16 // S, from the original INITIALIZE FOR LOAD
	Amount       uint32
	TermID       [6]byte
	HostDateTime [7]byte
	MAC2         [4]byte
}

// Evidence is what the card said when it was presented again.
type Evidence struct {
	Serial  uint16            // S', from a fresh INITIALIZE FOR LOAD
	Prove   *TransactionProve // 805A with S+1, when S' == S+1 and the card answered; else nil
	Records []LogRecord       // 0018 records read from the card, any order; may be empty
}

// Recovery is RecoverUnknown's answer.
type Recovery struct {
	Decision Decision
	TAC      [4]byte // the card's TAC for our credit, valid when HasTAC
	HasTAC   bool
	Reason   string // for logs and the operator
}

// RecoverUnknown decides a write-status-U load from the card's evidence (spec 4). It rests
// on one invariant: an online serial is consumed by at most one credit, in the same atomic
// write that adds the money. It performs no I/O; the kiosk gathers the Evidence.
func RecoverUnknown(p PendingLoad, ev Evidence) Recovery {
	s, s2 := int(p.Serial), int(ev.Serial)
	switch {
	case s2 == s:
		return Recovery{Decision: NotApplied, Reason: "online serial unchanged: serial S was never consumed"}
	case s2 < s:
		return Recovery{Decision: Undecided, Reason: "online serial went backwards: not the same card or a corrupt record"}
	case s2 == s+1 && ev.Prove != nil && ev.Prove.HasMAC:
		if ev.Prove.MAC == p.MAC2 {
			return Recovery{Decision: Applied, TAC: ev.Prove.TAC, HasTAC: true, Reason: "serial S consumed by a credit with our MAC2"}
		}
		return Recovery{Decision: NotApplied, Reason: "serial S consumed by a credit with another MAC2"}
	}
	// S' > S, and 805A did not give a MAC to compare: the 0018 log decides.
	for _, r := range ev.Records {
		if r.Type != TxnTypeEPLoad || int(r.Serial) != s {
			continue
		}
		if r.Amount == p.Amount && r.TermID == p.TermID && r.DateTime == p.HostDateTime {
			rec := Recovery{Decision: Applied, Reason: "0018 holds our load with serial S"}
			if s2 == s+1 && ev.Prove != nil { // TAC-only prove of the transaction that used S
				rec.TAC, rec.HasTAC = ev.Prove.TAC, true
			}
			return rec
		}
		return Recovery{Decision: NotApplied, Reason: "0018 holds a different load with serial S"}
	}
	return Recovery{Decision: Undecided, Reason: "serial S consumed but its 0018 record is not on the card (rotated out)"}
}
