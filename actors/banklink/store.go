package banklink

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quancun/quancun/actors/reversal"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/persistence"
)

// original is what a 0400 must repeat of the 0200 it reverses (bank.md section 3: every
// value is the original's). It is stored next to the queue when the reversal is enqueued.
//
// The PAN is stored here in clear, at rest in the FEP's Badger store, because the 0400
// carries it in F2. Hardening follow-up: encrypt it under a data key of the security
// module (or keep only a token). Tracks, PIN blocks and ICC data are never stored.
type original struct {
	TxnID     string `json:"txn"`
	PAN       string `json:"pan"`
	Amount    int64  `json:"amount"` // fen
	STAN      string `json:"stan"`
	Expiry    string `json:"expiry,omitempty"`
	EntryMode string `json:"entry_mode"`
	CardSeq   string `json:"card_seq,omitempty"`
	Terminal  string `json:"terminal"`
	Merchant  string `json:"merchant"`
	Batch     uint32 `json:"batch"`
	RRN       string `json:"rrn,omitempty"`  // when the 0210 was received
	AuthCode  string `json:"auth,omitempty"` // when the 0210 had one
}

// debit rebuilds the 0200 fields a reversal repeats.
func (o original) debit() (*bank.Debit, error) {
	stan, err := parseSTAN(o.STAN)
	if err != nil {
		return nil, err
	}
	return &bank.Debit{PAN: o.PAN, ProcCode: "000000", Amount: o.Amount, STAN: stan,
		Expiry: o.Expiry, EntryMode: o.EntryMode, CardSeq: o.CardSeq, Condition: "00",
		Terminal: bank.Terminal{ID: o.Terminal, Merchant: o.Merchant}, Currency: "156",
		F60: bank.F60{Type: "22", Batch: o.Batch, Code: "000"}}, nil
}

// Store layout of one link (docs/bank-link.md):
//
//	banklink/<code>/queue             the reversal.Queue, JSON, rewritten whole
//	banklink/<code>/orig/<date>/<stan> the original of each queued or manual entry
func queueKey(code string) []byte { return persistence.Key("banklink", code, "queue") }
func origPrefix(code string) []byte {
	return persistence.Key("banklink", code, "orig")
}
func origKey(code string, k reversal.Key) []byte {
	return persistence.Key("banklink", code, "orig", k.Date, k.STAN)
}

// loadQueue reads the link's queue and originals; an empty store gives a new queue.
func loadQueue(s *persistence.Store, code string, knobs reversal.Knobs) (reversal.Queue, map[reversal.Key]original, error) {
	q := reversal.New(code, knobs)
	v, err := s.Get(queueKey(code))
	switch {
	case errors.Is(err, persistence.ErrNotFound):
	case err != nil:
		return q, nil, fmt.Errorf("banklink %s: load queue: %w", code, err)
	default:
		if err := json.Unmarshal(v, &q); err != nil {
			return q, nil, fmt.Errorf("banklink %s: decode queue: %w", code, err)
		}
		q.Bank, q.Knobs = code, reversal.New(code, knobs).Knobs // the configuration of now
	}
	origs := map[reversal.Key]original{}
	err = s.Scan(origPrefix(code), func(key, value []byte) error {
		var o original
		if err := json.Unmarshal(value, &o); err != nil {
			return fmt.Errorf("decode %q: %w", key, err)
		}
		parts, err := persistence.SplitKey(key)
		if err != nil || len(parts) != 5 {
			return fmt.Errorf("key %q: %w", key, persistence.ErrBadKey)
		}
		origs[reversal.Key{Date: parts[3], STAN: parts[4]}] = o
		return nil
	})
	if err != nil {
		return q, nil, fmt.Errorf("banklink %s: load originals: %w", code, err)
	}
	return q, origs, nil
}

// queueOp is the op that rewrites the queue.
func queueOp(q reversal.Queue) (persistence.Op, []byte, error) {
	b, err := json.Marshal(q)
	if err != nil {
		return persistence.Op{}, nil, fmt.Errorf("banklink %s: encode queue: %w", q.Bank, err)
	}
	return persistence.Op{Key: queueKey(q.Bank), Value: b}, b, nil
}

func origOp(code string, k reversal.Key, o original) (persistence.Op, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return persistence.Op{}, fmt.Errorf("banklink %s: encode original %s: %w", code, k, err)
	}
	return persistence.Op{Key: origKey(code, k), Value: b}, nil
}
