package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quancun/quancun/io/frame"
)

// echoServer answers every byte it reads with the same byte: a peer that repeats each frame.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T, f Faults) (*Proxy, net.Conn) {
	t.Helper()
	p, err := New(echoServer(t), Options{Seed: 7, Faults: f, Name: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

func send(t *testing.T, c net.Conn, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := frame.Write(c, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
}

// recv reads frames until n arrived or wait passed with nothing more.
func recv(c net.Conn, n int, wait time.Duration) ([]string, error) {
	var got []string
	for len(got) < n {
		c.SetReadDeadline(time.Now().Add(wait))
		b, err := frame.Read(c, 0)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, nil
			}
			return got, err
		}
		got = append(got, string(b))
	}
	return got, nil
}

func TestPassThrough(t *testing.T) {
	p, c := start(t, None)
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprintf("msg-%02d-%s", i, bytes.Repeat([]byte{'x'}, i*20)))
	}
	send(t, c, want...)
	got, err := recv(c, len(want), 2*time.Second)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %d messages (%v), want the %d sent in order", len(got), err, len(want))
	}
	if s := p.Stats(); s.Forwarded != 100 || s.Conns != 1 || s.Dropped != 0 {
		t.Fatalf("stats %+v, want 100 forwarded over 1 connection", s)
	}
}

func TestDrop(t *testing.T) {
	p, c := start(t, Faults{Drop: 1, Only: Up})
	send(t, c, "lost")
	if got, _ := recv(c, 1, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("dropped message came back: %v", got)
	}
	p.SetFaults(None) // switched at run time, same connection
	send(t, c, "kept")
	if got, err := recv(c, 1, 2*time.Second); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("after SetFaults(None): %v %v", got, err)
	}
	if s := p.Stats(); s.Dropped != 1 {
		t.Fatalf("dropped %d, want 1", s.Dropped)
	}
}

func TestDuplicate(t *testing.T) {
	p, c := start(t, Faults{Duplicate: 1}) // both ways: 1 up becomes 2, each comes back twice
	send(t, c, "twice")
	got, err := recv(c, 5, 500*time.Millisecond)
	if err != nil || len(got) != 4 {
		t.Fatalf("got %v (%v), want 4 copies", got, err)
	}
	if s := p.Stats(); s.Duplicated != 3 {
		t.Fatalf("duplicated %d, want 3", s.Duplicated)
	}
}

func TestReorder(t *testing.T) {
	p, c := start(t, Faults{Reorder: 1, Only: Up, HoldMax: 300 * time.Millisecond})
	send(t, c, "one", "two", "three")
	got, err := recv(c, 3, 2*time.Second)
	// "one" is held and goes after "two"; "three" is held with no successor and is
	// released at HoldMax, not lost.
	if err != nil || fmt.Sprint(got) != "[two one three]" {
		t.Fatalf("got %v (%v), want [two one three]", got, err)
	}
	if s := p.Stats(); s.Reordered != 2 {
		t.Fatalf("reordered %d, want 2", s.Reordered)
	}
}

func TestDelay(t *testing.T) {
	p, c := start(t, Faults{Delay: 1, Only: Down, DelayMin: 250 * time.Millisecond, DelayMax: 250 * time.Millisecond})
	t0 := time.Now()
	send(t, c, "slow")
	got, err := recv(c, 1, 2*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v %v", got, err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Fatalf("round trip %v, want at least the 250ms delay", d)
	}
	if p.Stats().Delayed != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func TestCut(t *testing.T) {
	p, c := start(t, Faults{Cut: 1})
	send(t, c, "bye")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := frame.Read(c, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("read after cut: %v, want EOF", err)
	}
	if p.Stats().Cuts != 1 {
		t.Fatalf("cuts %d", p.Stats().Cuts)
	}
	// The proxy still accepts: the dialler reconnects, as the FEP's links do.
	p.SetFaults(None)
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	send(t, c2, "again")
	if got, err := recv(c2, 1, 2*time.Second); len(got) != 1 {
		t.Fatalf("after reconnect: %v %v", got, err)
	}
}

func TestPauseResumeAndCutAll(t *testing.T) {
	p, c := start(t, None)
	p.Pause()
	send(t, c, "into the hole")
	if got, _ := recv(c, 1, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("paused link let %v through", got)
	}
	p.Resume()
	send(t, c, "through")
	if got, err := recv(c, 1, 2*time.Second); len(got) != 1 || got[0] != "through" {
		t.Fatalf("after resume: %v %v", got, err)
	}
	p.CutAll()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := frame.Read(c, 0); err == nil {
		t.Fatal("connection alive after CutAll")
	}
}

// TestTargetDown: with the far end gone, a connection through the proxy dies at once.
func TestTargetDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p, err := New(addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := frame.Read(c, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want EOF", err)
	}
}

// TestSeeded: the same seed gives the same sequence of choices.
func TestSeeded(t *testing.T) {
	f := Faults{Drop: 0.2, Duplicate: 0.2, Reorder: 0.1, Delay: 0.1, Cut: 0.05}
	seq := func(seed uint64) string {
		p, err := New("127.0.0.1:1", Options{Seed: seed, Faults: f})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		var b bytes.Buffer
		for range 200 {
			a, d, _ := p.decide(Up)
			fmt.Fprintf(&b, "%d:%d ", a, d)
		}
		return b.String()
	}
	a, b, c := seq(1), seq(1), seq(2)
	if a != b {
		t.Fatal("same seed, different choices")
	}
	if a == c {
		t.Fatal("different seeds, same 200 choices")
	}
	for _, act := range []action{pass, drop, delay, duplicate, reorder, cut} {
		if !bytes.Contains([]byte(a), []byte(fmt.Sprintf("%d:", act))) {
			t.Errorf("action %d never chosen in 200 draws", act)
		}
	}
}
