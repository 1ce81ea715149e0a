// Package apdu encodes and decodes ISO 7816-4 short APDUs and names the status words of the
// load scheme (spec section 5). It knows nothing about any particular card: the e-purse and
// PSAM commands live in io/card. Decoders return errors and never panic, because their input
// comes from cards, readers and the network.
package apdu

import (
	"errors"
	"fmt"
)

// ErrMalformed reports bytes that are not a short command or response APDU.
var ErrMalformed = errors.New("apdu: malformed")

// Command is a short command APDU. Le is -1 when absent; 1..256 otherwise. Le 0 and 256 both
// encode as the byte 00 ("up to 256"), and ParseCommand returns 256 for it.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Le               int
}

// Validate reports a command that cannot be encoded as a short APDU.
func (c Command) Validate() error {
	if len(c.Data) > 255 {
		return fmt.Errorf("%w: %d data bytes, short APDUs carry at most 255", ErrMalformed, len(c.Data))
	}
	if c.Le < -1 || c.Le > 256 {
		return fmt.Errorf("%w: Le %d out of range", ErrMalformed, c.Le)
	}
	return nil
}

// Bytes encodes the command (case 1 to 4). Commands are built by our own code with fixed
// lengths, so an invalid one is a programming error and panics; use Validate first when the
// fields come from outside.
func (c Command) Bytes() []byte {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	b := make([]byte, 4, 6+len(c.Data))
	b[0], b[1], b[2], b[3] = c.CLA, c.INS, c.P1, c.P2
	if len(c.Data) > 0 {
		b = append(b, byte(len(c.Data)))
		b = append(b, c.Data...)
	}
	if c.Le >= 0 {
		b = append(b, byte(c.Le)) // 256 -> 00, 0 -> 00
	}
	return b
}

// ParseCommand decodes a short command APDU. Extended lengths (Lc byte 00 followed by more
// bytes) are not used by any card of the scheme and are rejected.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: command of %d bytes, need at least 4", ErrMalformed, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Le: -1}
	switch rest := b[4:]; {
	case len(rest) == 0: // case 1
	case len(rest) == 1: // case 2
		c.Le = leValue(rest[0])
	default:
		lc := int(rest[0])
		if lc == 0 {
			return Command{}, fmt.Errorf("%w: extended length APDU not supported", ErrMalformed)
		}
		switch len(rest) - 1 - lc {
		case 0: // case 3
		case 1: // case 4
			c.Le = leValue(rest[len(rest)-1])
		default:
			return Command{}, fmt.Errorf("%w: Lc %d does not match %d bytes after it", ErrMalformed, lc, len(rest)-1)
		}
		c.Data = append([]byte(nil), rest[1:1+lc]...)
	}
	return c, nil
}

func leValue(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

// Response is a response APDU: data followed by SW1 SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response into data and status word.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: response of %d bytes, need SW1 SW2", ErrMalformed, len(b))
	}
	n := len(b) - 2
	return Response{Data: append([]byte(nil), b[:n]...), SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Bytes encodes the response as data || SW1 SW2.
func (r Response) Bytes() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return append(b, byte(r.SW>>8), byte(r.SW))
}

// OK reports SW 9000.
func (r Response) OK() bool { return r.SW == SW9000 }

// SW1 returns the first status byte.
func (r Response) SW1() byte { return byte(r.SW >> 8) }

// SW2 returns the second status byte.
func (r Response) SW2() byte { return byte(r.SW) }
