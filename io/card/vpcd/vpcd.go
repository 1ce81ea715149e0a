// Package vpcd is the card side of vsmartcard's vpcd protocol: it puts a virtual card into a
// virtual reader of pcscd, so a kiosk talks to it through real PC/SC exactly as to a plastic
// card. The reader driver (libifdvpcd inside pcscd) listens on a TCP port per reader; the card
// connects to it. An open connection is a card in the field; closing it is pulling the card.
//
// Wire format: every message is a 2-byte big-endian length and a payload (package frame). A
// 1-byte payload is a control message (power off, power on, reset, send ATR); anything longer is
// a command APDU and is answered with one response APDU. This package never interprets APDUs.
package vpcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/quancun/quancun/io/frame"
)

// DefaultAddr is the first reader of Debian's vpcd configuration ("Virtual PCD 00 00"); the
// second ("Virtual PCD 00 01") listens on 35964.
const DefaultAddr = "127.0.0.1:35963"

// Card is what a reader can do with a card: power it, ask its ATR, send it APDUs. Process must
// always return a response APDU (at least a status word); it is called from one goroutine.
type Card interface {
	ATR() []byte
	PowerOn()
	PowerOff()
	Process(cmd []byte) []byte
}

// Control messages of the vpcd protocol (1-byte payloads).
const (
	ctlPowerOff byte = 0x00
	ctlPowerOn  byte = 0x01
	ctlReset    byte = 0x02
	ctlGetATR   byte = 0x04
)

// maxMessage bounds what the driver may send: an extended APDU is at most 65544 bytes, but
// pcscd never sends more than a short APDU plus a little; 64 KiB keeps any corrupt length safe.
const maxMessage = frame.MaxPayload

// Back-off while the driver is not listening (pcscd not started yet, or restarting).
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Serve keeps c inserted in the vpcd reader at addr until ctx ends: it connects (retrying with
// back-off while nobody listens), answers the driver, and reconnects when the driver drops the
// connection (pcscd restarted). It returns nil when ctx ends and an error only for an address
// that can never work.
//
// Cancelling ctx pulls the card at once, even in the middle of a command: a command being
// processed when ctx ends is never answered. That is how tests make a card leave the field
// after it committed a credit but before the kiosk saw the TAC.
func Serve(ctx context.Context, addr string, c Card, logger *slog.Logger) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("vpcd: reader address %q: %w", addr, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("reader", addr)
	var d net.Dialer
	backoff := minBackoff
	waiting := false
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !waiting {
				logger.Info("vpcd: reader not listening yet, retrying", "err", err)
				waiting = true
			}
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		waiting, backoff = false, minBackoff
		logger.Info("vpcd: card inserted")
		start := time.Now()
		st, err := ServeConn(ctx, conn, c)
		attrs := []any{"apdus", st.APDUs, "connected", time.Since(start).Round(time.Millisecond)}
		if st.APDUs > 0 {
			attrs = append(attrs, "avg_apdu", (st.Busy / time.Duration(st.APDUs)).Round(time.Microsecond))
		}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		logger.Info("vpcd: card removed", attrs...)
		if ctx.Err() != nil {
			return nil
		}
		// The driver dropped us (pcscd restarting, or another card took the slot): a short pause
		// so a dying daemon is not hammered, then insert again.
		if !sleep(ctx, minBackoff) {
			return nil
		}
	}
}

// Stats describes one connection: how many APDUs were answered and the time spent processing
// them inside the card (not the round trip the kiosk sees).
type Stats struct {
	APDUs int
	Busy  time.Duration
}

// ServeConn answers the driver on one established connection until the connection drops or
// ctx ends; either way it closes conn and powers the card off (a card leaving the field loses
// its volatile state, such as a pending load). A clean close by the driver returns a nil error.
func ServeConn(ctx context.Context, conn net.Conn, c Card) (Stats, error) {
	var st Stats
	// Closing the connection is the only way to interrupt a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
		c.PowerOff()
	}()
	for {
		if err := quickAck(conn); err != nil && ctx.Err() == nil {
			return st, fmt.Errorf("vpcd: set TCP_QUICKACK: %w", err)
		}
		msg, err := frame.Read(conn, maxMessage)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return st, nil
			}
			return st, fmt.Errorf("vpcd: read: %w", err)
		}
		t0 := time.Now()
		reply := answer(c, msg)
		if len(msg) > 1 {
			st.APDUs++
			st.Busy += time.Since(t0)
		}
		if ctx.Err() != nil {
			// Pulled while processing: the response never leaves the card.
			return st, nil
		}
		if reply == nil {
			continue
		}
		if err := frame.Write(conn, reply); err != nil {
			if ctx.Err() != nil {
				return st, nil
			}
			return st, fmt.Errorf("vpcd: write: %w", err)
		}
	}
}

// answer handles one message from the driver and returns what to send back (nil: nothing).
// Control messages other than "send ATR" have no reply; unknown control bytes are ignored, as
// the driver never sends them and a 1-byte APDU does not exist.
func answer(c Card, msg []byte) []byte {
	if len(msg) == 1 {
		switch msg[0] {
		case ctlPowerOff:
			c.PowerOff()
		case ctlPowerOn:
			c.PowerOn()
		case ctlReset:
			c.PowerOff()
			c.PowerOn()
		case ctlGetATR:
			return c.ATR()
		}
		return nil
	}
	if len(msg) == 0 {
		return nil
	}
	resp := c.Process(msg)
	if len(resp) == 0 {
		// A card always answers at least a status word; an empty answer would be an empty
		// frame, which vpcd reads as a broken card. 6F00 = "no precise diagnosis".
		return []byte{0x6F, 0x00}
	}
	return resp
}

// sleep waits d or until ctx ends; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
