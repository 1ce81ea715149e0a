package simplatform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/platform"
)

// testPlatform is a Server running on 127.0.0.1 port 0 with its own data dir.
type testPlatform struct {
	*Server
	dir  string
	stop func()
}

func startPlatform(t *testing.T, dir string, mutate func(*Config), opts ...Option) *testPlatform {
	t.Helper()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Blocked: []string{"00000000DEADBEEF"}}
	cfg.FTP.Listen = "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(cfg, logger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tp := &testPlatform{Server: s, dir: dir}
	stopped := false
	tp.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(tp.stop)
	return tp
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// fep plays the FEP side of the link with io/platform.
type fep struct {
	t     *testing.T
	c     net.Conn
	seq   uint32
	batch uint32
	dk    platform.MACer
	clock func() time.Time
}

func dialFEP(t *testing.T, p *testPlatform) *fep {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fep{t: t, c: c, clock: time.Now}
}

func (f *fep) now() platform.HostTime { return platform.HostTimeOf(f.clock().In(chinaTime)) }

// roundTrip sends one frame and reads one answer (nil after timeout).
func (f *fep) roundTrip(b []byte, timeout time.Duration) []byte {
	f.t.Helper()
	if err := frame.Write(f.c, b); err != nil {
		f.t.Fatal(err)
	}
	f.c.SetReadDeadline(time.Now().Add(timeout))
	defer f.c.SetReadDeadline(time.Time{})
	out, err := frame.Read(f.c, 0)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fep) signIn(auth string) (platform.Header, *platform.SignInResponse) {
	f.t.Helper()
	ks, err := platform.SignInKey(mustHex(DefaultLTK))
	if err != nil {
		f.t.Fatal(err)
	}
	f.seq++
	b, err := platform.Pack(platform.Header{Seq: f.seq, Time: f.now()}, &platform.SignIn{AuthCode: auth}, platform.SoftMAC(ks))
	if err != nil {
		f.t.Fatal(err)
	}
	h, m, err := platform.UnpackAs[*platform.SignInResponse](f.roundTrip(b, 5*time.Second), platform.SoftMAC(ks))
	if err != nil {
		f.t.Fatal(err)
	}
	if h.Result == platform.OK {
		dk, err := platform.UnwrapDynamicKey(mustHex(DefaultLTK), m.Key.Block, m.Key.KCV)
		if err != nil {
			f.t.Fatal(err)
		}
		f.batch, f.dk = h.Batch, platform.SoftMAC(dk)
	}
	return h, m
}

// call sends m in the current batch under the current dynamic key and returns the answer.
func (f *fep) call(m platform.Message) (platform.Header, platform.Message) {
	f.t.Helper()
	f.seq++
	b, err := platform.Pack(platform.Header{Seq: f.seq, Batch: f.batch, Time: f.now()}, m, f.dk)
	if err != nil {
		f.t.Fatal(err)
	}
	h, resp, err := platform.Unpack(f.roundTrip(b, 5*time.Second), f.dk)
	if err != nil {
		f.t.Fatalf("%s: %v", m.Type(), err)
	}
	if h.Seq != f.seq || h.Type != m.Type().Response() {
		f.t.Fatalf("answer %s seq %d to %s seq %d", h.Type, h.Seq, m.Type(), f.seq)
	}
	return h, resp
}

// expect calls m and fails unless the result is want.
func expect[T platform.Message](f *fep, m platform.Message, want platform.Code) T {
	f.t.Helper()
	h, resp := f.call(m)
	if h.Result != want {
		f.t.Fatalf("%s: result %s (%+v), want %s", m.Type(), h.Result, resp, want)
	}
	return resp.(T)
}

// kiosk holds a virtual card in an in-process reader and talks to it with io/card.
type kiosk struct {
	t      *testing.T
	vc     *vcard.Card
	rd     *card.InProcessReader
	ep     *card.EP
	serial [8]byte
	term   [6]byte
	trace  int
}

func newKiosk(t *testing.T, serialHex string, balance uint32, online uint16) *kiosk {
	t.Helper()
	ef15 := mustHex("869820007590000001052000000000001234567820240101203412310100")
	copy(ef15[12:20], mustHex(serialHex))
	st, err := vcard.NewCardState(mustHex(DefaultMDLK), mustHex(DefaultMTK), ef15, balance, 200000, online)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vcard.NewCard(st)
	if err != nil {
		t.Fatal(err)
	}
	rd := card.NewInProcessReader(vc)
	k := &kiosk{t: t, vc: vc, rd: rd, ep: card.NewEP(rd), term: [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}}
	copy(k.serial[:], ef15[12:20])
	k.selectApp()
	return k
}

func (k *kiosk) selectApp() {
	k.t.Helper()
	if _, err := k.ep.SelectApp(context.Background(), card.AIDMOHURD()); err != nil {
		k.t.Fatal(err)
	}
}

// initLoad runs INITIALIZE FOR LOAD and returns it as the link carries it.
func (k *kiosk) initLoad(amount uint32) platform.CardInit {
	k.t.Helper()
	r, err := k.ep.InitForLoad(context.Background(), 1, amount, k.term)
	if err != nil {
		k.t.Fatal(err)
	}
	return platform.CardInit{AppSerial: k.serial, KeyIndex: 1, OldBalance: r.OldBalance, Serial: r.Serial,
		KeyVersion: r.KeyVersion, AlgID: r.AlgID, Random: r.Random, MAC1: r.MAC1, Amount: amount, TermID: k.term}
}

func (k *kiosk) check(amount uint32) *platform.CardCheck {
	k.trace++
	return &platform.CardCheck{Card: k.initLoad(amount), BankCode: "0102000001",
		Kiosk: platform.KioskRef{Terminal: "KIOSK001", Trace: sixDigits(k.trace), Date: "20240315"}}
}

func (k *kiosk) credit(i *platform.Issued) ([4]byte, error) {
	return k.ep.CreditForLoad(context.Background(), i.HostTime, i.MAC2)
}

func (k *kiosk) balance() uint32 { return k.vc.State().Balance }

func sixDigits(n int) string { return fmt.Sprintf("%06d", n) }

func serialHex(k *kiosk) string { return hexU(k.serial[:]) }
