// Package crypt holds the pure block-cipher algorithms of the load scheme: PBOC key
// diversification and MACs, the host MACs (X9.9, X9.19, CUPS POS), ISO 9564 PIN blocks and
// key check values. It holds no keys of its own: keys live in the security module (io/hsm),
// which is the only production caller. Every function is deterministic and safe for
// concurrent use.
package crypt

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrKeyLength reports a key that is neither 8 (single DES) nor 16 bytes (double-length 3DES).
var ErrKeyLength = errors.New("crypt: key must be 8 or 16 bytes")

// ErrBlockLength reports data that must be exactly one or a whole number of 8-byte blocks.
var ErrBlockLength = errors.New("crypt: data must be a multiple of 8 bytes")

// NewCipher returns single DES for an 8-byte key and two-key EDE 3DES (K3 = K1) for a 16-byte key.
func NewCipher(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 8:
		return des.NewCipher(key)
	case 16:
		k := make([]byte, 24)
		copy(k, key)
		copy(k[16:], key[:8])
		return des.NewTripleDESCipher(k)
	default:
		return nil, ErrKeyLength
	}
}

// EncryptECB encrypts data (a multiple of 8 bytes) block by block under key.
func EncryptECB(key, data []byte) ([]byte, error) {
	return ecb(key, data, true)
}

// DecryptECB decrypts data (a multiple of 8 bytes) block by block under key.
func DecryptECB(key, data []byte) ([]byte, error) {
	return ecb(key, data, false)
}

func ecb(key, data []byte, enc bool) ([]byte, error) {
	if len(data)%8 != 0 {
		return nil, ErrBlockLength
	}
	c, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	for i := 0; i < len(data); i += 8 {
		if enc {
			c.Encrypt(out[i:i+8], data[i:i+8])
		} else {
			c.Decrypt(out[i:i+8], data[i:i+8])
		}
	}
	return out, nil
}

// Diversify derives a card key from a 16-byte master key and an 8-byte factor:
// 3DES_MK(F) || 3DES_MK(NOT F) (spec 3.1).
func Diversify(mk, factor []byte) ([]byte, error) {
	if len(mk) != 16 {
		return nil, ErrKeyLength
	}
	if len(factor) != 8 {
		return nil, fmt.Errorf("crypt: diversification factor must be 8 bytes, got %d", len(factor))
	}
	in := make([]byte, 16)
	copy(in, factor)
	for i := 0; i < 8; i++ {
		in[8+i] = ^factor[i]
	}
	return EncryptECB(mk, in)
}

// DiversifyPath applies Diversify once per factor, first factor first (group factor before
// the card's serial for two-level schemes, spec 3.1).
func DiversifyPath(mk []byte, factors ...[]byte) ([]byte, error) {
	k := mk
	for _, f := range factors {
		var err error
		if k, err = Diversify(k, f); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// LoadSessionKey is SESLK = 3DES_DLK(rnd(4) || onlineSerial(2) || 8000) (spec 2.2).
func LoadSessionKey(dlk, rnd, serial []byte) ([]byte, error) {
	if len(rnd) != 4 || len(serial) != 2 {
		return nil, fmt.Errorf("crypt: session key needs a 4-byte random and a 2-byte serial, got %d and %d", len(rnd), len(serial))
	}
	in := make([]byte, 0, 8)
	in = append(in, rnd...)
	in = append(in, serial...)
	in = append(in, 0x80, 0x00)
	return EncryptECB(dlk, in)
}

// TACKey is the single-DES TAC key DTK[0:8] XOR DTK[8:16] (spec 2.4).
func TACKey(dtk []byte) ([]byte, error) {
	if len(dtk) != 16 {
		return nil, ErrKeyLength
	}
	k := make([]byte, 8)
	subtle.XORBytes(k, dtk[:8], dtk[8:])
	return k, nil
}

// Pad80 appends 0x80 and then zeros up to a multiple of 8 (ISO 9797-1 method 2); data that
// is already a multiple of 8 gains a whole block.
func Pad80(data []byte) []byte {
	n := (len(data)/8 + 1) * 8
	out := make([]byte, n)
	copy(out, data)
	out[len(data)] = 0x80
	return out
}

// PadZero appends zeros up to a multiple of 8 (ISO 9797-1 method 1); empty data stays one
// zero block so a MAC is always defined.
func PadZero(data []byte) []byte {
	n := (len(data) + 7) / 8 * 8
	if n == 0 {
		n = 8
	}
	out := make([]byte, n)
	copy(out, data)
	return out
}

// cbcMAC runs DES-CBC with the single-DES key k over padded data from iv and returns the
// last block.
func cbcMAC(k cipher.Block, iv, padded []byte) []byte {
	s := make([]byte, 8)
	copy(s, iv)
	for i := 0; i < len(padded); i += 8 {
		subtle.XORBytes(s, s, padded[i:i+8])
		k.Encrypt(s, s)
	}
	return s
}

// PBOCMAC is the single-length PBOC MAC used for MAC1, MAC2 and TAC: 80-padding, IV zero,
// DES-CBC under an 8-byte key, left 4 bytes (spec 2.3).
func PBOCMAC(key8, data []byte) ([]byte, error) {
	if len(key8) != 8 {
		return nil, fmt.Errorf("crypt: PBOC MAC key must be 8 bytes, got %d", len(key8))
	}
	c, err := des.NewCipher(key8)
	if err != nil {
		return nil, err
	}
	return cbcMAC(c, nil, Pad80(data))[:4], nil
}

// PBOC3DESMACPadded is the PBOC MAC with a double-length key over data the caller has
// already padded (as a PSAM's 80FA does): DES-CBC with K1 from iv, then D_K2, E_K1; left 4
// bytes (ISO 9797-1 MAC algorithm 3, spec 3.3).
func PBOC3DESMACPadded(key16, iv, padded []byte) ([]byte, error) {
	s, err := retailMAC(key16, iv, padded)
	if err != nil {
		return nil, err
	}
	return s[:4], nil
}

// retailMAC is ISO 9797-1 algorithm 3 over already padded data.
func retailMAC(key16, iv, padded []byte) ([]byte, error) {
	if len(key16) != 16 {
		return nil, ErrKeyLength
	}
	if len(padded)%8 != 0 || len(padded) == 0 {
		return nil, ErrBlockLength
	}
	if len(iv) != 0 && len(iv) != 8 {
		return nil, fmt.Errorf("crypt: MAC IV must be 8 bytes, got %d", len(iv))
	}
	k1, _ := des.NewCipher(key16[:8])
	k2, _ := des.NewCipher(key16[8:])
	s := cbcMAC(k1, iv, padded)
	k2.Decrypt(s, s)
	k1.Encrypt(s, s)
	return s, nil
}

// X99 is the ANSI X9.9 MAC: single-DES CBC over zero-padded data, the whole last block.
func X99(key8, data []byte) ([]byte, error) {
	if len(key8) != 8 {
		return nil, fmt.Errorf("crypt: X9.9 key must be 8 bytes, got %d", len(key8))
	}
	c, err := des.NewCipher(key8)
	if err != nil {
		return nil, err
	}
	return cbcMAC(c, nil, PadZero(data)), nil
}

// X919 is the ANSI X9.19 retail MAC with a double-length key over zero-padded data (8 bytes).
func X919(key16, data []byte) ([]byte, error) {
	return retailMAC(key16, nil, PadZero(data))
}

// CUPSMAC is the CUPS POS "ECB" MAC (spec 7.3): XOR the zero-padded MAB into one block R,
// hex-expand R, encrypt its first 8 characters, XOR with the last 8, encrypt again,
// hex-expand, and return the first 8 ASCII characters, which are what goes in field 64's
// first half. key is the MAK (8 bytes: DES, 16 bytes: 3DES).
func CUPSMAC(key, mab []byte) ([]byte, error) {
	c, err := NewCipher(key)
	if err != nil {
		return nil, err
	}
	p := PadZero(mab)
	r := make([]byte, 8)
	for i := 0; i < len(p); i += 8 {
		subtle.XORBytes(r, r, p[i:i+8])
	}
	h := []byte(strings.ToUpper(hex.EncodeToString(r)))
	b := make([]byte, 8)
	c.Encrypt(b, h[:8])
	subtle.XORBytes(b, b, h[8:])
	c.Encrypt(b, b)
	return []byte(strings.ToUpper(hex.EncodeToString(b)))[:8], nil
}

// KCV is the key check value: the left 4 bytes of the key encrypting a zero block.
func KCV(key []byte) ([]byte, error) {
	out, err := EncryptECB(key, make([]byte, 8))
	if err != nil {
		return nil, err
	}
	return out[:4], nil
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
