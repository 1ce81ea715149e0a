package recon

// WriteNone is JournalEntry.Write when the platform never got a confirm for the load.
const WriteNone byte = 0

// JournalEntry is one load as the one-card platform's journal has it on T+2: the reference it
// issued at card check, and whether it booked the load and what write status it was told.
// The platform simulator exports these; a real platform would give the same facts.
type JournalEntry struct {
	Ref        string // 20-digit reference number
	CardSerial string // the card's application serial number
	Amount     int64  // fen
	Booked     bool   // the platform added the load to the card's account
	Write      byte   // WriteOK, WriteFailed, WriteUnsure or WriteNone (no confirm yet)
	BankCode   string // 10 chars
	AcctDate   string // YYYYMMDD
}

// written reports whether the platform knows the card was credited. No confirm (WriteNone)
// counts as not written, as an unconfirmed load does at the FEP (DESIGN 4 step 8).
func (e JournalEntry) written() bool { return e.Write == WriteOK }
