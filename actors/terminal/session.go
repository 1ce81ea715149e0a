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
	asks     map[string]*ask // requests waiting for the platform or the loads supervisor; nil until one waits
	recent   recent          // LOAD answers by date+trace, for duplicates
}

// newSession allocates no maps: most of a terminal's life is idle, and at tens of
// thousands of kiosks the eager maps would cost more than the connection itself.
func newSession(n int) *session {
	return &session{recent: recent{max: n}}
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

// recent remembers the last max LOAD answers, oldest dropped first. Its map is made on
// the first answer (a nil map reads as empty).
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
	if r.m == nil {
		r.m = map[string]*kiosk.LoadResponse{}
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
