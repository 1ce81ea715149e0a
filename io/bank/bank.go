// Package bank is the wire format of the FEP-to-bank link: ISO 8583 in the CUPS POS style of
// card-and-host.md 7 (TPDU, 6-byte header, BCD numerics, MAC in F64), as typed messages that
// pack to and unpack from the payload of one io/frame frame.
//
// A bank's differences (MTIs of reversals and echoes, MAC algorithm, sign-on key block,
// TPDU/header) are a Dialect value, not code. The package holds no keys and no sockets: MACs
// come from a MACer (the security module) and the link that sends the bytes lives elsewhere.
// It never logs; String and LogValue of every message mask the PAN 6+4 and omit PIN blocks,
// tracks and keys. The protocol as a bank would implement it is docs/protocols/bank.md.
package bank

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/quancun/quancun/io/crypt"
)

// Errors of this package; every returned error wraps one of them.
var (
	ErrShort           = errors.New("bank: message too short")
	ErrFormat          = errors.New("bank: bad field value")
	ErrMissing         = errors.New("bank: mandatory field missing")
	ErrUnknownField    = errors.New("bank: field not in the spec")
	ErrSecondaryBitmap = errors.New("bank: secondary bitmap not supported")
	ErrTrailing        = errors.New("bank: bytes after the last field")
	ErrMTI             = errors.New("bank: unexpected message type")
	ErrUnknownMessage  = errors.New("bank: unknown message")
	ErrNoMAC           = errors.New("bank: message has no MAC (F64)")
	ErrMAC             = errors.New("bank: MAC mismatch")
	ErrKCV             = errors.New("bank: key check value mismatch")
	ErrDialect         = errors.New("bank: invalid dialect")
)

// TPDU is the 5-byte transport header: ID (0x60), destination NII, source NII. A response
// carries the request's TPDU with the two addresses swapped.
type TPDU [5]byte

// NewTPDU builds a TPDU with ID 0x60.
func NewTPDU(dest, src uint16) TPDU {
	var t TPDU
	t[0] = 0x60
	binary.BigEndian.PutUint16(t[1:3], dest)
	binary.BigEndian.PutUint16(t[3:5], src)
	return t
}

// Dest is the destination NII.
func (t TPDU) Dest() uint16 { return binary.BigEndian.Uint16(t[1:3]) }

// Src is the source NII.
func (t TPDU) Src() uint16 { return binary.BigEndian.Uint16(t[3:5]) }

// Swap returns the TPDU a response carries: destination and source exchanged.
func (t TPDU) Swap() TPDU { return TPDU{t[0], t[3], t[4], t[1], t[2]} }

// Header is the 6-byte BCD application header: app type (60), software version, terminal
// status and processing requirement (one nibble each), sub-version n6. The bank may set the
// processing requirement in a response (e.g. "download parameters"); we send the dialect's.
type Header [6]byte

// MACer computes the MAC of a MAB: 8 bytes, exactly what goes into F64 (for the CUPS ECB
// algorithm the 8 ASCII hex characters). The security module sits behind it with the bank's
// MAK and the dialect's algorithm; the package never sees the key.
type MACer interface {
	MAC(mab []byte) ([]byte, error)
}

// MACFunc adapts a function to MACer.
type MACFunc func(mab []byte) ([]byte, error)

// MAC calls f.
func (f MACFunc) MAC(mab []byte) ([]byte, error) { return f(mab) }

// Verifier checks the MAC of a received message; it returns an error wrapping ErrMAC on a
// mismatch, so a security module that verifies inside the box can implement it directly.
type Verifier interface {
	VerifyMAC(mab, mac []byte) error
}

// Recompute verifies by computing the MAC with m and comparing in constant time.
func Recompute(m MACer) Verifier { return recompute{m} }

type recompute struct{ m MACer }

func (r recompute) VerifyMAC(mab, mac []byte) error {
	want, err := r.m.MAC(mab)
	if err != nil {
		return fmt.Errorf("bank: compute MAC: %w", err)
	}
	if !crypt.Equal(want, mac) {
		return ErrMAC
	}
	return nil
}

// maskPAN keeps the first 6 and last 4 digits.
func maskPAN(p string) string {
	if len(p) < 11 {
		return "****"
	}
	b := []byte(p)
	for i := 6; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}
