// Package pcsc is the card.Reader of a real PC/SC reader, through pcsc-lite (pcscd) and
// github.com/ebfe/scard (cgo, Debian libpcsclite-dev). With vsmartcard's vpcd driver the
// "reader" is virtual and the card is a process (package vpcd), but nothing here knows that.
//
// What it adds to raw PC/SC: waiting for a card with a context, and turning every way a card
// can disappear (removed, reset by someone else, gone mid-APDU) into card.ErrCardRemoved, so
// the kiosk's load logic has one thing to check before it marks a credit "unknown" ('U').
package pcsc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebfe/scard"

	"github.com/quancun/quancun/io/card"
)

// poll bounds how long one blocking PC/SC wait runs before the context is checked again. A
// change of reader state ends the wait at once, so this only limits cancellation latency.
const poll = 250 * time.Millisecond

// goneGrace is how long a failed APDU waits for the reader to report the card gone. pcscd
// learns about a vanished vpcd card on its next presence poll (every 0.4 s), so a transmit
// error can arrive before the reader state changes.
const goneGrace = time.Second

// errNoStatusWord is a response shorter than SW1 SW2, which no card sends.
var errNoStatusWord = errors.New("response without status word")

// Reader is one PC/SC reader with (at most) one card connected in shared mode. Transmit is
// safe for concurrent use; WaitForCard and WaitForRemoval use their own PC/SC context, so a
// monitor can wait for removal while another goroutine transmits.
type Reader struct {
	name string

	mu   sync.Mutex // guards io and card
	io   *scard.Context
	card *scard.Card // nil while no card is connected

	// mon is only for GetStatusChange, so a wait never blocks a transmit (pcsc-lite serialises
	// calls per context). Set once in Open; Close cancels a wait in progress, then releases it.
	mon    *scard.Context
	monMu  sync.Mutex // one wait at a time; Release only when no wait runs
	closed atomic.Bool
}

var _ card.Reader = (*Reader)(nil)

// Open connects to readerName and waits until a card is present (or ctx ends), then
// connects to it in shared mode with T=0 or T=1.
func Open(ctx context.Context, readerName string) (*Reader, error) {
	ioCtx, err := scard.EstablishContext()
	if err != nil {
		return nil, fmt.Errorf("pcsc: establish context (is pcscd running? scripts/pcscd.sh): %w", err)
	}
	mon, err := scard.EstablishContext()
	if err != nil {
		ioCtx.Release()
		return nil, fmt.Errorf("pcsc: establish context: %w", err)
	}
	r := &Reader{name: readerName, io: ioCtx, mon: mon}
	if err := r.WaitForCard(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Name is the PC/SC reader name.
func (r *Reader) Name() string { return r.name }

// ListReaders returns the readers pcscd knows (empty when there are none).
func ListReaders() ([]string, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, fmt.Errorf("pcsc: establish context (is pcscd running? scripts/pcscd.sh): %w", err)
	}
	defer c.Release()
	names, err := c.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pcsc: list readers: %w", err)
	}
	return names, nil
}

// Transmit sends one command APDU and returns the response APDU (data and status word). ctx is
// checked before sending only: an APDU in flight cannot be recalled, and abandoning it would
// leave the card's state unknown anyway. A card that is gone, was reset, or vanished during the
// exchange gives an error wrapping card.ErrCardRemoved; the reader then needs WaitForCard.
func (r *Reader) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pcsc: transmit on %q: %w", r.name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.io == nil {
		return nil, fmt.Errorf("pcsc: transmit on %q: %w", r.name, card.ErrClosed)
	}
	if r.card == nil {
		return nil, fmt.Errorf("pcsc: transmit on %q: %w (no card connected)", r.name, card.ErrCardRemoved)
	}
	resp, err := r.card.Transmit(cmd)
	if err == nil && len(resp) < 2 {
		// No status word: the card vanished mid-exchange. vpcd reports a lost card connection
		// this way (success, zero bytes) rather than as an error.
		err = errNoStatusWord
	}
	if err == nil {
		return resp, nil
	}
	if r.cardGone(err) {
		r.dropCardLocked()
		return nil, fmt.Errorf("pcsc: transmit on %q: %w (%w)", r.name, card.ErrCardRemoved, err)
	}
	return nil, fmt.Errorf("pcsc: transmit on %q: %w", r.name, err)
}

// cardGone decides whether a transmit error means the card left. Some errors say so; a bare
// communication failure is checked against the reader's state, which may lag the failure.
func (r *Reader) cardGone(err error) bool {
	switch {
	case errors.Is(err, scard.ErrRemovedCard), errors.Is(err, scard.ErrResetCard),
		errors.Is(err, scard.ErrNoSmartcard), errors.Is(err, scard.ErrUnpoweredCard):
		return true
	case errors.Is(err, errNoStatusWord),
		errors.Is(err, scard.ErrNotTransacted), errors.Is(err, scard.ErrCommError),
		errors.Is(err, scard.ErrUnresponsiveCard), errors.Is(err, scard.ErrCommDataLost):
	default:
		return false
	}
	deadline := time.Now().Add(goneGrace)
	for time.Now().Before(deadline) {
		if _, serr := r.card.Status(); serr != nil {
			return errors.Is(serr, scard.ErrRemovedCard) || errors.Is(serr, scard.ErrResetCard) ||
				errors.Is(serr, scard.ErrNoSmartcard)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (r *Reader) dropCardLocked() {
	if r.card != nil {
		r.card.Disconnect(scard.LeaveCard)
		r.card = nil
	}
}

// Connected reports whether a card handle is open (the card may still have left since).
func (r *Reader) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.card != nil
}

// WaitForCard waits until a card is in the reader and connects to it, replacing a handle to a
// card that left. If the connected card is still there it returns at once.
func (r *Reader) WaitForCard(ctx context.Context) error {
	for {
		r.mu.Lock()
		if r.io == nil {
			r.mu.Unlock()
			return fmt.Errorf("pcsc: wait for card in %q: %w", r.name, card.ErrClosed)
		}
		if r.card != nil {
			if _, err := r.card.Status(); err == nil {
				r.mu.Unlock()
				return nil
			}
			r.dropCardLocked()
		}
		r.mu.Unlock()

		if err := r.waitState(ctx, scard.StatePresent); err != nil {
			return err
		}
		r.mu.Lock()
		if r.io == nil {
			r.mu.Unlock()
			return fmt.Errorf("pcsc: wait for card in %q: %w", r.name, card.ErrClosed)
		}
		c, err := r.io.Connect(r.name, scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1)
		if err == nil {
			r.card = c
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
		// The card left between the state change and Connect, or is still powering up: wait
		// for it again. Anything else is a real failure.
		if !errors.Is(err, scard.ErrNoSmartcard) && !errors.Is(err, scard.ErrRemovedCard) &&
			!errors.Is(err, scard.ErrUnresponsiveCard) && !errors.Is(err, scard.ErrUnpoweredCard) {
			return fmt.Errorf("pcsc: connect to %q: %w", r.name, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("pcsc: wait for card in %q: %w", r.name, err)
		}
	}
}

// WaitForRemoval waits until the reader reports no card, and drops the handle of the card
// that left. Wait for this before presenting the next card: a card that was pulled can look
// present for up to 0.4 s, and a kiosk that connects in that window talks to a ghost.
func (r *Reader) WaitForRemoval(ctx context.Context) error {
	if err := r.waitState(ctx, scard.StateEmpty); err != nil {
		return err
	}
	r.mu.Lock()
	r.dropCardLocked()
	r.mu.Unlock()
	return nil
}

// waitState blocks until the reader's state includes want (StatePresent or StateEmpty).
func (r *Reader) waitState(ctx context.Context, want scard.StateFlag) error {
	r.monMu.Lock()
	defer r.monMu.Unlock()
	rs := []scard.ReaderState{{Reader: r.name, CurrentState: scard.StateUnaware}}
	for {
		if r.closed.Load() {
			return fmt.Errorf("pcsc: wait on %q: %w", r.name, card.ErrClosed)
		}
		err := r.mon.GetStatusChange(rs, poll)
		switch {
		case err == nil:
			ev := rs[0].EventState
			if ev&scard.StateUnknown != 0 {
				return fmt.Errorf("pcsc: reader %q: %w", r.name, scard.ErrUnknownReader)
			}
			if ev&want != 0 && (want != scard.StatePresent || ev&scard.StateMute == 0) {
				return nil
			}
			rs[0].CurrentState = ev &^ scard.StateChanged
		case errors.Is(err, scard.ErrTimeout), errors.Is(err, scard.ErrCancelled):
			// Timeout: check ctx. Cancelled: Close wants the context; the loop top sees it.
		default:
			return fmt.Errorf("pcsc: status of %q: %w", r.name, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pcsc: wait on %q: %w", r.name, err)
		}
	}
}

// Close disconnects the card (leaving it powered, as a kiosk hands it back) and releases the
// PC/SC contexts. It is safe to call more than once.
func (r *Reader) Close() error {
	r.mu.Lock()
	r.dropCardLocked()
	var errs []error
	if r.io != nil {
		errs = append(errs, r.io.Release())
		r.io = nil
	}
	r.mu.Unlock()
	if !r.closed.Swap(true) {
		r.mon.Cancel() // ends a GetStatusChange in progress; harmless when none runs
		r.monMu.Lock()
		errs = append(errs, r.mon.Release())
		r.monMu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pcsc: close %q: %w", r.name, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
