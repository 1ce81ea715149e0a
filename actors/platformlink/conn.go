package platformlink

import (
	"net"
	"sync"
	"time"

	"github.com/quancun/quancun/actors/internal/dial"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/platform"
)

// The TCP side of the session. Two kinds of goroutine, both owned by one incarnation of the
// actor and waited for when it stops or restarts: a dialer (one per attempt) and a reader
// (one per connection). They never touch the actor's state: they post messages to it.
// Writes happen in the actor itself, with a deadline.

// connection is one TCP connection to the platform. Messages from its reader carry it, so
// the actor drops what an older connection still had in flight.
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
	// inbound is one decoded frame. peeked is false when not even the header reads; with
	// peeked true and err set, hdr is still valid (e.g. a MAC that does not verify), so the
	// actor can match the answer to its request.
	inbound struct {
		conn   *connection
		hdr    platform.Header
		msg    platform.Message
		err    error
		peeked bool
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

// startReader reads frames until the connection fails or is closed. It verifies and decodes
// each frame in the goroutine: the sign-in responses under the sign-in key, everything else
// under the dynamic key the module holds now (an answer of an older batch then fails its
// MAC, which the actor treats as "outcome unknown").
func startReader(wg *sync.WaitGroup, c *connection, signIn, dynamic platform.MACer, post func(any)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			p, err := frame.Read(c.c, 0)
			if err != nil {
				post(connClosed{conn: c, err: err})
				return
			}
			in := inbound{conn: c}
			h, err := platform.PeekHeader(p)
			if err != nil {
				in.err = err
				post(in)
				continue
			}
			k := dynamic
			if h.Type == platform.TypeSignInResp || h.Type == platform.TypeSignIn {
				k = signIn
			}
			in.hdr, in.msg, in.err = platform.Unpack(p, k)
			in.hdr, in.peeked = h, true
			post(in)
		}
	}()
}
