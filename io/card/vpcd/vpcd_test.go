package vpcd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quancun/quancun/io/frame"
)

// fakeCard echoes APDUs with 9000 appended and records power events.
type fakeCard struct {
	mu     sync.Mutex
	events []string
	onCmd  func(cmd []byte) // called inside Process, before it returns
}

func (f *fakeCard) log(s string) { f.mu.Lock(); f.events = append(f.events, s); f.mu.Unlock() }
func (f *fakeCard) ATR() []byte  { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (f *fakeCard) PowerOn()     { f.log("on") }
func (f *fakeCard) PowerOff()    { f.log("off") }
func (f *fakeCard) Process(cmd []byte) []byte {
	f.log("apdu")
	if f.onCmd != nil {
		f.onCmd(cmd)
	}
	if bytes.Equal(cmd, []byte{0xEE, 0xEE}) {
		return nil // misbehaving card: must still produce a status word on the wire
	}
	return append(append([]byte{}, cmd...), 0x90, 0x00)
}
func (f *fakeCard) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// driver is the reader side over a real TCP listener, as libifdvpcd would be.
type driver struct {
	t  *testing.T
	ln net.Listener
}

func newDriver(t *testing.T) *driver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &driver{t: t, ln: ln}
}

func (d *driver) accept() net.Conn {
	d.t.Helper()
	d.ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := d.ln.Accept()
	if err != nil {
		d.t.Fatalf("accept: %v", err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg []byte) []byte {
	t.Helper()
	if err := frame.Write(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := frame.Read(c, 0)
	if err != nil {
		t.Fatalf("read reply to % X: %v", msg, err)
	}
	return resp
}

func TestServeAnswersDriver(t *testing.T) {
	d := newDriver(t)
	card := &fakeCard{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, d.ln.Addr().String(), card, slog.New(slog.DiscardHandler)) }()
	c := d.accept()

	if got := roundTrip(t, c, []byte{ctlGetATR}); !bytes.Equal(got, card.ATR()) {
		t.Fatalf("ATR = % X", got)
	}
	if err := frame.Write(c, []byte{ctlPowerOn}); err != nil {
		t.Fatal(err)
	}
	apdu := []byte{0x80, 0x5C, 0x00, 0x02, 0x04}
	if got := roundTrip(t, c, apdu); !bytes.Equal(got, append(apdu, 0x90, 0x00)) {
		t.Fatalf("APDU reply = % X", got)
	}
	if got := roundTrip(t, c, []byte{0xEE, 0xEE}); !bytes.Equal(got, []byte{0x6F, 0x00}) {
		t.Fatalf("empty card answer sent as % X, want 6F00", got)
	}
	if err := frame.Write(c, []byte{ctlReset}); err != nil {
		t.Fatal(err)
	}
	// A round trip after the reset proves the reset was handled before it.
	roundTrip(t, c, []byte{ctlGetATR})
	want := []string{"on", "apdu", "apdu", "off", "on"}
	if got := card.Events(); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}

	// The driver drops the card: Serve reconnects.
	c.Close()
	c2 := d.accept()
	if got := roundTrip(t, c2, []byte{ctlGetATR}); !bytes.Equal(got, card.ATR()) {
		t.Fatalf("ATR after reconnect = % X", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	// Cancelling pulls the card: the driver sees the connection close.
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := frame.Read(c2, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("driver read after pull = %v, want EOF", err)
	}
}

func TestServeWaitsForDriver(t *testing.T) {
	// Reserve a port, free it, start serving, then listen: Serve must retry until it connects.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, addr, &fakeCard{}, nil)
	time.Sleep(150 * time.Millisecond) // at least one refused dial
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	d := &driver{t: t, ln: ln}
	t.Cleanup(func() { ln.Close() })
	c := d.accept()
	if got := roundTrip(t, c, []byte{ctlGetATR}); len(got) == 0 {
		t.Fatal("no ATR")
	}
}

func TestCancelDuringProcessDropsAnswer(t *testing.T) {
	d := newDriver(t)
	ctx, cancel := context.WithCancel(context.Background())
	card := &fakeCard{onCmd: func(cmd []byte) {
		if cmd[1] == 0x52 { // CREDIT FOR LOAD: commit, then leave the field
			cancel()
		}
	}}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, d.ln.Addr().String(), card, nil) }()
	c := d.accept()
	if err := frame.Write(c, []byte{0x80, 0x52, 0x00, 0x00, 0x0B}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := frame.Read(c, 0); err == nil {
		t.Fatalf("got answer % X after the card was pulled", resp)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ev := card.Events(); ev[len(ev)-1] != "off" {
		t.Fatalf("card not powered off when pulled: %v", ev)
	}
}

func TestServeRejectsBadAddress(t *testing.T) {
	if err := Serve(context.Background(), "no-port", &fakeCard{}, nil); err == nil {
		t.Fatal("Serve accepted an address without a port")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzAnswer: whatever the driver sends, the card side neither panics nor sends an empty frame.
func FuzzAnswer(f *testing.F) {
	for _, s := range [][]byte{{0}, {1}, {2}, {4}, {9}, {}, {0x00, 0xA4, 0x04, 0x00}, {0xEE, 0xEE}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		reply := answer(&fakeCard{}, msg)
		if len(msg) > 1 && len(reply) == 0 {
			t.Fatalf("APDU % X got no reply", msg)
		}
		if len(msg) == 1 && msg[0] == ctlGetATR && len(reply) == 0 {
			t.Fatal("no ATR")
		}
	})
}
