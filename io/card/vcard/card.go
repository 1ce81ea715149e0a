package vcard

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/quancun/quancun/io/apdu"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/crypt"
)

// CardATR is the virtual card's ATR: the PC/SC form of a contactless ISO 14443-4 card
// (3B 8n 80 01, T=1) with historical bytes "QCEPURSE" and the check byte.
func CardATR() []byte {
	return []byte{0x3B, 0x88, 0x80, 0x01, 'Q', 'C', 'E', 'P', 'U', 'R', 'S', 'E', 0x1F}
}

// Option configures a virtual card or PSAM.
type Option func(*options)

type options struct {
	rnd io.Reader
	log *slog.Logger
}

// WithRandom sets where the card's INIT FOR LOAD random comes from (crypto/rand by default);
// tests pass a fixed stream to reproduce spec vectors.
func WithRandom(r io.Reader) Option { return func(o *options) { o.rnd = r } }

// WithLogger sets the logger (slog.Default by default). Commands are logged at debug level
// by INS and SW only: never keys, MACs or PINs.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) options {
	o := options{rnd: rand.Reader, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

type selection int

const (
	selMF selection = iota
	selADF
)

// loadContext is what INIT FOR LOAD leaves for CREDIT FOR LOAD; it lives in RAM only.
type loadContext struct {
	amount     uint32
	oldBalance uint32
	termID     []byte
	serial     uint16
	seslk      []byte
}

// Card is a virtual MOHURD e-purse. It implements card.Processor and card.Powered and is
// safe for concurrent use (commands are serialised, as on a real card).
type Card struct {
	mu      sync.Mutex
	st      CardState // committed persistent state
	path    string    // card file; "" keeps the state in memory only
	o       options
	powered bool
	sel     selection
	lctx    *loadContext
	pinOK   bool
}

// NewCard returns a powered card (as if just put on a reader) holding state in memory.
func NewCard(state CardState, opts ...Option) (*Card, error) {
	if err := state.Validate(); err != nil {
		return nil, err
	}
	return &Card{st: state.clone(), o: buildOptions(opts), powered: true}, nil
}

// LoadCard reads a card file and returns a powered card that writes every change of its
// persistent state back to that file before it answers the command that made it.
func LoadCard(path string, opts ...Option) (*Card, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load card: %w", err)
	}
	s, err := ParseCardFile(b)
	if err != nil {
		return nil, fmt.Errorf("load card %s: %w", path, err)
	}
	c, err := NewCard(s, opts...)
	if err != nil {
		return nil, err
	}
	c.path = path
	return c, nil
}

// ATR returns the card's answer to reset.
func (c *Card) ATR() []byte { return CardATR() }

// PowerOn powers the card (a reset if it was on): volatile state is gone, MF is selected.
func (c *Card) PowerOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
	c.powered = true
}

// PowerOff removes power: the load context and PIN verification are lost.
func (c *Card) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
	c.powered = false
}

func (c *Card) resetLocked() {
	c.lctx, c.pinOK, c.sel = nil, false, selMF
}

// State returns a copy of the persistent state (for money checks and tests).
func (c *Card) State() CardState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.clone()
}

// commit makes next the card's state: on disk first (when the card has a file), then in
// memory. If the write fails nothing changes, as with a failed EEPROM transaction.
func (c *Card) commit(next CardState) error {
	if c.path != "" {
		if err := writeJSONAtomic(c.path, next); err != nil {
			return err
		}
	}
	c.st = next
	return nil
}

func sw(s uint16) apdu.Response { return apdu.Response{SW: s} }

func ok(data []byte) apdu.Response { return apdu.Response{Data: data, SW: apdu.SW9000} }

// Process executes one command APDU. An unpowered card answers 6F00.
func (c *Card) Process(raw []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.powered {
		return sw(apdu.SW6F00).Bytes()
	}
	// Any command consumes the load context; only INIT creates one and only CREDIT uses it.
	lctx := c.lctx
	c.lctx = nil
	cmd, err := apdu.ParseCommand(raw)
	var resp apdu.Response
	if err != nil {
		resp = sw(apdu.SW6700)
	} else {
		resp = c.dispatch(cmd, lctx)
	}
	c.o.log.Debug("vcard command", "cla", cmd.CLA, "ins", cmd.INS, "sw", fmt.Sprintf("%04X", resp.SW))
	return resp.Bytes()
}

func (c *Card) dispatch(cmd apdu.Command, lctx *loadContext) apdu.Response {
	switch {
	case cmd.CLA == 0x00 && cmd.INS == 0xA4:
		return c.selectFile(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0xB0:
		return c.readBinary(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0xB2:
		return c.readRecord(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0x20:
		return c.verify(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0x5C:
		return c.getBalance(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0x50:
		return c.initForLoad(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0x52:
		return c.creditForLoad(cmd, lctx)
	case cmd.CLA == 0x80 && cmd.INS == 0x5A:
		return c.getTransactionProve(cmd)
	case cmd.CLA != 0x00 && cmd.CLA != 0x80:
		return sw(apdu.SW6E00)
	default:
		return sw(apdu.SW6D00)
	}
}

const pseName = "1PAY.SYS.DDF01"

func (c *Card) selectFile(cmd apdu.Command) apdu.Response {
	c.pinOK = false
	switch {
	case cmd.P1 == 0x04 && bytes.Equal(cmd.Data, c.st.AID),
		cmd.P1 == 0x00 && bytes.Equal(cmd.Data, []byte{0x10, 0x01}):
		c.sel = selADF
		return ok(c.fci())
	case cmd.P1 == 0x04 && string(cmd.Data) == pseName,
		cmd.P1 == 0x00 && (bytes.Equal(cmd.Data, []byte{0x3F, 0x00}) || len(cmd.Data) == 0):
		c.sel = selMF
		name := []byte(pseName)
		return ok(append([]byte{0x6F, byte(len(name) + 4), 0x84, byte(len(name))}, append(name, 0xA5, 0x00)...))
	case cmd.P1 != 0x00 && cmd.P1 != 0x04:
		return sw(apdu.SW6A86)
	default:
		return sw(apdu.SW6A82)
	}
}

// fci is 6F { 84 AID, A5 { 9F08 version, 9F0C copy of 0015 } } (spec 1.1 and 9.2).
func (c *Card) fci() []byte {
	a5 := []byte{0x9F, 0x08, 0x01, byte(c.st.AppVersion), 0x9F, 0x0C, byte(len(c.st.EF15))}
	a5 = append(a5, c.st.EF15...)
	in := append([]byte{0x84, byte(len(c.st.AID))}, c.st.AID...)
	in = append(in, 0xA5, byte(len(a5)))
	in = append(in, a5...)
	return append([]byte{0x6F, byte(len(in))}, in...)
}

func (c *Card) readBinary(cmd apdu.Command) apdu.Response {
	if cmd.P1&0x80 == 0 || cmd.P1&0x7F != 0x15 || c.sel != selADF {
		return sw(apdu.SW6A82) // only 0015 by SFI, inside the EP application
	}
	return readFile(c.st.EF15, cmd)
}

// readFile answers READ BINARY at offset P2: Le 00 means "the rest"; a longer Le than there
// is returns what there is with 6282.
func readFile(file []byte, cmd apdu.Command) apdu.Response {
	off := int(cmd.P2)
	if off > len(file) {
		return sw(apdu.SW6B00)
	}
	rest := file[off:]
	switch {
	case cmd.Le < 0 || cmd.Le == 256:
		return ok(bytes.Clone(rest))
	case cmd.Le > len(rest):
		return apdu.Response{Data: bytes.Clone(rest), SW: apdu.SW6282}
	default:
		return ok(bytes.Clone(rest[:cmd.Le]))
	}
}

func (c *Card) readRecord(cmd apdu.Command) apdu.Response {
	switch {
	case c.sel != selADF || cmd.P2>>3 != 0x18:
		return sw(apdu.SW6A82)
	case cmd.P2&0x07 != 0x04 || cmd.P1 == 0:
		return sw(apdu.SW6A86)
	case int(cmd.P1) > len(c.st.Log):
		return sw(apdu.SW6A83)
	case cmd.Le >= 0 && cmd.Le != 256 && cmd.Le != card.LogRecordLen:
		return sw(apdu.SW6C00 | card.LogRecordLen)
	}
	return ok(c.st.Log[cmd.P1-1].record().Bytes())
}

func (c *Card) verify(cmd apdu.Command) apdu.Response {
	switch {
	case cmd.P1 != 0 || cmd.P2 != 0:
		return sw(apdu.SW6A86)
	case len(cmd.Data) == 0 || len(cmd.Data) > 6:
		return sw(apdu.SW6700)
	case c.st.PIN == "":
		c.pinOK = true // no PIN configured: any VERIFY passes
		return sw(apdu.SW9000)
	case c.st.PINTriesLeft == 0:
		return sw(apdu.SW6983)
	}
	next := c.st.clone()
	if crypt.Equal([]byte(unpackPIN(cmd.Data)), []byte(c.st.PIN)) {
		next.PINTriesLeft = MaxPINTries
		if next.PINTriesLeft != c.st.PINTriesLeft {
			if err := c.commit(next); err != nil {
				return c.writeFailed(err)
			}
		}
		c.pinOK = true
		return sw(apdu.SW9000)
	}
	next.PINTriesLeft--
	if err := c.commit(next); err != nil {
		return c.writeFailed(err)
	}
	if next.PINTriesLeft == 0 {
		return sw(apdu.SW6983)
	}
	return sw(apdu.SW63C0 | uint16(next.PINTriesLeft))
}

// unpackPIN turns F-padded packed BCD back into digits; a non-digit nibble before the
// padding makes a string that matches no PIN.
func unpackPIN(b []byte) string {
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		for _, n := range []byte{x >> 4, x & 0x0F} {
			if n == 0x0F {
				return string(out)
			}
			if n > 9 {
				return "?"
			}
			out = append(out, '0'+n)
		}
	}
	return string(out)
}

func (c *Card) getBalance(cmd apdu.Command) apdu.Response {
	switch {
	case c.sel != selADF:
		return sw(apdu.SW6985)
	case cmd.P1 != 0 || cmd.P2 != card.TxnTypeEPLoad: // only the EP; no ED on this card
		return sw(apdu.SW6A86)
	case len(cmd.Data) != 0:
		return sw(apdu.SW6700)
	}
	return ok(binary.BigEndian.AppendUint32(nil, c.st.Balance))
}

func (c *Card) initForLoad(cmd apdu.Command) apdu.Response {
	switch {
	case c.sel != selADF:
		return sw(apdu.SW6985)
	case cmd.P1 != 0 || cmd.P2 != card.TxnTypeEPLoad:
		return sw(apdu.SW6A86)
	case len(cmd.Data) != 11:
		return sw(apdu.SW6700)
	case c.st.Locked:
		return sw(apdu.SW9303)
	case c.st.PIN != "" && !c.pinOK:
		return sw(apdu.SW6982)
	}
	var key *LoadKey
	for i := range c.st.LoadKeys {
		if byte(c.st.LoadKeys[i].Index) == cmd.Data[0] {
			key = &c.st.LoadKeys[i]
		}
	}
	if key == nil {
		return sw(apdu.SW9403)
	}
	if c.st.OnlineSerial == 0xFFFF {
		return sw(apdu.SW9402)
	}
	rnd := make([]byte, 4)
	if _, err := io.ReadFull(c.o.rnd, rnd); err != nil {
		c.o.log.Error("vcard random source failed", "err", err)
		return sw(apdu.SW6F00)
	}
	serial := binary.BigEndian.AppendUint16(nil, c.st.OnlineSerial)
	seslk, err := crypt.LoadSessionKey(key.Key, rnd, serial)
	if err != nil {
		return sw(apdu.SW6F00)
	}
	amount := cmd.Data[1:5]
	term := cmd.Data[5:11]
	oldBal := binary.BigEndian.AppendUint32(nil, c.st.Balance)
	mac1, err := crypt.PBOCMAC(seslk, concat(oldBal, amount, []byte{card.TxnTypeEPLoad}, term))
	if err != nil {
		return sw(apdu.SW6F00)
	}
	c.lctx = &loadContext{
		amount:     binary.BigEndian.Uint32(amount),
		oldBalance: c.st.Balance,
		termID:     bytes.Clone(term),
		serial:     c.st.OnlineSerial,
		seslk:      seslk,
	}
	return ok(concat(oldBal, serial, []byte{byte(key.Version), byte(key.Algorithm)}, rnd, mac1))
}

func (c *Card) creditForLoad(cmd apdu.Command, lctx *loadContext) apdu.Response {
	switch {
	case c.sel != selADF:
		return sw(apdu.SW6985)
	case cmd.P1 != 0 || cmd.P2 != 0:
		return sw(apdu.SW6A86)
	case len(cmd.Data) != 11:
		return sw(apdu.SW6700)
	case c.st.Locked:
		return sw(apdu.SW9303)
	case lctx == nil:
		return sw(apdu.SW6985)
	}
	dateTime, mac2 := cmd.Data[:7], cmd.Data[7:11]
	amount := binary.BigEndian.AppendUint32(nil, lctx.amount)
	want, err := crypt.PBOCMAC(lctx.seslk, concat(amount, []byte{card.TxnTypeEPLoad}, lctx.termID, dateTime))
	if err != nil {
		return sw(apdu.SW6F00)
	}
	if !crypt.Equal(want, mac2) {
		next := c.st.clone()
		next.MACFailures++
		next.Locked = next.MACFailures >= next.MaxMACFailures
		if err := c.commit(next); err != nil {
			return c.writeFailed(err)
		}
		if next.Locked {
			c.o.log.Warn("vcard locked after repeated MAC2 failures", "failures", next.MACFailures)
		}
		return sw(apdu.SW9302)
	}
	newBal := uint64(c.st.Balance) + uint64(lctx.amount)
	if newBal > uint64(c.st.MaxBalance) {
		return sw(apdu.SW6A80)
	}
	serial := binary.BigEndian.AppendUint16(nil, lctx.serial)
	tac, err := crypt.PBOCMAC(c.tacKey(), concat(binary.BigEndian.AppendUint32(nil, uint32(newBal)), serial, amount,
		[]byte{card.TxnTypeEPLoad}, lctx.termID, dateTime))
	if err != nil {
		return sw(apdu.SW6F00)
	}
	next := c.st.clone()
	next.Balance = uint32(newBal)
	entry := LogEntry{Serial: lctx.serial, Amount: lctx.amount, Type: HexByte(card.TxnTypeEPLoad),
		TermID: bytes.Clone(lctx.termID), DateTime: bytes.Clone(dateTime)}
	next.Log = append([]LogEntry{entry}, next.Log...)
	if len(next.Log) > MaxLogRecords {
		next.Log = next.Log[:MaxLogRecords]
	}
	next.OnlineSerial = lctx.serial + 1
	next.LastLoad = &ProvedLoad{Serial: lctx.serial, MAC2: bytes.Clone(mac2), TAC: tac}
	next.MACFailures = 0
	if err := c.commit(next); err != nil {
		return c.writeFailed(err)
	}
	return ok(tac)
}

func (c *Card) tacKey() []byte {
	k, _ := crypt.TACKey(c.st.TACKey) // length checked by Validate
	return k
}

func (c *Card) getTransactionProve(cmd apdu.Command) apdu.Response {
	switch {
	case c.sel != selADF:
		return sw(apdu.SW6985)
	case cmd.P1 != 0:
		return sw(apdu.SW6A86)
	case len(cmd.Data) != 2:
		return sw(apdu.SW6700)
	}
	l := c.st.LastLoad
	// Spec 2.6: the terminal sends the card's current serial, the proved one + 1.
	if cmd.P2 != card.TxnTypeEPLoad || l == nil || binary.BigEndian.Uint16(cmd.Data) != l.Serial+1 {
		return sw(apdu.SW6985)
	}
	return ok(concat(l.MAC2, l.TAC))
}

// writeFailed is the answer when the card file cannot be written: 6581, nothing applied.
func (c *Card) writeFailed(err error) apdu.Response {
	c.o.log.Error("vcard state write failed; command not applied", "err", err)
	return sw(apdu.SW6581)
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
