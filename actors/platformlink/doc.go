// Package platformlink is the platform session actor: the FEP's one session with the
// one-card platform (docs/protocols/platform.md). It keeps the TCP connection (dial with
// back-off), signs in with the auth code (new batch number and dynamic key, imported into
// the security module under the long-term key and checked by its KCV), persists the batch,
// heartbeats, re-signs in when the platform says the key is stale, and carries the
// transaction and terminal actors' requests (messages.PlatformCheck, PlatformBook,
// PlatformConfirm, PlatformPendingQuery, PlatformRewrite, PlatformResolve): it numbers them,
// MACs them, matches each answer by batch and sequence number and answers the requester.
//
// What it must never do: decide a money rule (a definitive refusal is passed on as Refused,
// anything that leaves the outcome open as Err, and the transaction core decides); answer
// a request with success that the platform did not authenticate; keep a request waiting
// while the session is down (it fails fast: nothing is known to have happened); log a key
// (key check values only) or a PAN. docs/platform-link.md describes the behaviour and the
// configuration.
package platformlink
