package txn

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestLoadMoneyProperties runs one load against a random environment: the platform and
// the bank answer, lose, duplicate and reorder messages, timers fire (on time, early or
// stale), and the process crashes at any point, including between persisting a state and
// performing its effects. Each crash restarts from the last persisted state with no
// timers. Invariants are checked after every step, and once more at the end, after the
// environment turned reliable and answered everything outstanding.
//
//	go test ./actors/txn -run MoneyProperties -rapid.checks=2000
func TestLoadMoneyProperties(t *testing.T) {
	outcomes := map[Outcome]int{}
	steps, restarts := 0, 0
	defer func() {
		t.Logf("outcomes %v; %d steps, %d restarts", outcomes, steps, restarts)
		// Every path must be reached, or the invariants above were checked on too little.
		for _, o := range []Outcome{OutcomeRefused, OutcomeFailed, OutcomeDeclined, OutcomeReversed, OutcomeLoaded, OutcomeUnwritten, OutcomeUnknown} {
			if outcomes[o] == 0 && !t.Failed() {
				t.Errorf("no run ended %s", o)
			}
		}
	}()
	// Rounds of rapid's checks until every outcome was reached (bounded): the default 100
	// checks of one round do not always reach the rarer outcomes.
	all := func() bool {
		for _, o := range []Outcome{OutcomeRefused, OutcomeFailed, OutcomeDeclined, OutcomeReversed, OutcomeLoaded, OutcomeUnwritten, OutcomeUnknown} {
			if outcomes[o] == 0 {
				return false
			}
		}
		return true
	}
	for round := 0; round < 50 && !all() && !t.Failed(); round++ {
		rapid.Check(t, loadProperty(outcomes, &steps, &restarts))
	}
}

func loadProperty(outcomes map[Outcome]int, steps, restarts *int) func(*rapid.T) {
	return func(rt *rapid.T) {
		w := &world{rt: rt, now: base, timers: map[TimerKind]time.Time{}}
		w.step(KioskLoadRequest{ID: "L1", Terminal: "KIOSK001", KioskTrace: "000123",
			CardSerial: "3300000000000001", Amount: 5000, BankCode: "0103000000",
			MaskedPAN: "622848******1234", STAN: "000045", BankDate: "0315"})
		for range rapid.IntRange(10, 80).Draw(rt, "chaos steps") {
			w.chaos()
		}
		w.reliable = true
		for i := 0; !w.persisted.Final(); i++ {
			if i > 500 {
				rt.Fatalf("not final after the environment answered everything: %+v", w.persisted)
			}
			w.drain()
		}
		w.checkEnd()
		outcomes[w.persisted.Outcome]++
		*steps += w.steps
		*restarts += w.restarts
	}
}

// world is the environment of one load: bank, platform, kiosk, reversal queue, disk, timers.
type world struct {
	rt       *rapid.T
	now      time.Time
	reliable bool // no more losses, errors or crashes: the environment answers everything

	s         State // in memory
	persisted State // on disk
	timers    map[TimerKind]time.Time
	inbox     []Msg // answers on their way, delivered in any order
	seen      []Msg // already delivered, kept for duplicates

	// What the parties did, from their own side ("their ledgers").
	checkDecided  string // ok, refused, error
	checkOKSeen   bool   // the core received PlatformCheckOK
	debitsSent    int
	bankGot       bool // the 0200 reached the bank
	bankApproved  bool
	bankDebit     int // standing debit at the bank (0 or 1)
	approvedSeen  bool
	bookDecided   string // book, refuse
	booked        bool
	bookOKSeen    bool
	revEnqueued   bool
	revApplied    bool
	confirmStatus WriteStatus
	kioskReplies  int
	steps         int
	restarts      int
}

func (w *world) draw(n int, label string) int { return rapid.IntRange(0, n-1).Draw(w.rt, label) }

// rare is true about once in n. It tests a window in the middle of 0..99 because rapid
// favours small values and both ends of a range.
func (w *world) rare(n int, label string) bool {
	v := w.draw(100, label)
	return v >= 50 && v < 50+100/n
}

// chaos performs one random environment action.
func (w *world) chaos() {
	switch a := w.draw(20, "action"); {
	case a < 11:
		w.deliverOne()
	case a < 13:
		if len(w.seen) > 0 {
			w.step(w.seen[w.draw(len(w.seen), "duplicate")])
		}
	case a < 17:
		w.fireNextTimer()
	case a < 19:
		kinds := []TimerKind{TimerCheck, TimerBank, TimerBookRetry, TimerKiosk, TimerConfirm, TimerConfirmRetry}
		w.now = w.now.Add(time.Duration(w.draw(40, "advance")) * time.Second)
		w.step(Timer{Kind: kinds[w.draw(len(kinds), "stray timer")]})
	default:
		w.restart()
	}
}

// drain is one reliable step: deliver what is in flight, else let the next timer fire.
func (w *world) drain() {
	if len(w.inbox) > 0 {
		w.deliverOne()
		return
	}
	if len(w.timers) == 0 {
		w.rt.Fatalf("not final, nothing in flight and no timer armed: %+v", w.s)
	}
	w.fireNextTimer()
}

func (w *world) deliverOne() {
	if len(w.inbox) == 0 {
		return
	}
	i := w.draw(len(w.inbox), "deliver")
	m := w.inbox[i]
	w.inbox = slices.Delete(w.inbox, i, i+1)
	w.seen = append(w.seen, m)
	w.step(m)
}

func (w *world) fireNextTimer() {
	if len(w.timers) == 0 {
		return
	}
	kinds := make([]TimerKind, 0, len(w.timers))
	for k := range w.timers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	slices.SortStableFunc(kinds, func(a, b TimerKind) int { return w.timers[a].Compare(w.timers[b]) })
	k := kinds[0]
	if !w.reliable {
		k = kinds[w.draw(len(kinds), "timer")]
	}
	if at := w.timers[k]; at.After(w.now) {
		w.now = at
	}
	delete(w.timers, k)
	w.step(Timer{Kind: k})
}

func (w *world) restart() {
	w.restarts++
	w.s = w.persisted
	clear(w.timers) // timers live in memory only
	w.step(Restarted{})
}

// step is the shell's loop: Step, persist, perform effects; a crash may cut the effects.
func (w *world) step(m Msg) {
	switch m.(type) {
	case PlatformCheckOK:
		w.checkOKSeen = true
	case BankResponse:
		if r := m.(BankResponse); r.Code == "00" && r.MACOK && !r.Malformed && w.s.Phase == PhaseSentToBank {
			w.approvedSeen = true
		}
	case BookOK:
		w.bookOKSeen = true
	}
	w.steps++
	prev := w.s
	next, effs := Step(w.s, Event{Now: w.now, Msg: m})
	if prev.Final() {
		if next != prev {
			w.rt.Fatalf("final state changed by %T:\n%+v\n%+v", m, prev, next)
		}
		for _, e := range effs {
			if _, ok := e.(Note); !ok {
				w.rt.Fatalf("final state produced %T", e)
			}
		}
	}
	w.s = next
	w.persisted = next
	n := len(effs)
	if !w.reliable && w.rare(24, "crash") {
		n = w.draw(len(effs)+1, "effects before crash")
		for _, e := range effs[:n] {
			w.perform(e)
		}
		w.restart()
		return
	}
	for _, e := range effs[:n] {
		w.perform(e)
	}
}

// lose decides whether an answer is lost (never while reliable).
func (w *world) lose(label string) bool { return !w.reliable && w.rare(4, label) }

func (w *world) perform(e Effect) {
	switch e := e.(type) {
	case SendPlatformCheck:
		if w.checkDecided == "" {
			w.checkDecided = "ok"
			switch {
			case w.rare(10, "check refused"):
				w.checkDecided = "refused"
			case w.rare(10, "check error"):
				w.checkDecided = "error"
			}
		}
		if w.lose("check lost") {
			return
		}
		switch w.checkDecided {
		case "ok":
			w.inbox = append(w.inbox, PlatformCheckOK{Ref: "20240315000000000001"})
		case "refused":
			w.inbox = append(w.inbox, PlatformCheckRefused{Code: "P3"})
		default:
			w.inbox = append(w.inbox, PlatformError{Why: "busy"})
		}
	case SendBankDebit:
		w.debitsSent++
		if w.debitsSent > 1 {
			w.rt.Fatalf("second 0200 for one load")
		}
		if !w.checkOKSeen || w.s.Ref == "" {
			w.rt.Fatalf("0200 before the platform's card check OK")
		}
		if w.rare(6, "0200 lost") {
			return // the bank never got it
		}
		w.bankGot = true
		w.bankApproved = !w.rare(4, "bank declines")
		code := "51"
		if w.bankApproved {
			code = "00"
			w.bankDebit = 1
		}
		if w.rare(5, "0210 lost") {
			return
		}
		r := BankResponse{Code: code, RRN: "240315000045", Auth: "A1", SettleDate: "0315", MACOK: true}
		switch w.draw(8, "0210 damage") {
		case 6:
			r.MACOK = false
		case 7:
			r.Malformed = true
		}
		w.inbox = append(w.inbox, r)
	case EnqueueReversal:
		if w.booked || w.bookOKSeen || w.s.Write != WriteNone {
			w.rt.Fatalf("reversal of a booked load (write %q)", w.s.Write)
		}
		w.revEnqueued = true
		code := "25"
		if !w.revApplied {
			// The queue is durable and reliable and keeps order behind the 0200: the bank
			// applies the first reversal it gets; repeats find nothing more to undo.
			w.revApplied = true
			if w.bankDebit == 1 {
				w.bankDebit = 0
				code = "00"
			}
		}
		w.inbox = append(w.inbox, ReversalDone{Code: code})
	case SendPlatformBook:
		if !w.approvedSeen || w.bankDebit != 1 {
			w.rt.Fatalf("BOOK without an approved, standing debit")
		}
		if w.bookDecided == "" {
			w.bookDecided = "book"
			if w.rare(8, "book refused") {
				w.bookDecided = "refuse"
			} else {
				w.booked = true
			}
		}
		if w.lose("book lost") {
			return
		}
		switch {
		case !w.reliable && w.rare(4, "book error"):
			w.inbox = append(w.inbox, BookError{Why: "busy"})
		case w.booked:
			w.inbox = append(w.inbox, BookOK{MAC2: "D14DBB02", HostTime: "20240315143000"})
		default:
			w.inbox = append(w.inbox, BookRefused{Code: "B7"})
		}
	case SendPlatformConfirm:
		if !w.booked {
			w.rt.Fatalf("CONFIRM of a load the platform never booked")
		}
		w.confirmStatus = e.Status
		if !w.lose("confirm ack lost") {
			w.inbox = append(w.inbox, PlatformConfirmAck{})
		}
	case ReplyKiosk:
		w.kioskReplies++
		if w.kioskReplies > 1 {
			w.rt.Fatalf("kiosk answered twice")
		}
		if e.Result == KioskApproved {
			switch w.draw(4, "kiosk writes") {
			case 0:
				w.inbox = append(w.inbox, KioskConfirm{Status: WriteS, TAC: "27840D33"})
			case 1:
				w.inbox = append(w.inbox, KioskConfirm{Status: WriteF})
			case 2:
				w.inbox = append(w.inbox, KioskConfirm{Status: WriteU})
			} // 3: the kiosk never confirms
		}
	case SetTimer:
		w.timers[e.Kind] = e.At
	case CancelTimer:
		delete(w.timers, e.Kind)
	case Done:
		if e.Outcome != w.s.Outcome {
			w.rt.Fatalf("Done(%s) but state says %s", e.Outcome, w.s.Outcome)
		}
	case Note:
	default:
		w.rt.Fatalf("unexpected effect %T", e)
	}
}

// checkEnd is the money check of one load, from the parties' own records.
func (w *world) checkEnd() {
	s := w.persisted
	if w.bankDebit == 1 && !w.booked {
		w.rt.Fatalf("bank debit stands, platform never booked: %+v", s)
	}
	if w.booked && w.bankDebit != 1 {
		w.rt.Fatalf("platform booked, no standing bank debit: %+v", s)
	}
	if w.booked && w.revEnqueued {
		w.rt.Fatalf("booked load was reversed")
	}
	switch s.Outcome {
	case OutcomeLoaded, OutcomeUnwritten, OutcomeUnknown:
		if !w.booked || w.confirmStatus != s.Write || s.Write == WriteNone {
			w.rt.Fatalf("%s: booked=%v confirmed %q, state write %q", s.Outcome, w.booked, w.confirmStatus, s.Write)
		}
	case OutcomeReversed:
		if !w.revApplied || s.Txn != TxnC {
			w.rt.Fatalf("reversed without the bank's reversal")
		}
	case OutcomeRefused, OutcomeFailed:
		if w.debitsSent != 0 {
			w.rt.Fatalf("%s after a 0200 was sent", s.Outcome)
		}
	case OutcomeDeclined:
		if !w.bankGot || w.bankApproved {
			w.rt.Fatalf("declined, but the bank approved or never saw it")
		}
	default:
		w.rt.Fatalf("final with outcome %q", s.Outcome)
	}
	r := s.Reconciliation()
	if (r.Txn == TxnS) != (w.bankDebit == 1) {
		w.rt.Fatalf("file says txn %q, bank debit %d", r.Txn, w.bankDebit)
	}
	// A reversed load is listed even if its 0200 never left (a crash between persisting
	// "sent to bank" and sending): the FEP cannot tell, and the bank's 25 closes it.
	if r.Listed != (w.bankDebit == 1 || w.revApplied) {
		w.rt.Fatalf("file listing %v wrong for %+v", r.Listed, s)
	}
	if r.Txn == TxnC && r.Write != WriteF {
		w.rt.Fatalf("reversed load listed with write %q", r.Write)
	}
}
