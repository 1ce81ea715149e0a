// Package txn is the pure core of one load (圈存) transaction and of one re-write (补写卡)
// of a booked load: Step(state, event) -> (state, effects), in the manner of etcd's raft.
//
// The core performs no I/O, reads no clock and spawns nothing. Time comes in as Event.Now;
// deadlines are absolute times kept in the State, so a restarted process re-arms its timers
// from the persisted state alone. It must never import protoactor, badger or any io/ package.
//
// The shell (the transaction actor) drives it with one loop, and the order is the money rule:
//
//  1. s2, effects := Step(s, ev)
//  2. if s2 != s, persist s2 (synced) — the new state is durable BEFORE anything leaves;
//     so "sent to bank" is on disk before the 0200, "reversing" before the 0400 is queued;
//  3. perform the effects in order (send, enqueue, reply, Done);
//  4. arm and cancel timers (SetTimer/CancelTimer) last.
//
// A crash between 2 and 3 loses effects, never state. That is why, on start, every
// unfinished state is stepped with Restarted and the core re-issues what its phase still
// needs, and why every effect must be idempotent at its receiver: BOOK and CONFIRM by
// reference number at the platform, EnqueueReversal by (bank, STAN, date) in the reversal
// queue. The one effect the core never re-issues is SendBankDebit: a restart in "sent to
// bank" is a bank timeout and is reversed, because a second 0200 could debit twice.
//
// Timer events whose deadline is not yet due, and events a phase does not expect
// (duplicates, late answers), change nothing; they produce at most a Note for the log.
// Final states stay final.
//
// See docs/transaction-states.md for the state diagram, the restart rule of each phase and
// how outcomes map onto the reconciliation file's write status S/F/U and txn status S/C.
package txn
