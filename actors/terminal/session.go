package terminal

import (
	"time"

	"github.com/quancun/quancun/io/kiosk"
)

// session is what a terminal actor knows of its kiosk. It belongs to the registration, so
// it outlives a restart of the actor; only the actor touches it.
type session struct {
	conn     *conn
	signedIn bool
	batch    uint32
	load     *flight         // the load in flight, at most one
	asks     map[string]*ask // requests waiting for the platform or the loads supervisor
	recent   *recent         // LOAD answers by date+trace, for duplicates
}

func newSession(n int) *session {
	return &session{asks: map[string]*ask{}, recent: &recent{max: n, m: map[string]*kiosk.LoadResponse{}}}
}

// flight is the one load a terminal has handed to the loads supervisor.
type flight struct {
	key   string // date + trace
	txnID string
	req   *kiosk.Load
	timer *time.Timer
}

// ask is a request waiting for an answer, with its timeout.
type ask struct {
	req   kiosk.Request
	timer *time.Timer
}

// recent remembers the last max LOAD answers, oldest dropped first.
type recent struct {
	max   int
	order []string
	m     map[string]*kiosk.LoadResponse
}

func (r *recent) get(key string) *kiosk.LoadResponse { return r.m[key] }

func (r *recent) put(key string, resp *kiosk.LoadResponse) {
	if _, ok := r.m[key]; ok {
		return // the first answer stands
	}
	r.m[key] = resp
	r.order = append(r.order, key)
	for len(r.order) > r.max {
		delete(r.m, r.order[0])
		r.order = r.order[1:]
	}
}

// loadKey identifies a LOAD REQUEST of a terminal: its date and trace (F13, F11).
func loadKey(e *kiosk.Envelope) string { return e.Date + e.Trace }

// Timeouts the actor arms for itself.
type loadTimeout struct{ txnID string }
type askTimeout struct{ reqID string }
