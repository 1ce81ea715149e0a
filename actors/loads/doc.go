// Package loads is the supervisor of transaction actors ("loads" in the FEP's tree) and the
// transaction actor shell ("loads/<txn id>") that drives the pure core of actors/txn.
//
// The shell decides no money rule: it maps a message to a txn event, calls txn.Step, makes
// the new record durable (Store.CommitAsync, synced, group commit) and only when the commit
// reports success performs the effects in order, then arms timers. While a commit is in
// flight, new events wait in the actor's own queue, so effects leave strictly in the order
// of durable states. A failed commit stops the transaction with no effect performed.
//
// What it must never do: send an effect before its state is durable, send a 0200 twice
// (only the core emits SendBankDebit, and never after a restart), persist a PIN block, or
// log a clear PAN.
//
// docs/loads.md describes the loop, the persisted record and its indexes, recovery, the
// message of each effect and the failure handling.
package loads
