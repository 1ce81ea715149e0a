package card

import (
	"context"
	"sync"
)

// InProcessReader connects a Processor (a virtual card or PSAM) to the clients without PC/SC,
// and lets tests pull the card at exact points: Pull, or PullAfter to lose the answer of a
// command the card has already executed (the "credit committed, kiosk saw nothing" case).
type InProcessReader struct {
	mu        sync.Mutex
	p         Processor
	present   bool
	closed    bool
	count     int // commands processed since creation
	pullAtCmd int // pull after this command number is processed; 0 = not armed
}

// InProcessOption configures an InProcessReader.
type InProcessOption func(*InProcessReader)

// WithPullAfter arms the reader to pull the card after the n-th command (counting from 1) is
// processed but before its response is returned.
func WithPullAfter(n int) InProcessOption {
	return func(r *InProcessReader) { r.pullAtCmd = n }
}

// NewInProcessReader returns a reader with p inserted and powered on.
func NewInProcessReader(p Processor, opts ...InProcessOption) *InProcessReader {
	r := &InProcessReader{p: p, present: true}
	for _, o := range opts {
		o(r)
	}
	if pw, ok := p.(Powered); ok {
		pw.PowerOn()
	}
	return r
}

// Transmit hands cmd to the processor. With the card out it returns ErrCardRemoved without
// reaching the processor.
func (r *InProcessReader) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if !r.present {
		return nil, ErrCardRemoved
	}
	resp := r.p.Process(append([]byte(nil), cmd...))
	r.count++
	if r.pullAtCmd > 0 && r.count >= r.pullAtCmd {
		r.pullAtCmd = 0
		r.pullLocked()
		return nil, ErrCardRemoved
	}
	return resp, nil
}

// PullAfter arms a pull after the n-th command from now is processed (n >= 1), before its
// response is returned.
func (r *InProcessReader) PullAfter(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pullAtCmd = r.count + n
}

// Pull takes the card out of the field: it is powered off (its volatile state is lost) and
// every Transmit returns ErrCardRemoved until Insert.
func (r *InProcessReader) Pull() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pullLocked()
}

func (r *InProcessReader) pullLocked() {
	if !r.present {
		return
	}
	r.present = false
	if pw, ok := r.p.(Powered); ok {
		pw.PowerOff()
	}
}

// Insert puts the card back and powers it on.
func (r *InProcessReader) Insert() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.present {
		return
	}
	r.present = true
	if pw, ok := r.p.(Powered); ok {
		pw.PowerOn()
	}
}

// Present reports whether the card is in the field.
func (r *InProcessReader) Present() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.present
}

// Close ends the reader; the processor is left as it is.
func (r *InProcessReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
