// Package bcd is packed binary-coded decimal for ISO 8583 fields: encoders that plug into
// moov-io/iso8583's encoding.Encoder and length prefixers for its prefix.Prefixer.
//
// It exists because the library's stock encoding.BCD builds two 256-entry lookup tables on
// every call (about 90 % of a message's pack time). The encoders here compute nibbles
// directly and produce byte-identical output with the same read counts:
//
//   - BCD   = stock encoding.BCD: odd lengths right-aligned, leading 0 nibble ("021" -> 00 21).
//   - LBCD  = stock encoding.LBCD: odd lengths left-aligned, trailing 0 nibble ("021" -> 02 10),
//     which is what the CUPS POS convention (card-and-host.md 7.2) uses for every n field.
//   - Track = LBCD plus the track-2 separator: 'D' (or '=') packs as nibble D (the z type).
//   - Prefix.LL / Prefix.LLL / Prefix.Fixed = stock prefix.BCD (lengths right-aligned).
//
// Decoders validate instead of trusting: a nibble above 9 where a digit belongs is an error
// (ErrNotDigit), never a NUL byte in the output as the stock decoder can produce. The one
// non-digit accepted is the filler F in the pad nibble of a left-aligned odd value, which the
// stock LBCD accepts too and some hosts send. Nothing here panics on any input.
package bcd

import (
	"errors"
	"fmt"

	"github.com/moov-io/iso8583/encoding"
)

// ErrNotDigit reports a character that is not a decimal digit (encode) or a nibble that is not
// a BCD digit (decode).
var ErrNotDigit = errors.New("bcd: not a decimal digit")

// ErrShort reports input shorter than the length asked for.
var ErrShort = errors.New("bcd: not enough data")

// ErrLength reports a negative length or a length that does not fit its prefix or field.
var ErrLength = errors.New("bcd: invalid length")

// Encoders as values; they are stateless, so sharing them between goroutines is safe.
var (
	// BCD is right-aligned packed BCD, byte-identical to encoding.BCD.
	BCD encoding.Encoder = aligned{left: false}
	// LBCD is left-aligned packed BCD, byte-identical to encoding.LBCD; the CUPS n type.
	LBCD encoding.Encoder = aligned{left: true}
	// Track is left-aligned BCD over digits and the separator 'D' ('=' accepted on encode);
	// the CUPS z type of track 2/3 (F35, F36).
	Track encoding.Encoder = aligned{left: true, track: true}
)

type aligned struct {
	left  bool // odd length: pad nibble last (LBCD) instead of first (BCD)
	track bool // the separator 'D' is a legal symbol
}

// nibble maps one character to its nibble; ok is false for anything else.
func (a aligned) nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case a.track && (c == 'D' || c == 'd' || c == '='):
		return 0xD, true
	}
	return 0, false
}

// Encode packs src two characters per byte; an odd length gets one 0 nibble, first (BCD) or
// last (LBCD, Track).
func (a aligned) Encode(src []byte) ([]byte, error) {
	out := make([]byte, (len(src)+1)/2)
	off := 0
	if !a.left {
		off = len(src) & 1
	}
	for i, c := range src {
		d, ok := a.nibble(c)
		if !ok {
			return nil, fmt.Errorf("%w: character %d of %d", ErrNotDigit, i+1, len(src))
		}
		j := i + off
		if j&1 == 0 {
			out[j>>1] = d << 4
		} else {
			out[j>>1] |= d
		}
	}
	return out, nil
}

// Decode unpacks length characters from the front of src and reports the bytes read,
// (length+1)/2. The pad nibble of an odd length is dropped: it must be a digit, or for
// left-aligned values also F (the stock decoders behave the same).
func (a aligned) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, fmt.Errorf("%w: %d", ErrLength, length)
	}
	read := (length + 1) / 2
	if len(src) < read {
		return nil, 0, fmt.Errorf("%w: need %d bytes, have %d", ErrShort, read, len(src))
	}
	out := make([]byte, length)
	off := 0
	if !a.left {
		off = length & 1
		if off == 1 && src[0]>>4 > 9 {
			return nil, 0, fmt.Errorf("%w: pad nibble %X", ErrNotDigit, src[0]>>4)
		}
	} else if length&1 == 1 {
		if p := src[read-1] & 0x0F; p > 9 && p != 0xF {
			return nil, 0, fmt.Errorf("%w: pad nibble %X", ErrNotDigit, p)
		}
	}
	for i := range out {
		j := i + off
		n := src[j>>1]
		if j&1 == 0 {
			n >>= 4
		} else {
			n &= 0x0F
		}
		switch {
		case n <= 9:
			out[i] = '0' + n
		case a.track && n == 0xD:
			out[i] = 'D'
		default:
			return nil, 0, fmt.Errorf("%w: nibble %d is %X", ErrNotDigit, j, n)
		}
	}
	return out, read, nil
}
