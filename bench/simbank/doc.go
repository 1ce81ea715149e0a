// Package simbank is the simulated bank host: a separate process (`quancun sim bank`) that
// speaks the bank link of docs/protocols/bank.md over TCP exactly as a bank would, keeps its
// own books in an append-only journal, and misbehaves on purpose when told to (latency, lost,
// late and duplicate answers, cards that never get an answer).
//
// It exists so the FEP's tests, the demo and the bench meet a bank they cannot cheat: the
// money check reads this package's ledger from disk (LoadLedger), never the FEP's word.
// Rules it keeps: every decision is fsynced to the journal before its answer leaves; the
// same 0200 never debits twice; a reversal credits at most once; PINs and keys never reach
// the journal or the logs (KCVs only, PANs masked 6+4). See docs/sim-bank.md.
package simbank
