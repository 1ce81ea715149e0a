// Package faultproxy is a TCP proxy that breaks a link on purpose, one message at a time.
// It sits between the FEP and a peer (a bank host, the platform), listens on 127.0.0.1:0,
// dials the target for every connection it accepts, and reads both directions as frames of
// the 2-byte length prefix every link of the switch uses (io/frame). Per message it may drop,
// delay, duplicate or reorder it, or cut the link (close both sides), each with a probability
// drawn from one seeded generator, so a campaign is repeatable as far as timing allows.
// Faults can be changed while traffic flows (SetFaults), and Pause turns the link into a
// black hole (connections stay open, nothing gets through) until Resume.
//
// It never looks inside a payload: faults must not depend on what the FEP or a peer says,
// only on the fact that a network loses, repeats and reorders what they say. It only ever
// listens on loopback.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quancun/quancun/io/frame"
)

// Faults are the per-message probabilities (0..1), applied to both directions. At most one
// fault is chosen per message, in the order Cut, Drop, Reorder, Duplicate, Delay.
type Faults struct {
	Drop      float64 // the message vanishes
	Delay     float64 // the message (and so everything after it in its direction) waits
	Duplicate float64 // the message is sent twice
	Reorder   float64 // the message is held and released after the next one (or after HoldMax)
	Cut       float64 // both sides of the connection are closed; the message is lost
	// DelayMin and DelayMax bound a delay; zero DelayMax = 200ms.
	DelayMin, DelayMax time.Duration
	// HoldMax is how long a reordered message waits for a successor before it is released
	// anyway (a reorder must not turn into a drop on a quiet link); zero = 1s.
	HoldMax time.Duration
	// Only limits the faults to one direction: Both (zero), Up (to the target) or Down.
	Only Dir
}

// Dir is a direction of a link.
type Dir int

// Directions: Up is from the dialling side (the FEP) to the target (the peer).
const (
	Both Dir = iota
	Up
	Down
)

// None is a link that behaves.
var None = Faults{}

// Options of a proxy.
type Options struct {
	Seed   uint64 // seeds the generator; the same seed and traffic give the same choices
	Faults Faults
	// MaxFrame bounds one payload (0 = frame.MaxPayload). A bigger length cuts the link.
	MaxFrame int
	Logger   *slog.Logger // nil: discard
	Name     string       // for logs: "bank:BANKA00001", "platform"
}

// Stats counts what the proxy did, over every connection since New.
type Stats struct {
	Conns      int64 // connections accepted
	Forwarded  int64 // messages passed on (a duplicate counts twice)
	Dropped    int64 // dropped, or swallowed while paused
	Delayed    int64
	Duplicated int64
	Reordered  int64
	Cuts       int64 // links cut by a fault or by CutAll
}

// Proxy is one interposed link. Safe for concurrent use.
type Proxy struct {
	target string
	name   string
	ln     net.Listener
	log    *slog.Logger
	max    int

	mu     sync.Mutex // guards everything below
	faults Faults
	rng    *rand.Rand
	paused bool
	links  map[*link]struct{}
	closed bool

	conns, forwarded, dropped, delayed, duplicated, reordered, cuts atomic.Int64
	wg                                                              sync.WaitGroup
}

// New listens on 127.0.0.1:0 and starts forwarding to target. Close stops it.
func New(target string, o Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = frame.MaxPayload
	}
	if o.Name == "" {
		o.Name = target
	}
	p := &Proxy{target: target, name: o.Name, ln: ln, log: o.Logger.With("proxy", o.Name), max: o.MaxFrame,
		faults: o.Faults, rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)), links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetFaults changes the faults for every message from now on, on every connection.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Faults returns the faults in force.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Pause makes the link a black hole: connections stay open and every message in either
// direction is swallowed, as with a peer that hangs or a firewall that drops silently.
func (p *Proxy) Pause() { p.setPaused(true) }

// Resume lets messages through again (those swallowed meanwhile stay lost).
func (p *Proxy) Resume() { p.setPaused(false) }

func (p *Proxy) setPaused(v bool) {
	p.mu.Lock()
	p.paused = v
	p.mu.Unlock()
	p.log.Info("fault proxy", "paused", v)
}

// CutAll closes every connection now, both sides (counted in Stats.Cuts).
func (p *Proxy) CutAll() { p.closeAll(true) }

func (p *Proxy) closeAll(count bool) {
	p.mu.Lock()
	ls := make([]*link, 0, len(p.links))
	for l := range p.links {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		if count {
			p.cuts.Add(1)
		}
		l.cut("CutAll")
	}
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	return Stats{Conns: p.conns.Load(), Forwarded: p.forwarded.Load(), Dropped: p.dropped.Load(),
		Delayed: p.delayed.Load(), Duplicated: p.duplicated.Load(), Reordered: p.reordered.Load(), Cuts: p.cuts.Load()}
}

// Close stops listening, cuts every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.closeAll(false)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("fault proxy accept", "err", err)
			}
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for one accepted connection and pumps both directions.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		// As a real network with the far end down: the connection dies at once.
		p.log.Info("fault proxy: target unreachable", "err", err)
		client.Close()
		return
	}
	l := &link{p: p, client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pump(client, &direction{dst: server, dir: Up, name: "up"}) }()
	go func() { defer wg.Done(); l.pump(server, &direction{dst: client, dir: Down, name: "down"}) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// action is what happens to one message.
type action int

const (
	pass action = iota
	drop
	delay
	duplicate
	reorder
	cut
	swallow // paused
)

// decide draws the fate of one message (one draw per configured fault, under the lock, so
// the sequence of choices depends only on the seed and the order messages arrive in).
func (p *Proxy) decide(dir Dir) (action, time.Duration, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	hold := f.HoldMax
	if hold <= 0 {
		hold = time.Second
	}
	if p.paused {
		return swallow, 0, hold
	}
	if f.Only != Both && f.Only != dir {
		return pass, 0, hold
	}
	chance := func(x float64) bool { return x > 0 && p.rng.Float64() < x }
	switch {
	case chance(f.Cut):
		return cut, 0, hold
	case chance(f.Drop):
		return drop, 0, hold
	case chance(f.Reorder):
		return reorder, 0, hold
	case chance(f.Duplicate):
		return duplicate, 0, hold
	case chance(f.Delay):
		lo, hi := f.DelayMin, f.DelayMax
		if hi <= 0 {
			hi = 200 * time.Millisecond
		}
		if lo > hi {
			lo = hi
		}
		d := lo
		if hi > lo {
			d += time.Duration(p.rng.Int64N(int64(hi - lo)))
		}
		return delay, d, hold
	}
	return pass, 0, hold
}

// link is one proxied connection.
type link struct {
	p              *Proxy
	client, server net.Conn
	once           sync.Once
}

// cut closes both sides once; the first reason is logged.
func (l *link) cut(why string) {
	l.once.Do(func() {
		l.p.log.Debug("fault proxy: link closed", "why", why)
		l.client.Close()
		l.server.Close()
	})
}

// direction is one half of a link: where its messages go, and the message held for a
// reorder.
type direction struct {
	dst  net.Conn
	dir  Dir
	name string
	mu   sync.Mutex // serialises writes to dst and guards held
	held []byte
	gen  int // which hold the release timer belongs to
}

func (d *direction) write(b []byte) error {
	return frame.Write(d.dst, b)
}

// pump reads frames from src and applies the faults until either side fails.
func (l *link) pump(src net.Conn, d *direction) {
	defer l.cut("closed")
	p := l.p
	for {
		msg, err := frame.Read(src, p.max)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug("fault proxy: read", "dir", d.name, "err", err)
			}
			return
		}
		act, wait, hold := p.decide(d.dir)
		switch act {
		case swallow, drop:
			p.dropped.Add(1)
			continue
		case cut:
			p.cuts.Add(1)
			p.log.Info("fault proxy: cutting the link", "dir", d.name)
			return
		case delay:
			p.delayed.Add(1)
			time.Sleep(wait)
		}
		d.mu.Lock()
		var out [][]byte
		if act == reorder && d.held == nil {
			p.reordered.Add(1)
			d.held = msg
			d.gen++
			gen := d.gen
			d.mu.Unlock()
			time.AfterFunc(hold, func() { l.release(d, gen) })
			continue
		}
		out = append(out, msg)
		if act == duplicate {
			p.duplicated.Add(1)
			out = append(out, msg)
		}
		if d.held != nil { // the held message goes after its successor
			out = append(out, d.held)
			d.held = nil
		}
		for _, b := range out {
			if err := d.write(b); err != nil {
				d.mu.Unlock()
				return
			}
			p.forwarded.Add(1)
		}
		d.mu.Unlock()
	}
}

// release sends a held message whose successor never came.
func (l *link) release(d *direction, gen int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held == nil || d.gen != gen {
		return
	}
	b := d.held
	d.held = nil
	if err := d.write(b); err != nil {
		l.cut("write after hold")
		return
	}
	l.p.forwarded.Add(1)
}
