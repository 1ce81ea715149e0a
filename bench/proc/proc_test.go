package proc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartWaitStop(t *testing.T) {
	dir := t.TempDir()
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	// python3 is on every machine of this kind; a tiny listener stands in for a peer.
	p, err := Start("python3", dir, "listener", "-c",
		"import socket,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('127.0.0.1',"+port+"));s.listen();print('up',flush=True);time.sleep(60)")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitPort(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Exited(); !ok {
		t.Fatal("process still running after Stop")
	}
	b, _ := os.ReadFile(p.Log)
	if !strings.Contains(string(b), "up") {
		t.Fatalf("log %q lacks the process output", b)
	}
}

func TestWaitPortReportsEarlyExit(t *testing.T) {
	p, err := Start("sh", t.TempDir(), "quitter", "-c", "exit 3")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.WaitPort(ctx, "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitPort = %v, want an early-exit error", err)
	}
}
