// Package frame is the 2-byte big-endian length prefix that every TCP link of the switch uses
// (kiosk, bank, platform) and that vsmartcard's vpcd uses too. It never interprets the payload.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPayload is the largest payload a 2-byte length can describe.
const MaxPayload = 0xFFFF

// ErrTooLarge reports a frame longer than the caller's limit or than 65535 bytes.
var ErrTooLarge = errors.New("frame: payload too large")

// ErrEmpty reports a zero-length frame, which no link of ours sends.
var ErrEmpty = errors.New("frame: empty frame")

// Read reads one frame and returns its payload. limit (0 = MaxPayload) bounds the
// allocation, so a corrupt length cannot make the reader allocate 64 KiB per peer.
// A clean EOF before the first byte is io.EOF; a frame cut short is io.ErrUnexpectedEOF.
func Read(r io.Reader, limit int) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		return nil, ErrEmpty
	}
	if limit > 0 && n > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("frame: read %d-byte payload: %w", n, err)
	}
	return buf, nil
}

// Append appends the framed payload to dst.
func Append(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	if len(payload) == 0 {
		return dst, ErrEmpty
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(payload)))
	return append(dst, payload...), nil
}

// Write writes one frame with a single Write call, so concurrent writers that serialise
// their calls never interleave a header and another frame's body.
func Write(w io.Writer, payload []byte) error {
	b, err := Append(make([]byte, 0, len(payload)+2), payload)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
