package terminal

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/kiosk"
)

// maxFrame is the kiosk link's largest message (docs/protocols/kiosk.md section 1).
const maxFrame = 4096

// writeTimeout bounds one response write: a kiosk that stops reading is dropped. A write
// only waits when the kernel's send buffer is full, i.e. when the kiosk has left many
// answers unread, so in practice it never blocks the terminal actor that writes.
const writeTimeout = 10 * time.Second

// conn is one kiosk connection. Its reader goroutine (read) is the only one that reads;
// whoever answers (a terminal actor, or the reader for an unregistered terminal) writes
// directly through send. There is no writer goroutine: an idle kiosk costs one goroutine,
// not two (docs/performance.md, memory per idle kiosk).
type conn struct {
	id     uint64 // increasing: a newer connection of a terminal replaces an older one
	nc     net.Conn
	remote string
	mu     sync.Mutex // one frame written at a time, with its own deadline
	closed atomic.Bool
}

func newConn(id uint64, nc net.Conn) *conn {
	return &conn{id: id, nc: nc, remote: nc.RemoteAddr().String()}
}

// send writes one response frame. A kiosk sends one request at a time and reads each
// answer, so a write that fails or times out means a kiosk that is gone or does not read:
// the connection is closed and the error returned.
func (c *conn) send(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return net.ErrClosed
	}
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := frame.Write(c.nc, b); err != nil {
		c.close()
		return err
	}
	return nil
}

// close closes the socket once; the reader then ends and reports the loss.
func (c *conn) close() {
	if c.closed.CompareAndSwap(false, true) {
		c.nc.Close()
	}
}

// inbound is a decoded kiosk request for a terminal actor. err is the MAC check's result
// (kiosk.ErrMAC, or why the MAC could not be computed).
type inbound struct {
	conn *conn
	req  kiosk.Request
	err  error
}

// connLost tells a terminal actor that a connection it may be using is gone.
type connLost struct {
	conn *conn
	why  string
}

// requestMACer checks kiosk request MACs in the security module: the PSAM MAC master
// diversified once with 00 00 || PSAM number (docs/protocols/kiosk.md section 6.2).
type requestMACer struct {
	hsm    Security
	master string
}

func (m requestMACer) RequestMAC(psam kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	return m.hsm.PSAMMAC(m.master, [][]byte{psam.Factor()}, mab)
}

// errUndecodable ends a connection whose message cannot be addressed to a terminal.
var errUndecodable = errors.New("undecodable message")

// read waits for the next frame of c, hands it on, and leaves the frame after to a new
// goroutine. An idle kiosk thus costs one goroutine parked in Read on a fresh, minimal
// stack: decoding (reflective ISO 8583) and the MAC check grow the stack of a goroutine
// that ends right after, instead of a reader whose grown stack would stay for the life of
// the connection (the runtime only shrinks stacks at GC, and idle FEPs seldom collect).
// last is the terminal the connection spoke for so far. Each goroutine of the chain holds
// the connection's one k.wg count and passes it on to its successor.
func (k *Kiosks) read(c *conn, last *registration) {
	c.nc.SetReadDeadline(time.Now().Add(k.cfg.HeartbeatTimeout))
	b, err := frame.Read(c.nc, maxFrame)
	if err == nil {
		if last, err = k.handle(c, last, b); err == nil {
			go k.read(c, last)
			return
		}
	}
	k.ended(c, last, err)
}

// handle decodes one request, checks its MAC and sends it to its terminal actor. It
// returns the terminal the connection now speaks for, and errUndecodable for a message
// that cannot be answered.
func (k *Kiosks) handle(c *conn, last *registration, b []byte) (*registration, error) {
	req, err := kiosk.ReadRequest(b, requestMACer{hsm: k.deps.HSM, master: k.cfg.PSAMMaster})
	if req == nil {
		// Not a request we can address an answer to (bad header, version, layout).
		k.log.Warn("kiosk message not understood: connection closed", "remote", c.remote, "err", err)
		return last, errUndecodable
	}
	e := envOf(req)
	reg := k.terms[e.Terminal]
	if reg == nil {
		k.log.Warn("kiosk terminal not registered", "remote", c.remote, "terminal", e.Terminal, "psam", e.PSAM.String())
		if rb, perr := answer(req, replyEnv(e, k.deps.Now(), e.Batch), kiosk.NotRegistered).Pack(nil); perr == nil {
			c.send(rb) // a failed write closes c: the next Read ends the connection
		}
		return last, nil
	}
	if last != nil && last != reg {
		k.deps.System.Root.Send(last.pid, connLost{conn: c, why: "connection now used by terminal " + reg.ID})
	}
	k.deps.System.Root.Send(reg.pid, inbound{conn: c, req: req, err: err})
	return reg, nil
}

// ended closes c after its last frame (err says why) and tells the terminal it spoke for.
func (k *Kiosks) ended(c *conn, last *registration, err error) {
	defer k.wg.Done()
	c.close()
	k.forget(c)
	var why string
	switch {
	case errors.Is(err, errUndecodable):
		why = err.Error()
	case errors.Is(err, os.ErrDeadlineExceeded):
		why = "heartbeat timeout"
		k.log.Warn("kiosk silent past the heartbeat timeout: connection closed",
			"remote", c.remote, "terminal", termOf(last), "timeout", k.cfg.HeartbeatTimeout)
	case errors.Is(err, net.ErrClosed):
		why = "closed by the FEP"
	default:
		why = err.Error()
		k.log.Info("kiosk connection ended", "remote", c.remote, "terminal", termOf(last), "err", err)
	}
	if last != nil {
		k.deps.System.Root.Send(last.pid, connLost{conn: c, why: why})
	}
}

func termOf(r *registration) string {
	if r == nil {
		return ""
	}
	return r.ID
}
