package dial

import (
	"net"
	"sync"
	"testing"
	"time"
)

func TestTakeOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	got := make(chan error, 1)
	a := Start(&wg, l.Addr().String(), time.Second, func(_ *Attempt, err error) { got <- err })
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	c := a.Take()
	if c == nil {
		t.Fatal("no connection")
	}
	defer c.Close()
	if a.Take() != nil {
		t.Fatal("a connection was handed out twice")
	}
	wg.Wait()
}

func TestAbortClosesALateConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	got := make(chan error, 1)
	a := Start(&wg, l.Addr().String(), time.Second, func(_ *Attempt, err error) { got <- err })
	<-got
	a.Abort()
	if a.Take() != nil {
		t.Fatal("Take after Abort returned a connection")
	}
	// The server side sees the connection closed.
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("aborted connection still open")
	}
	wg.Wait()
}

func TestDialErrorReported(t *testing.T) {
	var wg sync.WaitGroup
	got := make(chan error, 1)
	Start(&wg, "127.0.0.1:1", time.Second, func(_ *Attempt, err error) { got <- err })
	if err := <-got; err == nil {
		t.Fatal("dial to a closed port reported no error")
	}
	wg.Wait()
}
