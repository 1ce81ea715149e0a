package hsm

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"

	"github.com/quancun/quancun/io/crypt"
)

// MACAlg selects a host-message MAC algorithm (spec 7.3); which one a bank uses is in its
// interface document.
type MACAlg int

const (
	// MACX99 is ANSI X9.9: single-DES CBC over zero-padded data, 8 bytes; needs an 8-byte key.
	MACX99 MACAlg = iota + 1
	// MACX919 is ANSI X9.19 (ISO 9797-1 alg 3, zero padding), 8 bytes; needs a 16-byte key.
	MACX919
	// MACCUPS is the CUPS POS "ECB" MAC: 8 ASCII hex characters, as field 64 carries them.
	MACCUPS
	// MACPBOC3DES is ISO 9797-1 alg 3 with 80-padding and zero IV, 4 bytes; 16-byte key.
	MACPBOC3DES
)

func (a MACAlg) String() string {
	switch a {
	case MACX99:
		return "X9.9"
	case MACX919:
		return "X9.19"
	case MACCUPS:
		return "CUPS"
	case MACPBOC3DES:
		return "PBOC-3DES"
	}
	return fmt.Sprintf("MACAlg(%d)", int(a))
}

// MAC computes a host-message MAC under a MAC key. The algorithms run on the key's cached
// schedules (not through io/crypt, which takes clear keys and rebuilds a schedule per call);
// a differential test and FuzzMACMatchesCrypt pin them to io/crypt byte for byte.
func (m *Soft) MAC(keyName string, alg MACAlg, data []byte) ([]byte, error) {
	e, err := m.get(keyName, UsageMAC)
	if err != nil {
		return nil, err
	}
	single := e.k1 == nil // 8-byte key
	switch alg {
	case MACX99:
		if !single {
			return nil, fmt.Errorf("hsm: key %s: X9.9 needs a single-DES key: %w", keyName, ErrKeyLength)
		}
		s := cbcMAC(e.block, data, false)
		return s[:], nil
	case MACX919, MACPBOC3DES:
		if single {
			return nil, fmt.Errorf("hsm: key %s: %v needs a double-length key: %w", keyName, alg, ErrKeyLength)
		}
		s := cbcMAC(e.k1, data, alg == MACPBOC3DES)
		e.k2.Decrypt(s[:], s[:])
		e.k1.Encrypt(s[:], s[:])
		if alg == MACPBOC3DES {
			return s[:4], nil
		}
		return s[:], nil
	case MACCUPS:
		return cupsMAC(e.block, data), nil
	}
	return nil, fmt.Errorf("hsm: unknown MAC algorithm %d: %w", int(alg), ErrInput)
}

// VerifyMAC recomputes the MAC and compares in constant time; a mismatch (including a MAC
// of the wrong length) is ErrMACMismatch.
func (m *Soft) VerifyMAC(keyName string, alg MACAlg, data, mac []byte) error {
	want, err := m.MAC(keyName, alg, data)
	if err != nil {
		return err
	}
	if !crypt.Equal(want, mac) {
		return fmt.Errorf("hsm: %v MAC under %s: %w", alg, keyName, ErrMACMismatch)
	}
	return nil
}

// cbcMAC is DES-CBC from a zero IV over data padded with 80 00.. (pad80) or zeros (empty
// data is one zero block), without copying data: it returns the last block.
func cbcMAC(b cipher.Block, data []byte, pad80 bool) (s [8]byte) {
	n := len(data) &^ 7
	for i := 0; i < n; i += 8 {
		subtle.XORBytes(s[:], s[:], data[i:i+8])
		b.Encrypt(s[:], s[:])
	}
	rem := data[n:]
	if !pad80 && len(rem) == 0 && len(data) > 0 {
		return s
	}
	var last [8]byte
	copy(last[:], rem)
	if pad80 {
		last[len(rem)] = 0x80
	}
	subtle.XORBytes(s[:], s[:], last[:])
	b.Encrypt(s[:], s[:])
	return s
}

const hexUpper = "0123456789ABCDEF"

// cupsMAC is crypt.CUPSMAC on a cached schedule (spec 7.3).
func cupsMAC(b cipher.Block, mab []byte) []byte {
	var r [8]byte
	n := len(mab) &^ 7
	for i := 0; i < n; i += 8 {
		subtle.XORBytes(r[:], r[:], mab[i:i+8])
	}
	subtle.XORBytes(r[:], r[:], mab[n:]) // zero padding: the tail XORs into the front
	var h [16]byte
	for i, c := range r {
		h[2*i], h[2*i+1] = hexUpper[c>>4], hexUpper[c&0xF]
	}
	var x [8]byte
	b.Encrypt(x[:], h[:8])
	subtle.XORBytes(x[:], x[:], h[8:])
	b.Encrypt(x[:], x[:])
	out := make([]byte, 8)
	for i, c := range x[:4] {
		out[2*i], out[2*i+1] = hexUpper[c>>4], hexUpper[c&0xF]
	}
	return out
}
