package fep

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/bench/simbank"
	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/bench/world"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/persistence"
)

// syncBuffer is a log sink the FEP's goroutines may write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDiskTrouble: the FEP's store stops taking writes (here: closed under the running FEP,
// which is what the store turns into after a failed write — every later write refused). A
// kiosk's new LOAD is then refused with 96 at once, nothing reaches the bank or the
// platform for it, the log says why, and the load acknowledged before is on disk, final, after
// a restart — which takes loads again.
func TestDiskTrouble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the platform and a bank as processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "quancun")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/quancun/quancun/cmd/quancun").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const bank = "BANKA00001"
	payer := world.Account{Bank: bank, PAN: "6222021234567890123", PIN: "123456", Balance: 1_000_000}
	cards := []world.CardSpec{{Name: "card-1", Serial: "0000000012345678", Balance: 1000}}
	w, err := world.Start(ctx, world.Options{Bin: bin, Dir: filepath.Join(dir, "w"), Banks: []string{bank},
		Accounts: []world.Account{payer}, Cards: cards, Kiosks: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Replace the FEP process by an FEP in this process, same config and store.
	if err := w.FEP.Kill(); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(filepath.Join(dir, "w", "fep.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f, err := Start(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { f.Stop() }()
	k, c := w.Kiosks[0], w.Cards["card-1"]
	load := func(amount int64) simkiosk.Result {
		t.Helper()
		var res simkiosk.Result
		// The FEP signs in to the platform and the bank first; until then loads are refused.
		err := world.Retry(ctx, 20*time.Second, func() error {
			var err error
			res, err = k.Load(ctx, simkiosk.LoadParams{Card: c.Slot, Amount: amount, BankCode: bank, PAN: payer.PAN, PIN: payer.PIN})
			if err == nil && res.Code != kiosk.Approved && res.Code != kiosk.SystemError {
				err = errNotYet{res.Code}
			}
			return err
		})
		if err != nil {
			t.Fatalf("load %d: %v (%s)", amount, err, res)
		}
		return res
	}

	first := load(500)
	if first.Code != kiosk.Approved || first.Write != kiosk.Written || first.ConfirmCode != kiosk.Approved {
		t.Fatalf("first load: %s", first)
	}
	debits, checks := books(t, w)

	// The disk goes away under the running FEP.
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	refused := load(700)
	if refused.Code != kiosk.SystemError {
		t.Fatalf("load with the store gone: %s, want code 96", refused)
	}
	if refused.Credit || refused.BalanceAfter != first.BalanceAfter {
		t.Fatalf("refused load touched the card: %s", refused)
	}
	if d, ch := books(t, w); d != debits || ch != checks {
		t.Fatalf("refused load reached the peers: bank debits %d -> %d, platform card checks %d -> %d", debits, d, checks, ch)
	}
	if l := logs.String(); !strings.Contains(l, `msg="load refused"`) || !strings.Contains(l, "store unavailable") {
		t.Fatalf("the log does not say why the load was refused:\n%s", tail(l, 20))
	}

	// Restart: what was acknowledged is on disk and final; loads are taken again.
	f.Stop()
	st, err := persistence.Open(cfg.FEP.DataDir, persistence.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Get(loads.RefKey(first.Ref))
	if err != nil {
		t.Fatalf("reference %s of the acknowledged load: %v", first.Ref, err)
	}
	v, err := st.Get(loads.TxnKey(string(id)))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := loads.DecodeRecord(v)
	st.Close()
	// What the kiosk was told is durable: booked, written S. The platform's ack of the
	// CONFIRM may not have come back before the disk went away; then the load is still
	// "confirming" and the restarted FEP re-sends the CONFIRM.
	if err != nil || rec.State.Write != txn.WriteS || rec.State.Txn != txn.TxnS || rec.State.Amount != 500 ||
		(!rec.State.Final() && rec.State.Phase != txn.PhaseConfirming) {
		t.Fatalf("acknowledged load on disk: %+v %v", rec.State, err)
	}
	f, err = Start(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if again := load(300); again.Code != kiosk.Approved || again.Write != kiosk.Written {
		t.Fatalf("load after the restart: %s", again)
	}
}

type errNotYet struct{ code kiosk.Code }

func (e errNotYet) Error() string {
	return "load answered " + string(e.code) + " (FEP not signed in yet)"
}

// books counts the bank's decided debits and the platform's card checks.
func books(t *testing.T, w *world.World) (debits, checks int) {
	t.Helper()
	l, err := simbank.LoadLedger(w.BankDir("BANKA00001"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := simplatform.LoadJournal(filepath.Join(filepath.Dir(w.BankDir("BANKA00001")), "platform"))
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Debits), len(j.Loads())
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
