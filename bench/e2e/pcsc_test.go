package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/internal/testenv"
	"github.com/quancun/quancun/io/card/pcsc"
	"github.com/quancun/quancun/io/card/vpcd"
	"github.com/quancun/quancun/io/kiosk"
)

// TestLoadThroughRealReader runs a load whose card sits behind real pcscd (the virtual card
// served through vsmartcard's vpcd driver, read with the PC/SC reader of io/card/pcsc), with
// the FEP, platform and bank as processes, and ends with the money check.
func TestLoadThroughRealReader(t *testing.T) {
	testenv.RequirePCSC(t)
	f := start(t)
	c := f.w.Cards["card"]
	ctx, cancel := context.WithCancel(f.ctx)
	served := make(chan error, 1)
	go func() { served <- vpcd.Serve(ctx, "127.0.0.1:35964", c.Card, nil) }()
	var once sync.Once
	unplug := func() { once.Do(func() { cancel(); <-served }) } // the card leaves the reader
	defer unplug()
	open, cancelOpen := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancelOpen()
	r, err := pcsc.Open(open, "Virtual PCD 00 01")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := f.k.Load(f.ctx, simkiosk.LoadParams{Card: r, Amount: 650, BankCode: payer.Bank, PAN: payer.PAN, PIN: payer.PIN})
	t.Logf("%s", res)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != kiosk.Approved || res.Write != kiosk.Written || res.BalanceAfter != 1650 {
		t.Fatalf("load through PC/SC: %s; want approved, written, balance 1650", res)
	}
	unplug()
	r.Close()
	rep := f.check(500 * time.Millisecond)
	if rep.BankNet[bank] != 650 || rep.Written != 1 {
		t.Fatalf("bank net %d, written %d; want 650, 1", rep.BankNet[bank], rep.Written)
	}
}
