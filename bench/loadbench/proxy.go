package loadbench

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quancun/quancun/io/frame"
)

// proxy forwards framed messages (2-byte length prefix, every link of the switch uses it)
// between a client and a target, and tells its hooks when each frame passed, on the
// bench's clock. It is how the bench times what the peers take and what the switch takes
// without touching either.
type proxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
	// newConn returns the hooks of one connection (nil hooks = plain forwarding).
	newConn func() (toTarget, fromTarget func(b []byte, at time.Time))
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newProxy(target string, newConn func() (func([]byte, time.Time), func([]byte, time.Time))) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, newConn: newConn, conns: map[net.Conn]struct{}{}}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

// Retarget makes new connections go to target (a kiosk proxy follows the switch under test).
func (p *proxy) Retarget(target string) { p.target.Store(&target) }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		t, err := net.Dial("tcp", *p.target.Load())
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[t] = struct{}{}, struct{}{}
		p.mu.Unlock()
		var up, down func([]byte, time.Time)
		if p.newConn != nil {
			up, down = p.newConn()
		}
		p.wg.Add(2)
		go p.pipe(c, t, up)
		go p.pipe(t, c, down)
	}
}

func (p *proxy) pipe(from, to net.Conn, hook func([]byte, time.Time)) {
	defer p.wg.Done()
	defer func() {
		from.Close()
		to.Close()
		p.mu.Lock()
		delete(p.conns, from)
		delete(p.conns, to)
		p.mu.Unlock()
	}()
	for {
		b, err := frame.Read(from, 0)
		if err != nil {
			return
		}
		if hook != nil {
			hook(b, time.Now())
		}
		if err := frame.Write(to, b); err != nil {
			return
		}
	}
}

// Close stops accepting and closes every connection.
func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
