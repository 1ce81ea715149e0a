// Package terminal is the kiosk side of the FEP: the TCP listener for the kiosk link
// (docs/protocols/kiosk.md) and one actor per registered kiosk terminal.
//
// The I/O is at the edge. An accept goroutine takes connections; per connection one reader
// goroutine at a time reads a frame (io/frame), decodes it and checks the PSAM MAC in the
// security module (io/kiosk.ReadRequest), sends the decoded request to the terminal actor
// named by its F41 and leaves the next frame to a fresh goroutine, so an idle kiosk costs
// one small stack. The actor writes what it packed straight to the socket, under a write
// deadline. The reader also owns the heartbeat timeout: no frame for
// Config.HeartbeatTimeout closes the connection and marks the terminal offline.
//
// A terminal actor ("<kiosks>/terminal/<id>", see Kiosks.PID) signs its kiosk in (new PIK
// and MAK in the security module, exported under the kiosk's TMK with their KCVs), insists
// on a signed-in kiosk with the current batch for everything else, answers heartbeats,
// runs one load at a time, answers a repeated LOAD REQUEST (same terminal, date and
// trace) from memory without a second load, refuses new loads at once while the store,
// the platform session or the load's bank link is down, and forwards loads and confirms
// to the loads supervisor and pending queries, re-writes and U resolutions to the
// platform session.
//
// What it must never do: decide a money rule (the transaction core does), start a second
// load for a trace it has seen, log a key, PIN block or full PAN, or answer an approval
// without the kiosk's MAK.
package terminal
