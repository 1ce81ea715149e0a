// Package reversal is the pure store-and-forward (SAF) queue of 0400 reversals for one
// bank link, with the knobs of jPOS-EE's SAF: initial delay, retry interval with back-off,
// wait for response, max attempts, expiry, and a repeat MTI for resends.
//
// Like actors/txn it performs no I/O and reads no clock: Step(queue, event) returns the new
// queue and the effects, and the bank-link actor persists the queue (synced) before it
// sends anything, then performs the effects in order, then arms the one timer. So an
// entry is durable before its first 0400 leaves, and survives restarts.
//
// Rules, because money depends on them: entries are sent oldest first and only one is in
// flight at a time, so the bank sees reversals in the order they were decided; any 0410
// response code ends an entry (00, 12, 25, ... all mean the bank has nothing more to
// undo); a link that is down pauses sending; an entry is never silently dropped: past its
// expiry or its attempts it moves to the Manual list for an operator.
package reversal

import (
	"fmt"
	"slices"
	"time"
)

// Knobs are the SAF settings of one bank (part of its dialect).
type Knobs struct {
	InitialDelay    time.Duration // from enqueue to the first send
	Interval        time.Duration // after a failed attempt; doubles up to MaxInterval
	MaxInterval     time.Duration
	WaitForResponse time.Duration // an attempt without a 0410 by then has failed
	MaxAttempts     int           // 0 = forever (the default)
	Expiry          time.Duration // 0 = never (the default); expired entries go to Manual
	MTI             string        // first send, e.g. 0400 (0420 in some dialects)
	RepeatMTI       string        // every later send, e.g. 0401 (0421)
	Retain          time.Duration // finished keys remembered to answer re-enqueues
}

// DefaultKnobs: retry forever, never expire, 0400 then 0401.
func DefaultKnobs() Knobs {
	return Knobs{
		InitialDelay:    time.Second,
		Interval:        10 * time.Second,
		MaxInterval:     5 * time.Minute,
		WaitForResponse: 30 * time.Second,
		MTI:             "0400",
		RepeatMTI:       "0401",
		Retain:          72 * time.Hour,
	}
}

func (k Knobs) withDefaults() Knobs {
	d := DefaultKnobs()
	if k.Interval <= 0 {
		k.Interval = d.Interval
	}
	if k.MaxInterval < k.Interval {
		k.MaxInterval = max(d.MaxInterval, k.Interval)
	}
	if k.WaitForResponse <= 0 {
		k.WaitForResponse = d.WaitForResponse
	}
	if k.MTI == "" {
		k.MTI = d.MTI
	}
	if k.RepeatMTI == "" {
		k.RepeatMTI = d.RepeatMTI
	}
	if k.Retain <= 0 {
		k.Retain = d.Retain
	}
	return k
}

// Key identifies the original 0200 on this link: its STAN and transmission date (MMDD).
type Key struct {
	STAN string
	Date string
}

func (k Key) String() string { return k.Date + "/" + k.STAN }

// Entry is one reversal waiting for its 0410.
type Entry struct {
	Key      Key
	TxnID    string
	Amount   int64
	Reason   string // 0400 F39: 98, 96, A0, 06
	Enqueued time.Time
	Attempts int
	NextAt   time.Time // earliest next send
	InFlight bool
	SentAt   time.Time
}

// Finished is an entry the bank answered; kept for Retain to answer re-enqueues.
type Finished struct {
	Key   Key
	TxnID string
	Code  string
	At    time.Time
}

// ManualEntry is an entry that ran out of attempts or time: an operator must settle it.
type ManualEntry struct {
	Entry Entry
	Why   string
	At    time.Time
}

// Queue is the persisted state of one bank link's reversal queue.
type Queue struct {
	Bank     string
	Knobs    Knobs
	Up       bool
	Entries  []Entry // oldest first; only Entries[0] is ever in flight
	Finished []Finished
	Manual   []ManualEntry
	WakeAt   time.Time // the timer last armed
}

// New returns an empty queue for a bank; the link starts down until LinkUp.
func New(bank string, k Knobs) Queue { return Queue{Bank: bank, Knobs: k.withDefaults()} }

// Event is one input: what happened and when.
type Event struct {
	Now time.Time
	Msg Msg
}

// Msg is one of the message types below.
type Msg interface{ msg() }

// Enqueue adds a reversal; idempotent by Key (a restarted load enqueues again).
type Enqueue struct {
	TxnID  string
	STAN   string
	Date   string
	Amount int64
	Reason string
}

// Response is a 0410 matched by STAN + date; any code ends the entry.
type Response struct {
	STAN string
	Date string
	Code string
}

// LinkUp: the link signed on; sending may resume.
type LinkUp struct{}

// LinkDown: the link is gone; an attempt in flight is treated as unanswered.
type LinkDown struct{}

// Tick: the timer armed by SetTimer fired (early ticks are harmless).
type Tick struct{}

// Restarted: the queue was loaded from disk after a restart; links start down.
type Restarted struct{}

func (Enqueue) msg()   {}
func (Response) msg()  {}
func (LinkUp) msg()    {}
func (LinkDown) msg()  {}
func (Tick) msg()      {}
func (Restarted) msg() {}

// Effect is one thing the bank-link actor must do after persisting the queue.
type Effect interface{ effect() }

// Send the reversal of Key with MTI (first send) or the repeat MTI.
type Send struct {
	Key     Key
	TxnID   string
	MTI     string
	Reason  string
	Attempt int
}

// Done: the bank answered; tell the load (txn.ReversalDone{Code}).
type Done struct {
	Key   Key
	TxnID string
	Code  string
}

// Manual: the entry left the queue for an operator; alert, never drop.
type Manual struct {
	Key   Key
	TxnID string
	Why   string
}

// SetTimer arms the queue's single timer (replacing the previous one).
type SetTimer struct{ At time.Time }

// Note is for the log only.
type Note struct{ Text string }

func (Send) effect()     {}
func (Done) effect()     {}
func (Manual) effect()   {}
func (SetTimer) effect() {}
func (Note) effect()     {}

// Step advances the queue by one event.
func Step(q Queue, ev Event) (Queue, []Effect) {
	st := &stepper{q: q.clone(), now: ev.Now}
	st.q.Knobs = st.q.Knobs.withDefaults()
	switch m := ev.Msg.(type) {
	case Enqueue:
		st.enqueue(m)
	case Response:
		st.response(Key{STAN: m.STAN, Date: m.Date}, m.Code)
	case LinkUp:
		st.q.Up = true
	case LinkDown:
		st.q.Up = false
		st.abandonInFlight("link down")
	case Tick:
	case Restarted:
		st.q.Up = false
		st.q.WakeAt = time.Time{} // timers died with the process
		st.abandonInFlight("restarted")
	default:
		st.note("%T is not a queue event: ignored", m)
	}
	st.pump()
	return st.q, st.out
}

// clone copies the slices so a caller's old Queue value is never modified.
func (q Queue) clone() Queue {
	q.Entries = slices.Clone(q.Entries)
	q.Finished = slices.Clone(q.Finished)
	q.Manual = slices.Clone(q.Manual)
	return q
}

type stepper struct {
	q   Queue
	now time.Time
	out []Effect
}

func (st *stepper) emit(e Effect) { st.out = append(st.out, e) }

func (st *stepper) note(format string, args ...any) {
	st.emit(Note{Text: fmt.Sprintf(format, args...)})
}

func (st *stepper) enqueue(m Enqueue) {
	k := Key{STAN: m.STAN, Date: m.Date}
	if slices.ContainsFunc(st.q.Entries, func(e Entry) bool { return e.Key == k }) {
		st.note("%s already queued", k)
		return
	}
	if i := slices.IndexFunc(st.q.Finished, func(f Finished) bool { return f.Key == k }); i >= 0 {
		f := st.q.Finished[i]
		st.note("%s already answered %s: told again", k, f.Code)
		st.emit(Done{Key: k, TxnID: f.TxnID, Code: f.Code})
		return
	}
	if slices.ContainsFunc(st.q.Manual, func(e ManualEntry) bool { return e.Entry.Key == k }) {
		st.note("%s is with an operator", k)
		return
	}
	st.q.Entries = append(st.q.Entries, Entry{Key: k, TxnID: m.TxnID, Amount: m.Amount, Reason: m.Reason,
		Enqueued: st.now, NextAt: st.now.Add(st.q.Knobs.InitialDelay)})
}

// response ends the entry whatever the code; a 0410 for a manual entry ends it too.
func (st *stepper) response(k Key, code string) {
	q := &st.q
	if i := slices.IndexFunc(q.Entries, func(e Entry) bool { return e.Key == k }); i >= 0 {
		e := q.Entries[i]
		q.Entries = slices.Delete(q.Entries, i, i+1)
		st.finish(k, e.TxnID, code)
		return
	}
	if i := slices.IndexFunc(q.Manual, func(m ManualEntry) bool { return m.Entry.Key == k }); i >= 0 {
		e := q.Manual[i].Entry
		q.Manual = slices.Delete(q.Manual, i, i+1)
		st.note("%s answered after it went to manual", k)
		st.finish(k, e.TxnID, code)
		return
	}
	if slices.ContainsFunc(q.Finished, func(f Finished) bool { return f.Key == k }) {
		st.note("duplicate 0410 for %s (code %s): already answered", k, code)
		return
	}
	st.note("0410 for %s (code %s) matches nothing pending: dropped", k, code)
}

func (st *stepper) finish(k Key, txnID, code string) {
	st.q.Finished = append(st.q.Finished, Finished{Key: k, TxnID: txnID, Code: code, At: st.now})
	st.emit(Done{Key: k, TxnID: txnID, Code: code})
}

// abandonInFlight: the answer to the attempt in flight may never come (the bank may or
// may not have it), so the next send is due at once and uses the repeat MTI.
func (st *stepper) abandonInFlight(why string) {
	if len(st.q.Entries) > 0 && st.q.Entries[0].InFlight {
		e := &st.q.Entries[0]
		e.InFlight = false
		e.NextAt = st.now
		st.note("%s in flight, %s: will repeat", e.Key, why)
	}
}

func (st *stepper) toManual(i int, why string) {
	e := st.q.Entries[i]
	st.q.Entries = slices.Delete(st.q.Entries, i, i+1)
	st.q.Manual = append(st.q.Manual, ManualEntry{Entry: e, Why: why, At: st.now})
	st.emit(Manual{Key: e.Key, TxnID: e.TxnID, Why: why})
}

func (st *stepper) due(at time.Time) bool { return !st.now.Before(at) }

// pump applies timeouts and expiry, sends the head if it is due, prunes old finished
// keys and arms the timer for the next thing that can happen.
func (st *stepper) pump() {
	q, k := &st.q, st.q.Knobs
	if len(q.Entries) > 0 && q.Entries[0].InFlight && st.due(q.Entries[0].SentAt.Add(k.WaitForResponse)) {
		e := &q.Entries[0]
		e.InFlight = false
		e.NextAt = st.now.Add(backoff(k.Interval, k.MaxInterval, e.Attempts))
		if k.MaxAttempts > 0 && e.Attempts >= k.MaxAttempts {
			st.toManual(0, fmt.Sprintf("no 0410 after %d attempts", e.Attempts))
		}
	}
	if k.Expiry > 0 {
		for i := 0; i < len(q.Entries); {
			if e := q.Entries[i]; !e.InFlight && st.due(e.Enqueued.Add(k.Expiry)) {
				st.toManual(i, "expired after "+k.Expiry.String())
				continue
			}
			i++
		}
	}
	if q.Up && len(q.Entries) > 0 && !q.Entries[0].InFlight && st.due(q.Entries[0].NextAt) {
		e := &q.Entries[0]
		e.Attempts++
		e.InFlight = true
		e.SentAt = st.now
		mti := k.MTI
		if e.Attempts > 1 {
			mti = k.RepeatMTI
		}
		st.emit(Send{Key: e.Key, TxnID: e.TxnID, MTI: mti, Reason: e.Reason, Attempt: e.Attempts})
	}
	q.Finished = slices.DeleteFunc(q.Finished, func(f Finished) bool { return st.due(f.At.Add(k.Retain)) })
	if wake := st.nextWake(); !wake.IsZero() && !wake.Equal(q.WakeAt) {
		q.WakeAt = wake
		st.emit(SetTimer{At: wake})
	}
}

// nextWake is the earliest time at which a Tick can change something.
func (st *stepper) nextWake() time.Time {
	q, k := st.q, st.q.Knobs
	var wake time.Time
	at := func(t time.Time) {
		if wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	if len(q.Entries) > 0 {
		switch h := q.Entries[0]; {
		case h.InFlight:
			at(h.SentAt.Add(k.WaitForResponse))
		case q.Up:
			at(h.NextAt)
		}
	}
	if k.Expiry > 0 {
		for _, e := range q.Entries {
			if !e.InFlight {
				at(e.Enqueued.Add(k.Expiry))
			}
		}
	}
	for _, f := range q.Finished {
		at(f.At.Add(k.Retain))
	}
	return wake
}

// backoff is first, 2*first, 4*first, ... capped at max; attempt counts from 1.
func backoff(first, max time.Duration, attempt int) time.Duration {
	d := first
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
