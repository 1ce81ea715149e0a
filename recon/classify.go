package recon

import (
	"cmp"
	"fmt"
	"slices"
)

// Outcome is where one load lands in the reconciliation. 1..5 are the seed's five outcomes
// (section 5) with the same numbers; the rest cover what the seed leaves out.
type Outcome int

// The outcomes. "Bank booked" means an approved debit that no approved reversal cancels;
// "platform booked" means the journal has Booked for the reference.
const (
	PlatformMissing   Outcome = 1 // bank booked, platform not: the platform books it
	Rewrite           Outcome = 2 // both booked, card not written (F, U or no confirm): re-write at next load
	BankMissing       Outcome = 3 // bank not booked, platform booked, card written: bank fault, manual
	BankMissingNoCard Outcome = 4 // bank not booked, platform booked, not written: bank fault, manual
	Success           Outcome = 5 // both booked, card written
	// Cancelled: neither side booked (a debit reversed before the platform booked, the normal
	// end of a timed-out load). Money-neutral; the seed does not list it because nothing is due.
	Cancelled Outcome = 6
	// UnmatchedFEP: a FEP record the bank never saw (no debit and no reversal line for its key),
	// or one with no bank key to look it up by.
	UnmatchedFEP Outcome = 7
	// UnmatchedBank: an approved bank debit or reversal that no FEP record's key points to.
	UnmatchedBank Outcome = 8
	// UnmatchedPlatform: a booked journal entry with no FEP record.
	UnmatchedPlatform Outcome = 9
)

var outcomeNames = [...]string{"", "platform-missing", "rewrite", "bank-missing", "bank-missing-no-card",
	"success", "cancelled", "unmatched-fep", "unmatched-bank", "unmatched-platform"}

func (o Outcome) String() string {
	if o >= 1 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Action is what the reconciliation run must do about an item.
type Action int

// The actions.
const (
	None            Action = iota // consistent; nothing to do
	BookOnPlatform                // ask the platform to add the missing entry (outcome 1)
	LeaveForRewrite               // the card is re-written at its holder's next load (outcome 2)
	Manual                        // list for people: bank fault or unmatched
)

var actionNames = [...]string{"none", "book-on-platform", "leave-for-rewrite", "manual"}

func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// ActionFor is the fixed action of each outcome.
func ActionFor(o Outcome) Action {
	switch o {
	case PlatformMissing:
		return BookOnPlatform
	case Rewrite:
		return LeaveForRewrite
	case Success, Cancelled:
		return None
	default:
		return Manual
	}
}

// Item is one load (or one unmatched line) and its verdict.
type Item struct {
	Outcome  Outcome
	Action   Action
	Ref      string  // empty for UnmatchedBank
	BankCode string  // from the FEP record, else the bank line, else the journal
	Key      BankKey // zero when unknown
	Amount   int64   // fen: the FEP's amount, else the bank's, else the platform's
	// Notes list disagreements that do not change the outcome but a person should see
	// (the FEP's statuses or amount differing from the bank's or the platform's).
	Notes []string
}

// Group is every item of one outcome with its totals.
type Group struct {
	Outcome Outcome
	Action  Action
	Items   []Item
	Count   int
	Amount  int64 // fen
}

// Result is the classification of one day: one Group per outcome, in Outcome order, every
// outcome present (possibly empty) so reports have a fixed shape.
type Result struct {
	Groups []Group
}

// Group returns the group of outcome o.
func (r Result) Group(o Outcome) Group {
	for _, g := range r.Groups {
		if g.Outcome == o {
			return g
		}
	}
	return Group{Outcome: o, Action: ActionFor(o)}
}

// bankState folds a key's debit and reversal lines into what the bank did.
type bankState struct {
	debit, reversal *SettlementLine
	matched         bool
}

func (s *bankState) booked() bool {
	return s != nil && s.debit != nil && s.debit.Approved() && (s.reversal == nil || !s.reversal.Approved())
}

// Classify puts every load of a day into exactly one Outcome. The join: a FEP record and a
// journal entry share the reference number; a FEP record reaches the bank's lines through
// keys[ref], the BankKey the FEP recorded when it sent the 0200 (the bank's file knows no
// reference numbers). Inputs are taken as the caller filtered them (one accounting date);
// within each Group items are ordered by reference, then bank key.
func Classify(fep []Record, keys map[string]BankKey, bank []SettlementLine, platform []JournalEntry) Result {
	byKey := make(map[BankKey]*bankState)
	for i := range bank {
		l := &bank[i]
		s := byKey[l.Key()]
		if s == nil {
			s = &bankState{}
			byKey[l.Key()] = s
		}
		if l.Type == SettleDebit {
			s.debit = l
		} else {
			s.reversal = l
		}
	}
	journal := make(map[string]JournalEntry, len(platform))
	for _, e := range platform {
		journal[e.Ref] = e
	}
	seenRef := make(map[string]bool, len(fep))
	var items []Item
	for _, r := range fep {
		seenRef[r.Ref] = true
		it := Item{Ref: r.Ref, BankCode: r.BankCode, Amount: r.Amount}
		k, hasKey := keys[r.Ref]
		var s *bankState
		if hasKey {
			it.Key = k
			s = byKey[k]
		}
		if s == nil {
			it.Outcome = UnmatchedFEP
			if !hasKey {
				it.Notes = append(it.Notes, "no bank key recorded for the reference")
			} else {
				it.Notes = append(it.Notes, "bank has no line for "+k.String())
			}
			items = append(items, it)
			continue
		}
		s.matched = true
		e, inJournal := journal[r.Ref]
		it.Outcome = outcome(s.booked(), inJournal && e.Booked, e.written())
		it.Notes = notes(r, s, e, inJournal)
		items = append(items, it)
	}
	for k, s := range byKey {
		if s.matched {
			continue
		}
		for _, l := range []*SettlementLine{s.debit, s.reversal} {
			if l != nil && l.Approved() {
				items = append(items, Item{Outcome: UnmatchedBank, BankCode: k.BankCode, Key: k, Amount: l.Amount,
					Notes: []string{fmt.Sprintf("approved %c line (RRN %s) with no FEP record", l.Type, l.RRN)}})
			}
		}
	}
	for _, e := range platform {
		if e.Booked && !seenRef[e.Ref] {
			items = append(items, Item{Outcome: UnmatchedPlatform, Ref: e.Ref, BankCode: e.BankCode, Amount: e.Amount,
				Notes: []string{"booked on the platform, no FEP record"}})
		}
	}
	return group(items)
}

func outcome(bankBooked, platformBooked, written bool) Outcome {
	switch {
	case bankBooked && !platformBooked:
		return PlatformMissing
	case bankBooked && !written:
		return Rewrite
	case bankBooked:
		return Success
	case !platformBooked:
		return Cancelled
	case written:
		return BankMissing
	default:
		return BankMissingNoCard
	}
}

// notes compares the FEP's word with the two ledgers; the ledgers decide the outcome.
func notes(r Record, s *bankState, e JournalEntry, inJournal bool) []string {
	var n []string
	if s.booked() != (r.Txn == TxnOK) {
		n = append(n, fmt.Sprintf("FEP txn status %c, bank booked=%t", r.Txn, s.booked()))
	}
	if s.debit != nil && s.debit.Amount != r.Amount {
		n = append(n, fmt.Sprintf("FEP amount %d fen, bank debit %d fen", r.Amount, s.debit.Amount))
	}
	if inJournal {
		if e.Amount != r.Amount {
			n = append(n, fmt.Sprintf("FEP amount %d fen, platform %d fen", r.Amount, e.Amount))
		}
		if e.Booked && e.Write != WriteNone && e.Write != r.Write {
			n = append(n, fmt.Sprintf("FEP write status %c, platform %c", r.Write, e.Write))
		}
	}
	return n
}

func group(items []Item) Result {
	slices.SortFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Ref, b.Ref),
			cmp.Compare(a.Key.String(), b.Key.String()), cmp.Compare(a.Amount, b.Amount))
	})
	var res Result
	for o := PlatformMissing; o <= UnmatchedPlatform; o++ {
		res.Groups = append(res.Groups, Group{Outcome: o, Action: ActionFor(o)})
	}
	for _, it := range items {
		it.Action = ActionFor(it.Outcome)
		g := &res.Groups[it.Outcome-1]
		g.Items = append(g.Items, it)
		g.Count++
		g.Amount += it.Amount
	}
	return res
}
