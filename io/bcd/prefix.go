package bcd

import (
	"fmt"
	"strings"

	"github.com/moov-io/iso8583/prefix"
)

// Prefix holds the BCD length prefixers, byte-identical to prefix.BCD: the length is written as
// Digits decimal digits, right-aligned in (Digits+1)/2 bytes (LL = 1 byte, LLL = 2 bytes
// "0011" for 11). What the length counts (digits for n/z, bytes for ans/b) is the field's
// business: moov passes the value's length in its own units.
var Prefix = prefix.Prefixers{
	Fixed:  fixed{},
	L:      varLen{1},
	LL:     varLen{2},
	LLL:    varLen{3},
	LLLL:   varLen{4},
	LLLLL:  varLen{5},
	LLLLLL: varLen{6},
}

type varLen struct{ digits int }

// limit is 10^digits, the first length the prefix cannot hold.
func (p varLen) limit() int {
	l := 1
	for range p.digits {
		l *= 10
	}
	return l
}

// EncodeLength writes dataLen as the prefix; it refuses lengths above maxLen or too wide.
func (p varLen) EncodeLength(maxLen, dataLen int) ([]byte, error) {
	if dataLen > maxLen {
		return nil, fmt.Errorf("%w: field length %d is larger than maximum %d", ErrLength, dataLen, maxLen)
	}
	if dataLen < 0 || dataLen >= p.limit() {
		return nil, fmt.Errorf("%w: %d does not fit %d digits", ErrLength, dataLen, p.digits)
	}
	out := make([]byte, (p.digits+1)/2)
	v := dataLen
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = byte(v%10) | byte(v/10%10)<<4
		v /= 100
	}
	return out, nil
}

// DecodeLength reads the prefix; every nibble must be a digit (the pad nibble of an odd digit
// count too, as in the stock prefixer) and the length must not exceed maxLen.
func (p varLen) DecodeLength(maxLen int, data []byte) (int, int, error) {
	n := (p.digits + 1) / 2
	if len(data) < n {
		return 0, 0, fmt.Errorf("%w: need %d length bytes, have %d", ErrShort, n, len(data))
	}
	v := 0
	for _, b := range data[:n] {
		hi, lo := b>>4, b&0x0F
		if hi > 9 || lo > 9 {
			return 0, 0, fmt.Errorf("%w: length byte %02X", ErrNotDigit, b)
		}
		v = v*100 + int(hi)*10 + int(lo)
	}
	// An odd digit count has a pad nibble; the stock prefixer ignores its value.
	v %= p.limit()
	if v > maxLen {
		return 0, 0, fmt.Errorf("%w: data length %d is larger than maximum %d", ErrLength, v, maxLen)
	}
	return v, n, nil
}

// Inspect names the prefixer the way prefix.BCD does, so JSON spec descriptions are the same.
func (p varLen) Inspect() string { return "BCD." + strings.Repeat("L", p.digits) }

type fixed struct{}

// EncodeLength writes nothing and insists the value has exactly the field's length.
func (fixed) EncodeLength(fixLen, dataLen int) ([]byte, error) {
	if dataLen != fixLen {
		return nil, fmt.Errorf("%w: field length %d should be fixed %d", ErrLength, dataLen, fixLen)
	}
	return []byte{}, nil
}

// DecodeLength reads nothing: the length is the field's.
func (fixed) DecodeLength(fixLen int, _ []byte) (int, int, error) { return fixLen, 0, nil }

// Inspect names the prefixer like prefix.BCD.Fixed.
func (fixed) Inspect() string { return "BCD.Fixed" }
