package pcsc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/quancun/quancun/internal/testenv"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/pcsc"
	"github.com/quancun/quancun/io/card/vpcd"
)

// The two readers of Debian's vpcd entry. Each test owns one reader for its whole run and the
// tests of this package do not run in parallel: one pcscd serves the machine.
const (
	reader0 = "Virtual PCD 00 00"
	addr0   = "127.0.0.1:35963"
	reader1 = "Virtual PCD 00 01"
	addr1   = "127.0.0.1:35964"
)

// echoCard answers every APDU with its own bytes and 9000; cmd "00 EE 00 00" pulls it.
type echoCard struct {
	pull func()
}

func (echoCard) ATR() []byte { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (echoCard) PowerOn()    {}
func (echoCard) PowerOff()   {}
func (c echoCard) Process(cmd []byte) []byte {
	if len(cmd) >= 2 && cmd[1] == 0xEE && c.pull != nil {
		c.pull()
	}
	return append(append([]byte{}, cmd...), 0x90, 0x00)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// inserted is a card being served into a vpcd reader.
type inserted struct {
	cancel context.CancelFunc // pulls the card; safe inside Card.Process (the answer is lost)
	wg     *sync.WaitGroup
}

// wait blocks until the card is out of the driver's hands (after cancel).
func (in inserted) wait() { in.wg.Wait() }

// pull takes the card out and waits until it is out.
func (in inserted) pull() { in.cancel(); in.wg.Wait() }

// insert serves c into the vpcd reader at addr until pulled (at the latest when t ends).
func insert(t *testing.T, addr, reader string, c vpcd.Card) inserted {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	return serve(t, ctx, cancel, addr, reader, c)
}

// serve serves c until ctx ends; cancel must end ctx. When t ends the card is pulled and the
// reader is left empty for the next test.
func serve(t *testing.T, ctx context.Context, cancel context.CancelFunc, addr, reader string, c vpcd.Card) inserted {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := vpcd.Serve(ctx, addr, c, testLogger(t)); err != nil {
			t.Errorf("vpcd.Serve: %v", err)
		}
	}()
	in := inserted{cancel: cancel, wg: &wg}
	t.Cleanup(func() {
		in.pull()
		waitEmpty(t, reader)
	})
	return in
}

func openReader(t *testing.T, name string) *pcsc.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := pcsc.Open(ctx, name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestListReaders(t *testing.T) {
	testenv.RequirePCSC(t)
	names, err := pcsc.ListReaders()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, n := range names {
		found[n] = true
	}
	if !found[reader0] || !found[reader1] {
		t.Fatalf("readers %q: want %q and %q (is vsmartcard-vpcd installed?)", names, reader0, reader1)
	}
}

func TestTransmitAndRemoval(t *testing.T) {
	testenv.RequirePCSC(t)
	ctx := context.Background()
	sctx, pull := context.WithCancel(ctx)
	// The card leaves the field from inside Process: the answer is never sent.
	serve(t, sctx, pull, addr0, reader0, echoCard{pull: pull})
	r := openReader(t, reader0)

	cmd := []byte{0x00, 0xB0, 0x95, 0x00, 0x1E}
	resp, err := r.Transmit(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp, append(cmd, 0x90, 0x00)) {
		t.Fatalf("echo = % X", resp)
	}

	// Pull the card while it processes a command: the reader must say "removed".
	resp, err = r.Transmit(ctx, []byte{0x00, 0xEE, 0x00, 0x00})
	if !errors.Is(err, card.ErrCardRemoved) {
		t.Fatalf("transmit while pulled: % X, %v, want card.ErrCardRemoved", resp, err)
	}
	if _, err := r.Transmit(ctx, cmd); !errors.Is(err, card.ErrCardRemoved) {
		t.Fatalf("transmit after pull: %v, want card.ErrCardRemoved", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.WaitForRemoval(wctx); err != nil {
		t.Fatalf("WaitForRemoval: %v", err)
	}

	// Re-insert: WaitForCard reconnects and the same Reader works again.
	insert(t, addr0, reader0, echoCard{})
	if err := r.WaitForCard(wctx); err != nil {
		t.Fatalf("WaitForCard: %v", err)
	}
	if resp, err := r.Transmit(ctx, cmd); err != nil || !bytes.Equal(resp, append(cmd, 0x90, 0x00)) {
		t.Fatalf("after re-insert: % X, %v", resp, err)
	}
}

func TestWaitForCardHonoursContext(t *testing.T) {
	testenv.RequirePCSC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Nothing serves reader 1 here, so Open must give up when ctx ends.
	_, err := pcsc.Open(ctx, reader1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open on an empty reader: %v, want context.DeadlineExceeded", err)
	}
}
