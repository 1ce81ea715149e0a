// Package dial is the one dial-in-a-goroutine that the bank link and the platform session
// share. An actor must not block its mailbox on connect, and a connection that arrives
// after the actor gave up on the attempt (it stopped, restarted or dialled again) must be
// closed, not leaked.
package dial

import (
	"context"
	"net"
	"sync"
	"time"
)

// Attempt is one dial in progress.
type Attempt struct {
	cancel context.CancelFunc

	mu        sync.Mutex
	cancelled bool
	conn      net.Conn
}

// Start dials addr in a goroutine tracked by wg and calls done with the attempt and the
// dial's error once it ends (done is not called for an attempt aborted before its
// connection arrived). done typically posts a message to the actor, which then Takes the
// connection.
func Start(wg *sync.WaitGroup, addr string, timeout time.Duration, done func(*Attempt, error)) *Attempt {
	ctx, cancel := context.WithCancel(context.Background())
	a := &Attempt{cancel: cancel}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil && !a.deliver(c) {
			return
		}
		done(a, err)
	}()
	return a
}

// deliver hands the dialled connection over unless the attempt was aborted.
func (a *Attempt) deliver(c net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancelled {
		c.Close()
		return false
	}
	a.conn = c
	return true
}

// Take returns the connection for the actor to own, once; nil when aborted.
func (a *Attempt) Take() net.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancelled {
		return nil
	}
	c := a.conn
	a.conn = nil
	a.cancelled = true // delivered once
	return c
}

// Abort gives the attempt up: the dial is cancelled and a connection it still delivers,
// or one delivered but not taken, is closed.
func (a *Attempt) Abort() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cancelled = true
	a.cancel()
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
}
