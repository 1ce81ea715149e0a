package terminal

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/kiosk"
)

// maxFrame is the kiosk link's largest message (docs/protocols/kiosk.md section 1).
const maxFrame = 4096

// writeTimeout bounds one response write: a kiosk that stops reading is dropped.
const writeTimeout = 10 * time.Second

// conn is one kiosk connection. Only its reader and writer goroutines touch the socket;
// actors hand it packed responses through send.
type conn struct {
	id     uint64 // increasing: a newer connection of a terminal replaces an older one
	nc     net.Conn
	remote string
	out    chan []byte
	done   chan struct{}
	once   sync.Once
}

func newConn(id uint64, nc net.Conn) *conn {
	return &conn{id: id, nc: nc, remote: nc.RemoteAddr().String(), out: make(chan []byte, 8), done: make(chan struct{})}
}

// send queues a response without blocking the actor. A kiosk sends one request at a time,
// so a full queue means a kiosk that does not read: it is dropped.
func (c *conn) send(b []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- b:
		return true
	default:
		c.close()
		return false
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
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

func (k *Kiosks) write(c *conn) {
	defer k.wg.Done()
	for {
		select {
		case b := <-c.out:
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := frame.Write(c.nc, b); err != nil {
				k.log.Warn("kiosk write failed", "remote", c.remote, "err", err)
				c.close()
				return
			}
		case <-c.done:
			return
		}
	}
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

// read is the connection's reader: frames in, decoded requests out to terminal actors.
func (k *Kiosks) read(c *conn) {
	defer k.wg.Done()
	defer k.forget(c)
	defer c.close()
	macer := requestMACer{hsm: k.deps.HSM, master: k.cfg.PSAMMaster}
	var last *registration // the terminal this connection spoke for
	why := "closed"
	defer func() {
		if last != nil {
			k.deps.System.Root.Send(last.pid, connLost{conn: c, why: why})
		}
	}()
	k.log.Debug("kiosk connected", "remote", c.remote)
	for {
		c.nc.SetReadDeadline(time.Now().Add(k.cfg.HeartbeatTimeout))
		b, err := frame.Read(c.nc, maxFrame)
		if err != nil {
			switch {
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
			return
		}
		req, err := kiosk.ReadRequest(b, macer)
		if req == nil {
			// Not a request we can address an answer to (bad header, version, layout).
			why = "undecodable message"
			k.log.Warn("kiosk message not understood: connection closed", "remote", c.remote, "err", err)
			return
		}
		e := envOf(req)
		reg := k.terms[e.Terminal]
		if reg == nil {
			k.log.Warn("kiosk terminal not registered", "remote", c.remote, "terminal", e.Terminal, "psam", e.PSAM.String())
			if rb, perr := answer(req, replyEnv(e, k.deps.Now(), e.Batch), kiosk.NotRegistered).Pack(nil); perr == nil {
				c.send(rb)
			}
			continue
		}
		if last != nil && last != reg {
			k.deps.System.Root.Send(last.pid, connLost{conn: c, why: "connection now used by terminal " + reg.ID})
		}
		last = reg
		k.deps.System.Root.Send(reg.pid, inbound{conn: c, req: req, err: err})
	}
}

func termOf(r *registration) string {
	if r == nil {
		return ""
	}
	return r.ID
}
