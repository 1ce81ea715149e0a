package crypt

import (
	"errors"
	"fmt"
)

// ErrPINFormat reports a PIN or PIN block that is not ISO 9564 format 0.
var ErrPINFormat = errors.New("crypt: not an ISO 9564 format-0 PIN block")

// panField is 0000 followed by the 12 rightmost PAN digits excluding the check digit.
func panField(pan string) ([]byte, error) {
	if len(pan) < 13 || len(pan) > 19 {
		return nil, fmt.Errorf("crypt: PAN must have 13 to 19 digits, got %d", len(pan))
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return nil, errors.New("crypt: PAN must be digits")
		}
	}
	d := pan[len(pan)-13 : len(pan)-1]
	out := make([]byte, 8)
	for i := 0; i < 12; i++ {
		n := d[i] - '0'
		j := 4 + i
		if j%2 == 0 {
			out[j/2] |= n << 4
		} else {
			out[j/2] |= n
		}
	}
	return out, nil
}

// PINBlockISO0 builds the clear ISO 9564 format-0 PIN block for a 4 to 12 digit PIN.
// Only the security module should hold its result.
func PINBlockISO0(pin, pan string) ([]byte, error) {
	if len(pin) < 4 || len(pin) > 12 {
		return nil, fmt.Errorf("%w: PIN must have 4 to 12 digits", ErrPINFormat)
	}
	nib := make([]byte, 16)
	nib[0] = 0
	nib[1] = byte(len(pin))
	for i := 2; i < 16; i++ {
		nib[i] = 0xF
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return nil, fmt.Errorf("%w: PIN must be digits", ErrPINFormat)
		}
		nib[2+i] = pin[i] - '0'
	}
	pf, err := panField(pan)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8)
	for i := 0; i < 8; i++ {
		out[i] = (nib[2*i]<<4 | nib[2*i+1]) ^ pf[i]
	}
	return out, nil
}

// PINFromISO0 recovers the PIN from a clear format-0 block and the PAN it was built with.
func PINFromISO0(block []byte, pan string) (string, error) {
	if len(block) != 8 {
		return "", fmt.Errorf("%w: block must be 8 bytes", ErrPINFormat)
	}
	pf, err := panField(pan)
	if err != nil {
		return "", err
	}
	nib := make([]byte, 16)
	for i := 0; i < 8; i++ {
		b := block[i] ^ pf[i]
		nib[2*i], nib[2*i+1] = b>>4, b&0xF
	}
	n := int(nib[1])
	if nib[0] != 0 || n < 4 || n > 12 {
		return "", ErrPINFormat
	}
	pin := make([]byte, n)
	for i := 0; i < n; i++ {
		if nib[2+i] > 9 {
			return "", ErrPINFormat
		}
		pin[i] = '0' + nib[2+i]
	}
	for i := 2 + n; i < 16; i++ {
		if nib[i] != 0xF {
			return "", ErrPINFormat
		}
	}
	return string(pin), nil
}
