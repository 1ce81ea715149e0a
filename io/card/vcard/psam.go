package vcard

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/quancun/quancun/io/apdu"
	"github.com/quancun/quancun/io/crypt"
)

// PSAMATR is the virtual PSAM's ATR: a contact T=0 card (3B 68 00 00, TB1 TC1) with
// historical bytes "QCPSAM01". Real PSAMs are T=0 contact cards too.
func PSAMATR() []byte {
	return []byte{0x3B, 0x68, 0x00, 0x00, 'Q', 'C', 'P', 'S', 'A', 'M', '0', '1'}
}

// maxChain bounds the data one 80FA chain may carry, so a runaway terminal cannot grow the
// PSAM's buffer without limit.
const maxChain = 4096

// PSAMState is the virtual PSAM's file: its files and master keys. A PSAM changes nothing
// persistent during the load, so it is never written back.
type PSAMState struct {
	TerminalID Hex       `json:"terminal_id"` // file 0016
	EF15       Hex       `json:"ef15"`        // file 0015: PSAM serial 10 | version 1 | key type 1 | RFU 2
	Keys       []PSAMKey `json:"keys"`
}

// PSAMKey is a master key addressed by 801A's P1 (usage) and P2 (index).
type PSAMKey struct {
	Usage HexByte `json:"usage"`
	Index HexByte `json:"index"`
	Key   Hex     `json:"key"`
}

// Validate checks the PSAM file.
func (s *PSAMState) Validate() error {
	if len(s.TerminalID) != 6 {
		return fmt.Errorf("%w: terminal_id is %d bytes, want 6", ErrBadFile, len(s.TerminalID))
	}
	if len(s.EF15) != 14 {
		return fmt.Errorf("%w: ef15 is %d bytes, want 14", ErrBadFile, len(s.EF15))
	}
	seen := map[[2]HexByte]bool{}
	for _, k := range s.Keys {
		id := [2]HexByte{k.Usage, k.Index}
		if seen[id] {
			return fmt.Errorf("%w: key %02X/%02X twice", ErrBadFile, byte(k.Usage), byte(k.Index))
		}
		seen[id] = true
		if len(k.Key) != 16 {
			return fmt.Errorf("%w: key %02X/%02X is %d bytes, want 16", ErrBadFile, byte(k.Usage), byte(k.Index), len(k.Key))
		}
	}
	return nil
}

// ParsePSAMFile decodes and validates a PSAM file (unknown fields are errors).
func ParsePSAMFile(b []byte) (PSAMState, error) {
	var s PSAMState
	if err := decodeStrict(b, &s); err != nil {
		return PSAMState{}, err
	}
	return s, s.Validate()
}

// SavePSAMFile writes s to path atomically.
func SavePSAMFile(path string, s PSAMState) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return writeJSONAtomic(path, s)
}

// PSAM is a virtual PSAM: files 0015/0016 and the general-DES commands 801A/80FA. It
// implements card.Processor and card.Powered and is safe for concurrent use.
type PSAM struct {
	mu      sync.Mutex
	st      PSAMState
	o       options
	powered bool
	tmpKey  []byte // from 801A; RAM only
	chain   []byte // 80FA data so far, IV first
	inChain bool
}

// NewPSAM returns a powered PSAM.
func NewPSAM(state PSAMState, opts ...Option) (*PSAM, error) {
	if err := state.Validate(); err != nil {
		return nil, err
	}
	st := PSAMState{TerminalID: bytes.Clone(state.TerminalID), EF15: bytes.Clone(state.EF15)}
	for _, k := range state.Keys {
		k.Key = bytes.Clone(k.Key)
		st.Keys = append(st.Keys, k)
	}
	return &PSAM{st: st, o: buildOptions(opts), powered: true}, nil
}

// LoadPSAM reads a PSAM file and returns a powered PSAM.
func LoadPSAM(path string, opts ...Option) (*PSAM, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load psam: %w", err)
	}
	s, err := ParsePSAMFile(b)
	if err != nil {
		return nil, fmt.Errorf("load psam %s: %w", path, err)
	}
	return NewPSAM(s, opts...)
}

// ATR returns the PSAM's answer to reset.
func (p *PSAM) ATR() []byte { return PSAMATR() }

// PowerOn powers (or resets) the PSAM: the temporary key and any MAC chain are gone.
func (p *PSAM) PowerOn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tmpKey, p.chain, p.inChain, p.powered = nil, nil, false, true
}

// PowerOff removes power.
func (p *PSAM) PowerOff() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tmpKey, p.chain, p.inChain, p.powered = nil, nil, false, false
}

// Process executes one command APDU. An unpowered PSAM answers 6F00.
func (p *PSAM) Process(raw []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.powered {
		return sw(apdu.SW6F00).Bytes()
	}
	cmd, err := apdu.ParseCommand(raw)
	var resp apdu.Response
	switch {
	case err != nil:
		resp = sw(apdu.SW6700)
	case cmd.CLA == 0x00 && cmd.INS == 0xA4:
		resp = p.selectFile(cmd)
	case cmd.CLA == 0x00 && cmd.INS == 0xB0:
		resp = p.readBinary(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0x1A:
		resp = p.initDES(cmd)
	case cmd.CLA == 0x80 && cmd.INS == 0xFA:
		resp = p.des(cmd)
	case cmd.CLA != 0x00 && cmd.CLA != 0x80:
		resp = sw(apdu.SW6E00)
	default:
		resp = sw(apdu.SW6D00)
	}
	if cmd.INS != 0xFA || resp.SW != apdu.SW9000 {
		p.chainReset() // a MAC chain must be contiguous
	}
	p.o.log.Debug("vpsam command", "cla", cmd.CLA, "ins", cmd.INS, "sw", fmt.Sprintf("%04X", resp.SW))
	return resp.Bytes()
}

func (p *PSAM) chainReset() { p.chain, p.inChain = nil, false }

// selectFile accepts MF and any 2-byte FID: the keys are usable from every DF, so a kiosk's
// SELECT of its issuer's application DF simply succeeds.
func (p *PSAM) selectFile(cmd apdu.Command) apdu.Response {
	if cmd.P1 != 0x00 || len(cmd.Data) != 2 {
		return sw(apdu.SW6A82)
	}
	return sw(apdu.SW9000)
}

func (p *PSAM) readBinary(cmd apdu.Command) apdu.Response {
	switch cmd.P1 {
	case 0x80 | 0x15:
		return readFile(p.st.EF15, cmd)
	case 0x80 | 0x16:
		return readFile(p.st.TerminalID, cmd)
	default:
		return sw(apdu.SW6A82)
	}
}

// initDES derives the temporary key: factors F1..Fn in the command, applied last first
// (spec 6): K = Div(..Div(MK, Fn).., F1). No factor leaves the master key itself.
func (p *PSAM) initDES(cmd apdu.Command) apdu.Response {
	if len(cmd.Data)%8 != 0 || len(cmd.Data) > 24 {
		return sw(apdu.SW6700)
	}
	var mk []byte
	for _, k := range p.st.Keys {
		if byte(k.Usage) == cmd.P1 && byte(k.Index) == cmd.P2 {
			mk = k.Key
		}
	}
	if mk == nil {
		p.tmpKey = nil
		return sw(apdu.SW6A88)
	}
	var factors [][]byte
	for i := len(cmd.Data) - 8; i >= 0; i -= 8 {
		factors = append(factors, cmd.Data[i:i+8])
	}
	k, err := crypt.DiversifyPath(mk, factors...)
	if err != nil {
		return sw(apdu.SW6F00)
	}
	p.tmpKey = bytes.Clone(k)
	return sw(apdu.SW9000)
}

// des runs 80FA. P1 bits: 01 MAC (else encrypt), 02 more blocks follow, 04 data starts with
// an 8-byte IV. A MAC chain with no IV starts from zeros.
func (p *PSAM) des(cmd apdu.Command) apdu.Response {
	switch {
	case cmd.P2 != 0 || cmd.P1&^0x07 != 0:
		return sw(apdu.SW6A86)
	case len(cmd.Data) == 0 || len(cmd.Data)%8 != 0:
		return sw(apdu.SW6700)
	case p.tmpKey == nil:
		return sw(apdu.SW6985)
	}
	if cmd.P1&0x01 == 0 { // encrypt: single-shot ECB only
		if cmd.P1 != 0 {
			return sw(apdu.SW6A86)
		}
		out, err := crypt.EncryptECB(p.tmpKey, cmd.Data)
		if err != nil {
			return sw(apdu.SW6F00)
		}
		return ok(out)
	}
	if cmd.P1&0x04 != 0 || !p.inChain {
		p.chain, p.inChain = make([]byte, 8), true
		if cmd.P1&0x04 != 0 {
			copy(p.chain, cmd.Data[:8])
			cmd.Data = cmd.Data[8:]
		}
	}
	if len(p.chain)+len(cmd.Data) > maxChain {
		return sw(apdu.SW6700)
	}
	p.chain = append(p.chain, cmd.Data...)
	if cmd.P1&0x02 != 0 {
		return sw(apdu.SW9000)
	}
	iv, data := p.chain[:8], p.chain[8:]
	p.chainReset()
	if len(data) == 0 {
		return sw(apdu.SW6700)
	}
	mac, err := crypt.PBOC3DESMACPadded(p.tmpKey, iv, data)
	if err != nil {
		return sw(apdu.SW6F00)
	}
	return ok(mac)
}
