package fep

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/persistence"
)

type psamMACer struct{ h *hsm.Soft }

func (p psamMACer) RequestMAC(psam kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	return p.h.PSAMMAC("psam", [][]byte{psam.Factor()}, mab)
}

type padMACer struct{ h *hsm.Soft }

func (p padMACer) ResponseMAC(_ string, mab []byte) ([8]byte, error) {
	var out [8]byte
	m, err := p.h.MAC("mak", hsm.MACX919, mab)
	copy(out[:], m)
	return out, err
}

// closedPort is a loopback address nobody listens on: the links stay down.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// TestStartServeStop runs the whole FEP with its links down: a kiosk signs in (TMK from
// the demo derivation), a load is refused at once with 92, and Stop releases the store.
func TestStartServeStop(t *testing.T) {
	dir := t.TempDir()
	text := strings.Replace(minimal, `addr = "127.0.0.1:1"`, `addr = "`+closedPort(t)+`"`, 1)
	text = strings.Replace(text, `addr = "127.0.0.1:2"`, `addr = "`+closedPort(t)+`"`, 1)
	text = strings.Replace(text, `tmk = "00112233445566778899AABBCCDDEEFF"`, ``, 1)
	text += "[fep]\ndata_dir = \"" + dir + "\"\nkiosk_listen = \"127.0.0.1:0\"\n" +
		"demo_tmk_master = \"0F1E2D3C4B5A69788796A5B4C3D2E1F0\"\n[limits]\ndrain = \"200ms\"\n"
	cfg, err := ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	// The kiosk side: PSAM master and the derived TMK.
	kh, _ := hsm.NewSoft([]byte("kiosk-side-mast!"), nil)
	pm, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	kh.ImportClear("psam", hsm.UsagePSAMMaster, pm)
	tmk, _ := cfg.TMK(0)
	kh.ImportClear("tmk", hsm.UsageKEK, tmk)
	nc, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	env := kiosk.Envelope{Header: kiosk.Header{Dest: 1, Src: 2}, Trace: "000001", Date: time.Now().Format("20060102"),
		Time: "120000", Terminal: "KIOSK001", PSAM: kiosk.PSAMNo{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}}
	roundTrip := func(r kiosk.Request) []byte {
		t.Helper()
		b, err := r.Pack(psamMACer{kh})
		if err != nil {
			t.Fatal(err)
		}
		frame.Write(nc, b)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, err := frame.Read(nc, 4096)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var si kiosk.SignInResponse
	if err := si.Unpack(roundTrip(&kiosk.SignIn{Envelope: env})); err != nil || si.Result != kiosk.Approved {
		t.Fatalf("sign-in %v %v", si.String(), err)
	}
	if _, err := kh.Import("mak", hsm.UsageMAC, "tmk", si.Keys.MAK[:], si.Keys.MAKKCV[:]); err != nil {
		t.Fatalf("MAK under the derived TMK: %v", err)
	}
	env.Trace, env.Batch = "000002", si.Batch
	load := &kiosk.Load{Envelope: env, Amount: 100, BankCode: "0102000001", PAN: "6222021234567890123",
		Card: kiosk.CardID{City: [2]byte{0x20, 0x00}}}
	start := time.Now()
	resp, err := kiosk.ReadResponse(roundTrip(load), padMACer{kh})
	if err != nil {
		t.Fatal(err)
	}
	if lr := resp.(*kiosk.LoadResponse); lr.Result != kiosk.PlatformDown || time.Since(start) > time.Second {
		t.Fatalf("load with links down: %s after %v", lr.String(), time.Since(start))
	}
	for _, l := range f.Links() {
		if l.Up {
			t.Fatalf("link %s up with nobody listening", l.Link)
		}
	}
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	// The store is closed: it opens again, and the kiosk port is gone.
	s, err := persistence.Open(dir, persistence.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("store still held after Stop: %v", err)
	}
	s.Close()
	if c, err := net.DialTimeout("tcp", f.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("kiosk port still open after Stop")
	}
}
