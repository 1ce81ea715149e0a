// Package persistence is the durable store the actors write ahead to: Badger with
// synced writes behind a group-commit writer, prefix scans, ordered composite keys and
// durable counters (STAN, trace, reference and batch numbers).
//
// The store is generic over byte values; the transaction record encoding lives with the
// transaction core. What this package must never do: acknowledge a write that is not on
// disk, hand out a counter number twice, or keep accepting writes after a write failed
// (the switch must stop taking loads rather than run without durability).
//
// See docs/persistence.md for the key layout, the failure semantics and the numbers.
package persistence
