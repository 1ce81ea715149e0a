package platformlink

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/platform"
)

// standin is a small one-card platform for these tests (the real simulated platform is
// bench/simplatform), built on io/platform: it signs the FEP in with a fresh batch and
// dynamic key wrapped under the shared long-term key, checks every request's batch and MAC
// as platform.md 3.4 orders, answers card checks and books, and can be told to misbehave.
type standin struct {
	t   *testing.T
	ln  net.Listener
	ltk []byte
	ks  platform.SoftMAC

	dropHeartbeats atomic.Int32 // ignore the next n heartbeats
	checkDelay     atomic.Int64 // nanoseconds before answering a card check
	signIns, conns atomic.Int32

	mu      sync.Mutex
	batch   uint32 // current session; 0 = none
	next    uint32
	dk      platform.SoftMAC
	dks     []string // every dynamic key issued, hex, for the log check
	got     []platform.Header
	books   []*platform.Book
	open    []net.Conn
	wg      sync.WaitGroup
	stopped bool
}

const testAuthCode = "QC0769LOADFEP0000001"

var testLTK = mustHex("404142434445464748494A4B4C4D4E4F")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func newStandin(t *testing.T) *standin {
	t.Helper()
	ks, err := platform.SignInKey(testLTK)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &standin{t: t, ln: ln, ltk: testLTK, ks: ks, next: 700}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

func (s *standin) addr() string { return s.ln.Addr().String() }

func (s *standin) stop() {
	s.mu.Lock()
	s.stopped = true
	for _, c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// forget drops the session as a platform restart would: every request of the old batch
// is answered A1 from now on.
func (s *standin) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = 0
}

func (s *standin) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.open = append(s.open, c)
		s.mu.Unlock()
		s.conns.Add(1)
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *standin) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	var wmu sync.Mutex
	write := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = frame.Write(c, b)
	}
	for {
		p, err := frame.Read(c, 0)
		if err != nil {
			return
		}
		h, err := platform.PeekHeader(p)
		if err != nil {
			s.t.Errorf("standin: bad header: %v", err)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, h)
		s.mu.Unlock()
		if h.Type == platform.TypeSignIn {
			write(s.signIn(p))
			continue
		}
		s.mu.Lock()
		batch, dk := s.batch, s.dk
		s.mu.Unlock()
		if h.Batch != batch || batch == 0 {
			write(s.unsigned(h, platform.StaleKey))
			continue
		}
		_, m, err := platform.Unpack(p, dk)
		if err != nil {
			s.t.Errorf("standin: request refused: %v", err)
			write(s.unsigned(h, platform.MACError))
			continue
		}
		switch m := m.(type) {
		case *platform.Heartbeat:
			if s.dropHeartbeats.Load() > 0 {
				s.dropHeartbeats.Add(-1)
				continue
			}
			write(s.pack(h, platform.OK, &platform.HeartbeatResponse{}, dk))
		case *platform.SignOut:
			s.mu.Lock()
			s.batch = 0
			s.mu.Unlock()
			write(s.pack(h, platform.OK, &platform.SignOutResponse{}, dk))
		case *platform.CardCheck:
			resp := s.pack(h, platform.OK, &platform.CardCheckResponse{Reference: refFor(m)}, dk)
			if m.Card.AppSerial[7] == 0x01 { // the blocked card of these tests
				resp = s.pack(h, platform.CardBlocked, &platform.CardCheckResponse{}, dk)
			}
			if d := time.Duration(s.checkDelay.Load()); d > 0 {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					time.Sleep(d)
					write(resp)
				}()
				continue
			}
			write(resp)
		case *platform.Book:
			s.mu.Lock()
			s.books = append(s.books, m)
			s.mu.Unlock()
			issued := &platform.Issued{MAC2: [4]byte{0xD1, 0x4D, 0xBB, 0x02}, HostTime: platform.HostTimeOf(time.Date(2024, 3, 15, 14, 30, 0, 0, time.UTC))}
			write(s.pack(h, platform.OK, &platform.BookResponse{Reference: m.Reference, Issued: issued}, dk))
		default:
			write(s.unsigned(h, platform.FormatError))
		}
	}
}

func refFor(m *platform.CardCheck) string {
	return fmt.Sprintf("20240315%06s%06s", m.Kiosk.Trace, "000042")
}

func (s *standin) signIn(p []byte) []byte {
	h, m, err := platform.UnpackAs[*platform.SignIn](p, s.ks)
	if err != nil || m.AuthCode != testAuthCode {
		s.t.Errorf("standin: SIGN-IN refused: %v", err)
		return s.unsigned(h, platform.AuthRefused)
	}
	dk := make([]byte, 16)
	_, _ = rand.Read(dk)
	block, kcv, err := platform.WrapDynamicKey(s.ltk, dk)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.next++
	s.batch, s.dk = s.next, platform.SoftMAC(dk)
	s.dks = append(s.dks, hex.EncodeToString(dk))
	batch := s.batch
	s.mu.Unlock()
	s.signIns.Add(1)
	r := platform.Header{Result: platform.OK, Seq: h.Seq, Batch: batch, Time: platform.HostTimeOf(time.Now())}
	b, err := platform.Pack(r, &platform.SignInResponse{Key: &platform.WrappedKey{Block: block, KCV: kcv}}, s.ks)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func (s *standin) pack(req platform.Header, code platform.Code, m platform.Message, k platform.MACer) []byte {
	h := platform.Header{Result: code, Seq: req.Seq, Batch: req.Batch, Time: platform.HostTimeOf(time.Now())}
	b, err := platform.Pack(h, m, k)
	if err != nil {
		s.t.Errorf("standin: pack %T: %v", m, err)
	}
	return b
}

// unsigned is a refusal with a zero MAC (platform.md 3.4).
func (s *standin) unsigned(req platform.Header, code platform.Code) []byte {
	var m platform.Message
	switch req.Type {
	case platform.TypeSignIn:
		m = &platform.SignInResponse{}
	case platform.TypeHeartbeat:
		m = &platform.HeartbeatResponse{}
	case platform.TypeSignOut:
		m = &platform.SignOutResponse{}
	case platform.TypeCardCheck:
		m = &platform.CardCheckResponse{}
	case platform.TypeBook:
		m = &platform.BookResponse{Reference: "00000000000000000000"}
	default:
		m = &platform.ConfirmResponse{Reference: "00000000000000000000"}
	}
	return s.pack(req, code, m, nil)
}

// requests returns the headers of the requests of type t received so far.
func (s *standin) requests(t platform.Type) []platform.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []platform.Header
	for _, h := range s.got {
		if h.Type == t {
			out = append(out, h)
		}
	}
	return out
}

func (s *standin) issuedKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.dks...)
}
