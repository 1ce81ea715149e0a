// Package simplatform is the one-card platform (一卡通平台) as a peer process for tests, the
// demo and the bench: it speaks the FEP link of docs/protocols/platform.md over TCP (through
// io/platform), keeps the cards' load accounts in an append-only JSON-lines journal that is
// fsynced before any answer leaves and replayed at start, and runs the FTP server that
// receives the FEP's reconciliation files. docs/sim-platform.md describes its config, its
// behaviour per message and the journal format.
//
// It is a simulator: it holds the card master keys in a software security module (io/hsm)
// and never logs keys, only their check values. LoadJournal lets other processes (the money
// check, reconciliation) read the journal without the server. It never trusts the FEP's
// word about a card: MAC1, TAC and card evidence are checked with the card keys.
package simplatform
