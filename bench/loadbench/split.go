package loadbench

import (
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/platform"
)

// The latency split. Every load's time at the switch is measured on the kiosk link (a proxy
// per kiosk: request frame in -> response frame out), and every request the switch makes to
// a peer on the peer links (a proxy per peer: request out -> response back). Peer requests
// are attributed to the kiosk they serve by what they carry: the bank 0200's PAN (each
// bench kiosk pays with its own account), the platform CARD CHECK's kiosk terminal, the
// PENDING QUERY's card (each kiosk has its own card) and the reference of BOOK and CONFIRM
// (learnt from the CARD CHECK RESPONSE). The switch-added time of a load is then
//
//	sum(kiosk-link intervals of the load) - sum(the parts of its peer intervals that fall inside them)
//
// i.e. what the kiosk waited on the switch minus what the switch waited on the peers.

type interval struct{ from, to time.Time }

// loadTrace is one kiosk's intervals of the load in progress.
type loadTrace struct {
	mu    sync.Mutex
	at    []interval // kiosk link: the switch holds a request
	peers []interval // the switch waits for a peer on this kiosk's behalf
}

func (t *loadTrace) reset() {
	t.mu.Lock()
	t.at, t.peers = t.at[:0], t.peers[:0]
	t.mu.Unlock()
}

func (t *loadTrace) addSwitch(iv interval) {
	t.mu.Lock()
	t.at = append(t.at, iv)
	t.mu.Unlock()
}

func (t *loadTrace) addPeer(iv interval) {
	t.mu.Lock()
	t.peers = append(t.peers, iv)
	t.mu.Unlock()
}

// added is the switch's own time of the load (never negative).
func (t *loadTrace) added() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.at) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, a := range t.at {
		total += a.to.Sub(a.from)
		for _, p := range t.peers {
			from, to := p.from, p.to
			if from.Before(a.from) {
				from = a.from
			}
			if to.After(a.to) {
				to = a.to
			}
			if to.After(from) {
				total -= to.Sub(from)
			}
		}
	}
	return max(total, 0), true
}

// splitter maps peer requests to kiosks.
type splitter struct {
	traces  []*loadTrace
	byTerm  map[string]int
	byCard  map[string]int // app serial hex
	byPAN   map[string]int
	mu      sync.Mutex
	byRef   map[string]int
	enabled func() bool
}

// kioskHooks times one kiosk-link connection of kiosk i: one request at a time.
func (s *splitter) kioskHooks(i int) func() (func([]byte, time.Time), func([]byte, time.Time)) {
	return func() (func([]byte, time.Time), func([]byte, time.Time)) {
		var mu sync.Mutex
		var sent time.Time
		up := func(_ []byte, at time.Time) {
			mu.Lock()
			sent = at
			mu.Unlock()
		}
		down := func(_ []byte, at time.Time) {
			mu.Lock()
			from := sent
			sent = time.Time{}
			mu.Unlock()
			if !from.IsZero() && s.enabled() {
				s.traces[i].addSwitch(interval{from, at})
			}
		}
		return up, down
	}
}

type pendingPeer struct {
	at    time.Time
	kiosk int
	check bool
}

// trailer is a platform.MACer that accepts the MAC the message carries: the bench reads
// the bodies it forwards, it does not judge them (the platform does).
type trailer []byte

func (t trailer) MAC([]byte) ([8]byte, error) {
	var out [8]byte
	copy(out[:], t[len(t)-8:])
	return out, nil
}

func (s *splitter) platformHooks() (func([]byte, time.Time), func([]byte, time.Time)) {
	var mu sync.Mutex
	waiting := map[uint32]pendingPeer{}
	up := func(b []byte, at time.Time) {
		if !s.enabled() {
			return
		}
		h, m, err := platform.Unpack(b, trailer(b))
		if err != nil {
			return
		}
		k, check := -1, false
		switch r := m.(type) {
		case *platform.CardCheck:
			k, check = s.lookup(s.byTerm, r.Kiosk.Terminal), true
		case *platform.PendingQuery:
			k = s.lookup(s.byCard, strings.ToUpper(hex.EncodeToString(r.AppSerial[:])))
		case *platform.Book:
			k = s.ref(r.Reference)
		case *platform.Confirm:
			k = s.ref(r.Reference)
		}
		if k < 0 {
			return
		}
		mu.Lock()
		waiting[h.Seq] = pendingPeer{at: at, kiosk: k, check: check}
		mu.Unlock()
	}
	down := func(b []byte, at time.Time) {
		h, err := platform.PeekHeader(b)
		if err != nil {
			return
		}
		mu.Lock()
		p, ok := waiting[h.Seq]
		delete(waiting, h.Seq)
		mu.Unlock()
		if !ok {
			return
		}
		if p.check {
			if _, m, err := platform.Unpack(b, trailer(b)); err == nil {
				if r, ok := m.(*platform.CardCheckResponse); ok && r.Reference != "" {
					s.mu.Lock()
					s.byRef[r.Reference] = p.kiosk
					s.mu.Unlock()
				}
			}
		}
		s.traces[p.kiosk].addPeer(interval{p.at, at})
	}
	return up, down
}

func (s *splitter) lookup(m map[string]int, key string) int {
	if i, ok := m[key]; ok {
		return i
	}
	return -1
}

func (s *splitter) ref(r string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.byRef[r]; ok {
		return i
	}
	return -1
}

func (s *splitter) bankHooks() (func([]byte, time.Time), func([]byte, time.Time)) {
	d := bank.DefaultDialect()
	var mu sync.Mutex
	waiting := map[string]pendingPeer{}
	up := func(b []byte, at time.Time) {
		if !s.enabled() {
			return
		}
		fr, err := d.DecodeFields(b)
		if err != nil || fr.Fields.MTI != "0200" {
			return
		}
		k := s.lookup(s.byPAN, fr.Fields.Get(2))
		if k < 0 {
			return
		}
		mu.Lock()
		waiting[fr.Fields.Get(11)] = pendingPeer{at: at, kiosk: k}
		mu.Unlock()
	}
	down := func(b []byte, at time.Time) {
		mu.Lock()
		n := len(waiting)
		mu.Unlock()
		if n == 0 {
			return
		}
		fr, err := d.DecodeFields(b)
		if err != nil {
			return
		}
		mu.Lock()
		p, ok := waiting[fr.Fields.Get(11)]
		delete(waiting, fr.Fields.Get(11))
		mu.Unlock()
		if ok {
			s.traces[p.kiosk].addPeer(interval{p.at, at})
		}
	}
	return up, down
}
