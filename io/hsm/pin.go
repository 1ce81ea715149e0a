package hsm

import (
	"crypto/subtle"
	"fmt"

	"github.com/quancun/quancun/io/crypt"
)

// EncryptPIN builds the ISO 9564 format-0 block of pin for pan and encrypts it under the PIN
// key (what a kiosk's PIN pad does; also used by simulated kiosks).
func (m *Soft) EncryptPIN(pinKey, pin, pan string) ([]byte, error) {
	e, err := m.get(pinKey, UsagePIN)
	if err != nil {
		return nil, err
	}
	clearBlock, err := crypt.PINBlockISO0(pin, pan)
	if err != nil {
		return nil, fmt.Errorf("hsm: PIN block for %s: %w", maskPAN(pan), err)
	}
	defer wipe(clearBlock)
	out := make([]byte, 8)
	e.block.Encrypt(out, clearBlock)
	return out, nil
}

// clearPIN decrypts block under the PIN key e and checks it is a format-0 block for pan.
// The caller wipes the clear block; pin is a Go string and cannot be wiped, so it must
// never leave this file.
func clearPIN(e *entry, pan string, block []byte) (clearBlock []byte, pin string, err error) {
	if len(block) != 8 {
		return nil, "", fmt.Errorf("hsm: PIN block must be 8 bytes, got %d: %w", len(block), ErrInput)
	}
	clearBlock = make([]byte, 8)
	e.block.Decrypt(clearBlock, block)
	pin, err = crypt.PINFromISO0(clearBlock, pan)
	if err != nil {
		wipe(clearBlock)
		return nil, "", fmt.Errorf("hsm: PIN block under %s for %s: %w", e.info.Name, maskPAN(pan), err)
	}
	return clearBlock, pin, nil
}

// TranslatePIN re-encrypts a PIN block from the PIN key fromKey (kiosk PIK) to toKey (bank
// ZPK), checking on the way that it is a well-formed format-0 block for pan: a translator that
// passed garbage through would let a caller probe the key with chosen blocks. The clear block
// never leaves the module.
func (m *Soft) TranslatePIN(fromKey, toKey, pan string, block []byte) ([]byte, error) {
	from, err := m.get(fromKey, UsagePIN)
	if err != nil {
		return nil, err
	}
	to, err := m.get(toKey, UsagePIN)
	if err != nil {
		return nil, err
	}
	clearBlock, _, err := clearPIN(from, pan, block)
	if err != nil {
		return nil, err
	}
	defer wipe(clearBlock)
	out := make([]byte, 8)
	to.block.Encrypt(out, clearBlock)
	m.log.Debug("PIN translated", "from", fromKey, "to", toKey, "pan", maskPAN(pan))
	return out, nil
}

// PINMatches tells whether block (under pinKey, for pan) holds the PIN want: what a bank host
// does. The comparison is constant time in the PIN's digits.
func (m *Soft) PINMatches(pinKey, pan string, block []byte, want string) (bool, error) {
	e, err := m.get(pinKey, UsagePIN)
	if err != nil {
		return false, err
	}
	clearBlock, pin, err := clearPIN(e, pan, block)
	if err != nil {
		return false, err
	}
	wipe(clearBlock)
	return subtle.ConstantTimeCompare([]byte(pin), []byte(want)) == 1, nil
}

// maskPAN keeps the first 6 and last 4 digits (the masking rule of DESIGN section 6); short
// or odd input is masked whole so nothing leaks by accident.
func maskPAN(pan string) string {
	if len(pan) < 13 || len(pan) > 19 {
		return "****"
	}
	b := []byte(pan)
	for i := 6; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}
