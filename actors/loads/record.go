package loads

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
)

// recordVersion is the format a record is written in (codec.go: binary); it is written into
// every record so a later format can read older ones. Version 1 was JSON (jsonVersion).
const (
	recordVersion = 2
	jsonVersion   = 1
)

// Record is what a transaction actor persists under TxnKey(id): the core's state plus what
// its effects need that the state does not carry. It is written whole, synced, before any
// effect of the step that produced it.
//
// Start.Payer.PINBlock is never stored: the only effect that needs it is the 0200, and the
// core never sends a 0200 after a restart (a restart in sent_to_bank reverses). The clear PAN
// and track 2 are stored (the reversal repeats them); encrypting them at rest is a follow-up.
type Record struct {
	V     int                `json:"v"`
	State txn.State          `json:"state"`
	Start messages.StartLoad `json:"start"`
	// Batch is the platform batch number the reference was issued in (recon file).
	Batch uint32 `json:"batch,omitempty"`
	// Debit is the 0200 as handed to the bank link (without PIN block), persisted with
	// "sent to bank"; a reversal repeats it as EnqueueReversal.Original.
	Debit *messages.BankDebit `json:"debit,omitempty"`
	// Reply is what the kiosk is told (once); a duplicate StartLoad gets it again.
	Reply *messages.LoadReply `json:"reply,omitempty"`
	// Settled records that a load which ended F or U reached its card later (a re-write or
	// a U resolution). The transaction's state stays as it ended; the reconciliation
	// file reads the write status S from here.
	Settled *Settled `json:"settled,omitempty"`
}

// Settled is a later completion of a load's card write.
type Settled struct {
	At  time.Time `json:"at"`
	How string    `json:"how"` // "rewrite" or "resolved"
	TAC string    `json:"tac,omitempty"`
}

// TxnKey is where the record of a transaction lives.
func TxnKey(id string) []byte { return persistence.Key("txn", id) }

// RefKey indexes a platform reference number to its transaction id (value: the id).
func RefKey(ref string) []byte { return persistence.Key("ref", ref) }

// DayKey indexes a transaction by the local day (YYYYMMDD) it started; DayPrefix(day)
// scans one day.
func DayKey(day, id string) []byte { return persistence.Key("day", day, id) }

// DayPrefix is the scan prefix of DayKey for one day.
func DayPrefix(day string) []byte { return persistence.Key("day", day) }

// differs reports whether r must be persisted before the effects that came with it.
func (r Record) differs(prev Record) bool {
	return r.State != prev.State || r.Batch != prev.Batch || r.Debit != prev.Debit || r.Reply != prev.Reply
}

// ops are the writes of r, with the index keys that became known since prev, in one commit.
func (r Record) ops(prev Record) ([]persistence.Op, error) {
	ops := make([]persistence.Op, 1, 3)
	ops[0] = persistence.Op{Key: TxnKey(r.State.ID), Value: encodeRecord(r)}
	if prev.State.Phase == txn.PhaseNew && !r.State.Started.IsZero() {
		ops = append(ops, persistence.Op{Key: DayKey(r.State.Started.Format("20060102"), r.State.ID), Value: []byte(r.State.ID)})
	}
	if r.State.Ref != "" && r.State.Ref != prev.State.Ref {
		ops = append(ops, persistence.Op{Key: RefKey(r.State.Ref), Value: []byte(r.State.ID)})
	}
	return ops, nil
}

// atRest is the StartLoad as stored: without the PIN block.
func atRest(m messages.StartLoad) messages.StartLoad {
	m.Payer.PINBlock = nil
	return m
}

// loadReply builds the kiosk's answer from the core's ReplyKiosk.
func loadReply(s txn.State, start messages.StartLoad, r txn.ReplyKiosk) messages.LoadReply {
	return messages.LoadReply{
		TxnID:      s.ID,
		Terminal:   start.Terminal,
		KioskTrace: start.KioskTrace,
		Result:     string(r.Result),
		Code:       r.Code,
		Ref:        r.Ref,
		MAC2:       unhex4(r.MAC2),
		HostTime:   r.HostTime,
		RRN:        s.RRN,
		AuthCode:   s.AuthCode,
	}
}

// failedReply is the shell's own answer when the load cannot go on (no core state).
func failedReply(m messages.StartLoad, code string) messages.LoadReply {
	return messages.LoadReply{TxnID: m.TxnID, Terminal: m.Terminal, KioskTrace: m.KioskTrace,
		Result: string(txn.KioskFailed), Code: code}
}

// hex4 and unhex4 carry 4-byte MACs between the messages ([4]byte) and the core (hex).
func hex4(b [4]byte) string { return hexUpper(b[:]) }

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func unhex4(s string) [4]byte {
	var out [4]byte
	b, err := hex.DecodeString(s)
	if err == nil && len(b) == 4 {
		copy(out[:], b)
	}
	return out
}

// maskPAN keeps the first 6 and last 4 digits, for logs and the core's state.
func maskPAN(pan string) string {
	if len(pan) <= 10 {
		return strings.Repeat("*", len(pan))
	}
	return pan[:6] + strings.Repeat("*", len(pan)-10) + pan[len(pan)-4:]
}
