package card

import (
	"context"
	"errors"
	"fmt"

	"github.com/quancun/quancun/io/apdu"
	"github.com/quancun/quancun/io/crypt"
)

const (
	cmdInitDES = "INIT FOR DESCRYPT"
	cmdDES     = "DES CRYPT"
)

// psamChunk is the most data one 80FA command carries, IV included (ykt4sungard chunks
// 0x30 bytes; spec 6).
const psamChunk = 0x30

// ErrBadArgument reports a caller mistake caught before anything is sent to the card.
var ErrBadArgument = errors.New("card: bad argument")

// PSAM is a client for the kiosk's PSAM: terminal number and the general-DES MAC that signs
// kiosk->FEP messages. Not safe for concurrent use: 801A leaves a key in the PSAM's RAM for
// the 80FA that follows.
type PSAM struct {
	r Reader
}

// NewPSAM returns a PSAM client on r.
func NewPSAM(r Reader) *PSAM { return &PSAM{r: r} }

// ReadTerminalID reads file 0016, the 6-byte terminal number used in INIT FOR LOAD and in
// every MAC of the load (00 B0 96 00 06).
func (p *PSAM) ReadTerminalID(ctx context.Context) ([6]byte, error) {
	var id [6]byte
	data, err := expect(ctx, p.r, cmdReadBinary, apdu.Command{CLA: 0x00, INS: 0xB0, P1: 0x96, P2: 0x00, Le: 6})
	if err != nil {
		return id, err
	}
	if len(data) != 6 {
		return id, fmt.Errorf("%w: terminal number is %d bytes, want 6", ErrBadResponse, len(data))
	}
	copy(id[:], data)
	return id, nil
}

// InitDES runs 801A: the PSAM derives a temporary key from its master key (usage, index) and
// the 8-byte factors. Pass the factors in the order the command takes them: the card/PSAM
// factor F1 first, the group factor F2 second; the PSAM applies the last one first.
func (p *PSAM) InitDES(ctx context.Context, usage, index byte, factors ...[]byte) error {
	if len(factors) > 3 {
		return fmt.Errorf("%w: at most 3 diversification factors", ErrBadArgument)
	}
	var d []byte
	for _, f := range factors {
		if len(f) != 8 {
			return fmt.Errorf("%w: diversification factor of %d bytes, want 8", ErrBadArgument, len(f))
		}
		d = append(d, f...)
	}
	_, err := expect(ctx, p.r, cmdInitDES, apdu.Command{CLA: 0x80, INS: 0x1A, P1: usage, P2: index, Data: d, Le: -1})
	return err
}

// MAC computes the PBOC 3DES MAC of data under the key InitDES left in the PSAM. It pads
// with 80 00.. (the PSAM expects padded input) and sends one 80FA 05 when IV and data fit in
// 0x30 bytes, else 07 (IV + first part), 03 ..., 01 (last part). iv may be empty (zeros),
// 4 bytes (a card challenge, padded with 00000000) or 8 bytes.
func (p *PSAM) MAC(ctx context.Context, data, iv []byte) ([4]byte, error) {
	var mac [4]byte
	iv8 := make([]byte, 8)
	switch len(iv) {
	case 0, 4, 8:
		copy(iv8, iv)
	default:
		return mac, fmt.Errorf("%w: IV of %d bytes, want 0, 4 or 8", ErrBadArgument, len(iv))
	}
	rest := crypt.Pad80(data)
	first := true
	for {
		var chunk []byte
		room := psamChunk
		if first {
			chunk = append(chunk, iv8...)
			room -= 8
		}
		n := min(room, len(rest))
		chunk = append(chunk, rest[:n]...)
		rest = rest[n:]
		last := len(rest) == 0
		var p1 byte
		switch {
		case first && last:
			p1 = 0x05
		case first:
			p1 = 0x07
		case last:
			p1 = 0x01
		default:
			p1 = 0x03
		}
		c := apdu.Command{CLA: 0x80, INS: 0xFA, P1: p1, P2: 0x00, Data: chunk, Le: -1}
		out, err := expect(ctx, p.r, cmdDES, c)
		if err != nil {
			return mac, err
		}
		if last {
			if len(out) != 4 && len(out) != 8 {
				return mac, fmt.Errorf("%w: MAC is %d bytes", ErrBadResponse, len(out))
			}
			copy(mac[:], out)
			return mac, nil
		}
		first = false
	}
}
