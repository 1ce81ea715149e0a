// Package moneycheck is the money check of DESIGN section 10, computed from the peers' own
// books — the banks' ledgers, the platform's journal and the virtual cards' files — never
// from the FEP's word. Every test that moves money, the demo and the bench end with it.
package moneycheck

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/io/card/vcard"
)

// Card is one virtual card as the check needs it: where it started and what it holds now.
type Card struct {
	Serial       string // app serial, 16 upper-case hex digits
	StartBalance int64
	State        *vcard.CardState
}

// Input is every book the check reads. Unfinished is the number of FEP transactions not
// in a final state once the links are up (-1 when it was not counted).
type Input struct {
	Banks      map[string]*simbank.Ledger // by bank code
	Platform   *simplatform.Journal
	Cards      []Card
	Unfinished int
}

// Report is the outcome; Line is the one line people and scripts read.
type Report struct {
	Problems []string
	// What the books hold, for the summary.
	BankNet      map[string]int64 // approved debits minus reversals, per bank
	BankCount    map[string]int
	Booked       map[string]int64 // platform bookings per bank
	Written      int              // booked loads confirmed on their card (S)
	Pending      int              // booked, waiting for the re-write (F/U/no confirm)
	PendingOnCrd int              // of those, already on the card per its log (a U to resolve)
}

// Passed reports whether nothing differs.
func (r Report) Passed() bool { return len(r.Problems) == 0 }

// Line is "money check: passed" or "money check: FAILED: <what differs>".
func (r Report) Line() string {
	if r.Passed() {
		return "money check: passed"
	}
	return "money check: FAILED: " + strings.Join(r.Problems, "; ")
}

// Check compares the books.
func Check(in Input) Report {
	r := Report{BankNet: map[string]int64{}, BankCount: map[string]int{}, Booked: map[string]int64{}}
	bad := func(format string, a ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, a...)) }

	// 1. Each bank: approved debits minus reversals equals what the platform booked, debit
	// by debit (the platform records the bank's RRN at BOOK).
	standing := map[string]map[string]*simbank.Debit{} // bank -> RRN -> debit
	for code, l := range in.Banks {
		m := map[string]*simbank.Debit{}
		for _, d := range l.Debits {
			if d.Approved() && !d.Reversed {
				m[d.RRN] = d
				r.BankNet[code] += d.Amount
				r.BankCount[code]++
			}
		}
		standing[code] = m
		if err := l.Check(); err != nil {
			bad("bank %s ledger inconsistent: %v", code, err)
		}
	}
	if in.Platform == nil {
		bad("no platform journal")
		return r
	}
	loads := in.Platform.Loads()
	matched := map[string]map[string]bool{}
	for _, l := range loads {
		if !l.Booked {
			continue
		}
		r.Booked[l.BankCode] += l.Amount
		d, ok := standing[l.BankCode][l.BankRRN]
		switch {
		case !ok:
			bad("platform booked %s (%d fen, bank %s, RRN %q) without a standing bank debit", l.Ref, l.Amount, l.BankCode, l.BankRRN)
		case d.Amount != l.Amount:
			bad("platform booked %s for %d fen, bank debited %d", l.Ref, l.Amount, d.Amount)
		default:
			if matched[l.BankCode] == nil {
				matched[l.BankCode] = map[string]bool{}
			}
			if matched[l.BankCode][l.BankRRN] {
				bad("bank debit RRN %s booked twice", l.BankRRN)
			}
			matched[l.BankCode][l.BankRRN] = true
		}
	}
	for code, m := range standing {
		for rrn, d := range m {
			if !matched[code][rrn] {
				bad("bank %s debit RRN %s (%d fen, STAN %s) stands but the platform never booked it", code, rrn, d.Amount, d.STAN)
			}
		}
	}
	for _, code := range sortedKeys(r.BankNet, r.Booked) {
		if r.BankNet[code] != r.Booked[code] {
			bad("bank %s: net debits %d fen, platform booked %d fen", code, r.BankNet[code], r.Booked[code])
		}
	}

	// 2. Each booked load is on its card or waiting for its re-write, and 3. every card's
	// balance is its start plus the loads written to it.
	cards := map[string]*Card{}
	for i := range in.Cards {
		cards[in.Cards[i].Serial] = &in.Cards[i]
	}
	onCard := map[string]int64{}
	for _, l := range loads {
		if !l.Booked {
			continue
		}
		c := cards[l.Card]
		if l.Write == simplatform.WriteOK {
			r.Written++
			onCard[l.Card] += l.Amount
			continue
		}
		r.Pending++
		if c != nil && appliedPerLog(c.State, l) {
			r.PendingOnCrd++
			onCard[l.Card] += l.Amount
		}
	}
	for _, c := range in.Cards {
		want := c.StartBalance + onCard[c.Serial]
		if int64(c.State.Balance) != want {
			bad("card %s balance %d fen, want start %d + loads on it %d = %d", c.Serial, c.State.Balance, c.StartBalance, onCard[c.Serial], want)
		}
	}
	for serial := range onCard {
		if cards[serial] == nil && len(in.Cards) > 0 {
			bad("platform wrote loads to card %s, which is not among the checked cards", serial)
		}
	}

	// 4. Nothing unfinished.
	if in.Unfinished > 0 {
		bad("%d FEP transactions unfinished", in.Unfinished)
	}
	return r
}

// appliedPerLog reports whether the card's 0018 log holds the credit of the load's last
// MAC2: the same serial, amount, terminal and host time (spec section 4).
func appliedPerLog(s *vcard.CardState, l simplatform.Load) bool {
	if s == nil || len(l.Inits) == 0 {
		return false
	}
	in := l.Inits[len(l.Inits)-1]
	if !in.Issued {
		return false
	}
	for _, e := range s.Log {
		if e.Serial == in.Serial && int64(e.Amount) == l.Amount && byte(e.Type) == 0x02 &&
			bytes.Equal(e.TermID, in.TermID[:]) && bytes.Equal(e.DateTime, in.HostTime[:]) {
			return true
		}
	}
	return false
}

func sortedKeys(ms ...map[string]int64) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SerialOf returns a card's app serial (0015 bytes 12..20) as 16 upper-case hex digits.
func SerialOf(s *vcard.CardState) string {
	if len(s.EF15) < 20 {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString(s.EF15[12:20]))
}
