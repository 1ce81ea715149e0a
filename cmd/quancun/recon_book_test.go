package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/actors/fep"
	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
	"github.com/quancun/quancun/recon"
)

// TestReconBookMissing makes outcome 1 for real — the platform checked the card and issued
// a reference, the bank debited, the platform never booked — and books it with
// `recon run --book`'s session: the platform's own journal then holds the booking, and a
// second run books nothing twice.
func TestReconBookMissing(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	platDir := t.TempDir()
	plat, err := simplatform.New(simplatform.Config{DataDir: platDir, Listen: "127.0.0.1:0",
		AuthCodes: []string{tAuth}, LTK: "11111111111111112222222222222222",
		FTP: simplatform.FTPConfig{Listen: "off"}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := plat.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plat.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The FEP's config and store, pointing at this platform.
	cfgPath, _, _ := writeReconWorld(t, "")
	b, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `addr = "127.0.0.1:1"`, fmt.Sprintf("addr = %q", plat.Addr().String()), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := fep.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	// CARD CHECK with a real card's INIT FOR LOAD: the platform issues a reference.
	master := func(s string) []byte { k, _ := hex.DecodeString(s); return k }
	ef15, _ := hex.DecodeString("869820007590000001052000000000001234567820240101203412310100")
	st, err := vcard.NewCardState(master("11111111111111112222222222222222"), master("33333333333333334444444444444444"), ef15, 1000, 100000, 3)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := vcard.NewCard(st)
	if err != nil {
		t.Fatal(err)
	}
	ep := card.NewEP(card.NewInProcessReader(vc))
	if _, err := ep.SelectApp(ctx, card.AIDMOHURD()); err != nil {
		t.Fatal(err)
	}
	term := [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	init, err := ep.InitForLoad(ctx, 1, 2500, term)
	if err != nil {
		t.Fatal(err)
	}
	s, err := persistence.Open(cfg.FEP.DataDir, persistence.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := fep.OpenPlatformSession(ctx, cfg, s, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var serial [8]byte
	copy(serial[:], ef15[12:20])
	ans, err := sess.Request(messages.PlatformCheck{ReqID: "c1", Terminal: "KIOSK001", KioskTrace: "000777", Amount: 2500,
		BankCode: tBank, Card: messages.CardInit{AppSerial: serial, OldBalance: init.OldBalance, Serial: init.Serial,
			KeyIndex: 1, KeyVersion: init.KeyVersion, AlgID: init.AlgID, Random: init.Random, MAC1: init.MAC1, TermID: term}}, 10*time.Second)
	sess.Close()
	chk, ok := ans.(messages.PlatformCheckResult)
	if err != nil || !ok || chk.Ref == "" {
		t.Fatalf("card check: %+v %v", ans, err)
	}
	// The FEP's record of it: the bank approved (RRN, settlement date), BOOK never answered.
	rec := loads.Record{V: 1, State: txn.State{ID: "KIOSK001-000777", Phase: txn.PhaseDone, Terminal: "KIOSK001",
		Amount: 2500, BankCode: tBank, STAN: "000777", Ref: chk.Ref, BankResp: "00", RRN: "000000000777",
		AuthCode: "000777", SettleDate: "0127", Txn: txn.TxnS, Write: txn.WriteF, Started: time.Now()}}
	ops, err := recordOps(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for round := 1; round <= 2; round++ {
		out, err := bookMissing(ctx, cfg, []recon.Item{{Outcome: recon.PlatformMissing, Ref: chk.Ref}}, io.Discard)
		if err != nil || len(out) != 1 || !strings.Contains(out[0], "booked, 2500 fen") {
			t.Fatalf("round %d: %v %v", round, out, err)
		}
	}
	j, err := simplatform.LoadJournal(platDir)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := j.Load(chk.Ref)
	if !ok || !l.Booked || l.BankRRN != "000000000777" || l.Amount != 2500 || j.BookedTotal() != 2500 {
		t.Fatalf("platform journal: %+v booked total %d", l, j.BookedTotal())
	}
	if _, err := os.Stat(filepath.Join(platDir, simplatform.JournalFile)); err != nil {
		t.Fatal(err)
	}
}

// recordOps stores a record (in the JSON form DecodeRecord reads, as recon_test does) with
// its reference index.
func recordOps(r loads.Record) ([]persistence.Op, error) {
	v, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return []persistence.Op{{Key: loads.TxnKey(r.State.ID), Value: v}, {Key: loads.RefKey(r.State.Ref), Value: []byte(r.State.ID)}}, nil
}
