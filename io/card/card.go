// Package card is the terminal side of the card layer: the Reader a kiosk talks through
// (PC/SC in io/card/pcsc, in-process here), typed clients for the PBOC e-purse (EP) and the
// PSAM, and RecoverUnknown, the pure decision of what happened to a load whose CREDIT FOR LOAD
// got no answer. It holds no card keys: MAC2 comes from the platform, TACs are checked there.
package card

import (
	"context"
	"errors"
	"fmt"

	"github.com/quancun/quancun/io/apdu"
)

// ErrCardRemoved is what a Reader returns when the card left the field (PC/SC
// SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD, SCARD_E_NO_SMARTCARD, ...).
//
// If it comes back from a Transmit of CREDIT FOR LOAD the result is UNKNOWN: the card may have
// committed the credit and lost only the answer. The kiosk must then report write status U
// and let RecoverUnknown decide later; it must never retry the credit blindly or report F.
var ErrCardRemoved = errors.New("card: card removed")

// ErrClosed reports a Transmit on a closed Reader.
var ErrClosed = errors.New("card: reader closed")

// ErrBadResponse reports a 9000 answer whose data has the wrong shape.
var ErrBadResponse = errors.New("card: malformed response")

// ErrNoRecord reports READ RECORD past the last record (SW 6A83).
var ErrNoRecord = errors.New("card: no such record")

// Reader moves one raw APDU to a card and back: command in, data||SW1SW2 out. It does not
// interpret status words; the clients do.
type Reader interface {
	Transmit(ctx context.Context, cmd []byte) ([]byte, error)
	Close() error
}

// Processor is what a card or PSAM does with one command APDU: it always answers, with at
// least SW1 SW2 (a malformed command earns 6700, not silence).
type Processor interface {
	Process(cmd []byte) []byte
}

// Powered is implemented by processors that have a volatile state a reset destroys (the
// virtual card's load context). InProcessReader calls it on Pull and Insert.
type Powered interface {
	PowerOn()
	PowerOff()
}

// exchange sends one command and returns its response with the T=0 conveniences resolved:
// 61xx fetches the rest with GET RESPONSE, 6Cxx repeats with the right Le. Transport errors
// are returned as they are, so errors.Is(err, ErrCardRemoved) keeps working.
func exchange(ctx context.Context, r Reader, c apdu.Command) (apdu.Response, error) {
	return exchangeT0(ctx, r, c, true)
}

func exchangeT0(ctx context.Context, r Reader, c apdu.Command, retryLe bool) (apdu.Response, error) {
	raw, err := r.Transmit(ctx, c.Bytes())
	if err != nil {
		return apdu.Response{}, err
	}
	resp, err := apdu.ParseResponse(raw)
	if err != nil {
		return apdu.Response{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	switch resp.SW1() {
	case 0x6C:
		if !retryLe { // one retry: a card that keeps asking is broken
			break
		}
		c.Le = leOf(resp.SW2())
		return exchangeT0(ctx, r, c, false)
	case 0x61:
		var data []byte
		data = append(data, resp.Data...)
		for i := 0; resp.SW1() == 0x61 && i < 16; i++ {
			raw, err = r.Transmit(ctx, apdu.Command{CLA: 0x00, INS: 0xC0, Le: leOf(resp.SW2())}.Bytes())
			if err != nil {
				return apdu.Response{}, err
			}
			if resp, err = apdu.ParseResponse(raw); err != nil {
				return apdu.Response{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
			}
			data = append(data, resp.Data...)
		}
		resp.Data = data
	}
	return resp, nil
}

func leOf(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

// expect runs a command and turns any SW other than 9000 into a *apdu.StatusError named name.
func expect(ctx context.Context, r Reader, name string, c apdu.Command) ([]byte, error) {
	resp, err := exchange(ctx, r, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if resp.SW != apdu.SW9000 {
		return nil, &apdu.StatusError{SW: resp.SW, Cmd: name}
	}
	return resp.Data, nil
}
