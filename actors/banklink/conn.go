package banklink

import (
	"net"
	"sync"
	"time"

	"github.com/quancun/quancun/actors/internal/dial"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/frame"
)

// The TCP side of the link. Two kinds of goroutine, both owned by one incarnation of the
// actor and waited for when it stops or restarts: a dialer (one per attempt) and a reader
// (one per connection). They never touch the actor's state: they post messages to it.
// Writes happen in the actor itself, with a deadline, so the actor knows whether the bytes
// of a 0200 left (BankDebitResult.NotSent must be true only when nothing did).

// connection is one TCP connection to the bank. Messages from its reader carry it, so the
// actor drops what an older connection (or an older incarnation) still had in flight.
type connection struct {
	id uint64
	c  net.Conn
}

// Messages from the goroutines to the actor.
type (
	dialed struct {
		attempt *dial.Attempt
		err     error
	}
	inbound struct {
		conn  *connection
		frame *bank.Frame // nil when not even the fields decode
		err   error       // Decode's error; frame then has Fields but no Msg
	}
	connClosed struct {
		conn *connection
		err  error
	}
)

// startDial dials addr in a goroutine and posts dialed.
func startDial(wg *sync.WaitGroup, addr string, timeout time.Duration, post func(any)) *dial.Attempt {
	return dial.Start(wg, addr, timeout, func(a *dial.Attempt, err error) { post(dialed{attempt: a, err: err}) })
}

// startReader reads frames until the connection fails or is closed, decoding each in the
// goroutine (Decode, and DecodeFields when Decode refuses, so a malformed 0210 can still be
// matched to its request).
func startReader(wg *sync.WaitGroup, c *connection, d bank.Dialect, post func(any)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			p, err := frame.Read(c.c, 0)
			if err != nil {
				post(connClosed{conn: c, err: err})
				return
			}
			fr, err := d.Decode(p)
			if err != nil {
				fr, _ = d.DecodeFields(p) // nil when the body is unreadable
			}
			post(inbound{conn: c, frame: fr, err: err})
		}
	}()
}
