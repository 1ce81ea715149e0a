// Package vcard is a virtual PBOC e-purse card and a virtual PSAM, for the simulated kiosks,
// the tests and the bench. They behave as spec/card-and-host.md says a card does, including
// the parts that matter for money: a credit is atomic and is on disk before its answer
// leaves, so a card pulled after the commit still has the credit after a restart. They are
// never used against real money: a real card's keys never leave its chip, these keep theirs
// in a JSON file (docs/card-file.md).
package vcard

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/crypt"
)

// ErrBadFile reports a card or PSAM file that does not parse or fails validation.
var ErrBadFile = errors.New("vcard: bad file")

// Hex is bytes written as upper-case hex in the JSON files, the way they appear in APDU
// traces.
type Hex []byte

// MarshalText writes upper-case hex.
func (h Hex) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(h))), nil
}

// UnmarshalText reads hex of either case.
func (h *Hex) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("hex %q: %w", b, err)
	}
	*h = d
	return nil
}

// HexByte is one byte written as two hex digits ("01", "27"), as in APDUs.
type HexByte byte

// MarshalText writes two upper-case hex digits.
func (h HexByte) MarshalText() ([]byte, error) {
	return []byte(fmt.Sprintf("%02X", byte(h))), nil
}

// UnmarshalText reads exactly two hex digits.
func (h *HexByte) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	if err != nil || len(d) != 1 {
		return fmt.Errorf("want one hex byte, got %q", b)
	}
	*h = HexByte(d[0])
	return nil
}

// MaxLogRecords is the size of the cyclic 0018 file.
const MaxLogRecords = 10

// MaxPINTries is the PIN try counter after a correct PIN.
const MaxPINTries = 3

// DefaultMaxMACFailures is how many wrong MAC2s lock the application unless the file says
// otherwise (spec 2.5 leaves the number to the COS).
const DefaultMaxMACFailures = 3

// CardState is everything a virtual card keeps across power cycles; it is also the JSON card
// file. Volatile state (load context, selected file, PIN verified) is not in it.
type CardState struct {
	AID            Hex         `json:"aid"`
	AppVersion     HexByte     `json:"app_version"` // FCI tag 9F08
	EF15           Hex         `json:"ef15"`
	Balance        uint32      `json:"balance"`
	MaxBalance     uint32      `json:"max_balance"`
	OnlineSerial   uint16      `json:"online_serial"`
	LoadKeys       []LoadKey   `json:"load_keys"`
	TACKey         Hex         `json:"tac_key"`
	PIN            string      `json:"pin,omitempty"` // empty: no PIN needed for load
	PINTriesLeft   int         `json:"pin_tries_left"`
	Log            []LogEntry  `json:"log"` // 0018, newest first
	LastLoad       *ProvedLoad `json:"last_load,omitempty"`
	MACFailures    int         `json:"mac_failures"`
	MaxMACFailures int         `json:"max_mac_failures"`
	Locked         bool        `json:"locked"`
}

// LoadKey is one DLK slot: the key already diversified for this card.
type LoadKey struct {
	Index     HexByte `json:"index"`
	Version   HexByte `json:"version"`
	Algorithm HexByte `json:"algorithm"` // 00 = 3DES, the only one supported
	Key       Hex     `json:"key"`
}

// LogEntry is one 0018 record.
type LogEntry struct {
	Serial    uint16  `json:"serial"`
	Overdraft uint32  `json:"overdraft"`
	Amount    uint32  `json:"amount"`
	Type      HexByte `json:"type"`
	TermID    Hex     `json:"term_id"`
	DateTime  Hex     `json:"date_time"`
}

// ProvedLoad is what GET TRANSACTION PROVE returns for the last credit.
type ProvedLoad struct {
	Serial uint16 `json:"serial"` // the serial the credit consumed
	MAC2   Hex    `json:"mac2"`
	TAC    Hex    `json:"tac"`
}

func (e LogEntry) record() card.LogRecord {
	r := card.LogRecord{Serial: e.Serial, Overdraft: e.Overdraft, Amount: e.Amount, Type: byte(e.Type)}
	copy(r.TermID[:], e.TermID)
	copy(r.DateTime[:], e.DateTime)
	return r
}

// NewCardState builds a MOHURD card for simulators from master keys: DLK (index 01, version
// 01, 3DES) = Div(mdlk, serial) and DTK = Div(mtk, serial), serial = ef15[12:20].
func NewCardState(mdlk, mtk, ef15 []byte, balance, maxBalance uint32, serial uint16) (CardState, error) {
	if len(ef15) != card.EF15Len {
		return CardState{}, fmt.Errorf("%w: ef15 is %d bytes, want %d", ErrBadFile, len(ef15), card.EF15Len)
	}
	dlk, err := crypt.Diversify(mdlk, ef15[12:20])
	if err != nil {
		return CardState{}, fmt.Errorf("diversify load key: %w", err)
	}
	dtk, err := crypt.Diversify(mtk, ef15[12:20])
	if err != nil {
		return CardState{}, fmt.Errorf("diversify TAC key: %w", err)
	}
	s := defaultCardState()
	s.AID = card.AIDMOHURD()
	s.EF15 = append(Hex(nil), ef15...)
	s.Balance, s.MaxBalance, s.OnlineSerial = balance, maxBalance, serial
	s.LoadKeys = []LoadKey{{Index: 1, Version: 1, Algorithm: 0, Key: dlk}}
	s.TACKey = dtk
	return s, s.Validate()
}

func defaultCardState() CardState {
	return CardState{AppVersion: 2, PINTriesLeft: MaxPINTries, MaxMACFailures: DefaultMaxMACFailures, Log: []LogEntry{}}
}

// Validate checks what the card relies on, so a bad file fails at load, not mid-load.
func (s *CardState) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadFile, fmt.Sprintf(format, a...))
	}
	switch {
	case len(s.AID) < 5 || len(s.AID) > 16:
		return bad("aid is %d bytes, want 5..16", len(s.AID))
	case len(s.EF15) != card.EF15Len:
		return bad("ef15 is %d bytes, want %d", len(s.EF15), card.EF15Len)
	case s.MaxBalance == 0:
		return bad("max_balance missing")
	case s.Balance > s.MaxBalance:
		return bad("balance %d over max_balance %d", s.Balance, s.MaxBalance)
	case len(s.LoadKeys) == 0:
		return bad("no load_keys")
	case len(s.TACKey) != 16:
		return bad("tac_key is %d bytes, want 16", len(s.TACKey))
	case len(s.Log) > MaxLogRecords:
		return bad("%d log records, at most %d", len(s.Log), MaxLogRecords)
	case s.MaxMACFailures < 1 || s.MACFailures < 0 || s.MACFailures > s.MaxMACFailures:
		return bad("mac_failures %d / max_mac_failures %d", s.MACFailures, s.MaxMACFailures)
	case s.PINTriesLeft < 0 || s.PINTriesLeft > MaxPINTries:
		return bad("pin_tries_left %d", s.PINTriesLeft)
	}
	if s.PIN != "" {
		if len(s.PIN) < 2 || len(s.PIN) > 12 || strings.Trim(s.PIN, "0123456789") != "" {
			return bad("pin must be 2..12 digits")
		}
	}
	seen := map[HexByte]bool{}
	for _, k := range s.LoadKeys {
		if seen[k.Index] {
			return bad("load key index %02X twice", byte(k.Index))
		}
		seen[k.Index] = true
		if len(k.Key) != 16 || k.Algorithm != 0 {
			return bad("load key %02X: want a 16-byte 3DES key (algorithm 00)", byte(k.Index))
		}
	}
	for i, e := range s.Log {
		if len(e.TermID) != 6 || len(e.DateTime) != 7 || e.Overdraft > 0xFFFFFF {
			return bad("log record %d: term_id 6 bytes, date_time 7 bytes, overdraft 3 bytes", i+1)
		}
	}
	if l := s.LastLoad; l != nil && (len(l.MAC2) != 4 || len(l.TAC) != 4) {
		return bad("last_load: mac2 and tac are 4 bytes")
	}
	return nil
}

// clone copies s so that no slice is shared; the card hands out and commits copies only.
func (s CardState) clone() CardState {
	c := s
	c.AID = bytes.Clone(s.AID)
	c.EF15 = bytes.Clone(s.EF15)
	c.TACKey = bytes.Clone(s.TACKey)
	c.LoadKeys = make([]LoadKey, len(s.LoadKeys))
	for i, k := range s.LoadKeys {
		k.Key = bytes.Clone(k.Key)
		c.LoadKeys[i] = k
	}
	c.Log = make([]LogEntry, len(s.Log))
	for i, e := range s.Log {
		e.TermID, e.DateTime = bytes.Clone(e.TermID), bytes.Clone(e.DateTime)
		c.Log[i] = e
	}
	if s.LastLoad != nil {
		l := *s.LastLoad
		l.MAC2, l.TAC = bytes.Clone(l.MAC2), bytes.Clone(l.TAC)
		c.LastLoad = &l
	}
	return c
}

// ParseCardFile decodes and validates a card file. Unknown fields are errors, so a typo in a
// hand-written file does not silently fall back to a default.
func ParseCardFile(b []byte) (CardState, error) {
	s := defaultCardState()
	if err := decodeStrict(b, &s); err != nil {
		return CardState{}, err
	}
	if s.Log == nil {
		s.Log = []LogEntry{}
	}
	return s, s.Validate()
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrBadFile)
	}
	return nil
}

// SaveCardFile writes s to path atomically (temp file, fsync, rename).
func SaveCardFile(path string, s CardState) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return writeJSONAtomic(path, s)
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic replaces path so that a crash leaves either the old or the new content:
// write a temp file in the same directory, fsync it, rename it over path, fsync the
// directory. The file is created 0600: it holds keys.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
