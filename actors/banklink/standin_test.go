package banklink

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
)

// standin is a small bank host for these tests (the real simulated bank is bench/simbank):
// it answers sign-on with fresh working keys under the shared ZMK, checks the PIN of every
// 0200 under its PIK and the MAC of every 0200/0400 under its MAK, and can be told to
// misbehave (bad KCV, silent on echoes, ignore the next reversals, hold debits).
type standin struct {
	t   *testing.T
	ln  net.Listener
	d   bank.Dialect
	hsm *hsm.Soft
	pin string // the cardholder's PIN

	badKCV          atomic.Bool
	ignoreEchoes    atomic.Bool
	holdDebits      atomic.Bool
	badResponseMAC  atomic.Bool // flip a bit of the next 0210's F64
	duplicate0210   atomic.Bool // send every 0210 twice
	ignoreReversals atomic.Int32

	conns, signOns, echoes atomic.Int32

	mu       sync.Mutex
	got      []bank.Message // every request received, in order
	debitLog []debitSeen
	open     []net.Conn
	wg       sync.WaitGroup
}

type debitSeen struct {
	debit bank.Debit
	pinOK bool
	macOK bool
}

var (
	testZMK      = mustHex("00112233445566778899AABBCCDDEEFF")
	testKioskPIK = mustHex("0123456789ABCDEFFEDCBA9876543210")
	testMaster   = mustHex("F0E1D2C3B4A5968778695A4B3C2D1E0F")
	bankMaster   = mustHex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func newStandin(t *testing.T, d bank.Dialect, pin string) *standin {
	t.Helper()
	m, err := hsm.NewSoft(bankMaster, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportClear("zmk", hsm.UsageKEK, testZMK); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &standin{t: t, ln: ln, d: d, hsm: m, pin: pin}
	s.newKeys()
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *standin) addr() string { return s.ln.Addr().String() }

// newKeys generates the working keys the next sign-on hands out.
func (s *standin) newKeys() {
	if _, err := s.hsm.Generate("pik", hsm.UsagePIN); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.hsm.Generate("mak", hsm.UsageMAC); err != nil {
		s.t.Fatal(err)
	}
}

func (s *standin) kcv(name string) string {
	i, err := s.hsm.Info(name)
	if err != nil {
		s.t.Fatal(err)
	}
	return i.KCV
}

func (s *standin) close() {
	s.ln.Close()
	s.dropConns()
	s.wg.Wait()
}

// dropConns closes every connection the stand-in accepted (a network cut).
func (s *standin) dropConns() {
	s.mu.Lock()
	for _, c := range s.open {
		c.Close()
	}
	s.open = nil
	s.mu.Unlock()
}

func (s *standin) messages() []bank.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bank.Message(nil), s.got...)
}

func (s *standin) debits() []debitSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]debitSeen(nil), s.debitLog...)
}

func (s *standin) reversals() []*bank.Reversal {
	var out []*bank.Reversal
	for _, m := range s.messages() {
		if r, ok := m.(*bank.Reversal); ok {
			out = append(out, r)
		}
	}
	return out
}

func (s *standin) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open = append(s.open, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *standin) macer() bank.MACer {
	alg := hsm.MACCUPS
	if s.d.MAC == bank.MACX919 {
		alg = hsm.MACX919
	}
	return bank.MACFunc(func(mab []byte) ([]byte, error) { return s.hsm.MAC("mak", alg, mab) })
}

func (s *standin) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	send := func(m bank.Message, maced bool) {
		var p []byte
		var err error
		if maced {
			p, err = s.d.PackMACed(m, s.macer())
		} else {
			p, err = s.d.Pack(m)
		}
		if err != nil {
			s.t.Errorf("stand-in pack: %v", err)
			return
		}
		_ = frame.Write(c, p)
	}
	for {
		p, err := frame.Read(c, 0)
		if err != nil {
			return
		}
		fr, err := s.d.Decode(p)
		if err != nil {
			s.t.Errorf("stand-in got an undecodable frame: %v", err)
			continue
		}
		s.mu.Lock()
		s.got = append(s.got, fr.Msg)
		s.mu.Unlock()
		now := time.Now()
		switch m := fr.Msg.(type) {
		case *bank.SignOn:
			s.signOns.Add(1)
			pik, pikKCV, err1 := s.hsm.Export("pik", "zmk")
			mak, makKCV, err2 := s.hsm.Export("mak", "zmk")
			if err := errors.Join(err1, err2); err != nil {
				s.t.Errorf("stand-in export: %v", err)
				return
			}
			if s.badKCV.Load() {
				makKCV[0] ^= 0xFF
			}
			send(&bank.SignOnResponse{STAN: m.STAN, LocalTime: now.Format("150405"), LocalDate: now.Format("0102"),
				Code: "00", Terminal: m.Terminal, Batch: 7,
				Keys: bank.WorkingKeys{PIK: pik, PIKKCV: pikKCV, MAK: mak, MAKKCV: makKCV}}, false)
		case *bank.Echo:
			s.echoes.Add(1)
			if s.ignoreEchoes.Load() {
				continue
			}
			send(&bank.EchoResponse{NetResponse: bank.NetResponse{STAN: m.STAN, Code: "00", Terminal: m.Terminal,
				Batch: m.Batch, LocalDate: now.Format("0102")}}, false)
		case *bank.SignOff:
			send(&bank.SignOffResponse{NetResponse: bank.NetResponse{STAN: m.STAN, Code: "00", Terminal: m.Terminal, Batch: m.Batch}}, false)
		case *bank.Debit:
			seen := debitSeen{debit: *m, macOK: fr.VerifyMAC(bank.Recompute(s.macer())) == nil}
			if m.PINBlock != nil {
				ok, err := s.hsm.PINMatches("pik", m.PAN, m.PINBlock, s.pin)
				seen.pinOK = err == nil && ok
			}
			s.mu.Lock()
			s.debitLog = append(s.debitLog, seen)
			s.mu.Unlock()
			if s.holdDebits.Load() {
				continue
			}
			code := "00"
			switch {
			case !seen.macOK:
				code = "A0"
			case !seen.pinOK:
				code = "55"
			}
			r := m.Response(code)
			r.LocalTime, r.LocalDate, r.SettleDate = now.Format("150405"), now.Format("0102"), now.Format("0102")
			r.RRN, r.Private = "123456789012", m.Private
			if code == "00" {
				r.AuthCode = "A1B2C3"
			}
			if s.badResponseMAC.CompareAndSwap(true, false) {
				p, err := s.d.PackMACed(&r, s.macer())
				if err != nil {
					s.t.Errorf("stand-in pack: %v", err)
					return
				}
				p[len(p)-1] ^= 0x01
				_ = frame.Write(c, p)
				continue
			}
			send(&r, true)
			if s.duplicate0210.Load() {
				send(&r, true)
			}
		case *bank.Reversal:
			if fr.VerifyMAC(bank.Recompute(s.macer())) != nil {
				s.t.Errorf("stand-in: reversal MAC does not verify")
			}
			if s.ignoreReversals.Add(-1) >= 0 {
				continue
			}
			r := m.Response("00")
			r.LocalTime, r.LocalDate, r.RRN = now.Format("150405"), now.Format("0102"), "123456789013"
			send(&r, true)
		default:
			s.t.Errorf("stand-in: unexpected %T", m)
		}
	}
}

// lockedBuffer collects the link's log so tests can check what it never prints.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
