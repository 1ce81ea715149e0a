package pcsc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/quancun/quancun/internal/testenv"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/hsm"
)

// Spec 9.2 (V2): the demo master keys, file 0015 with app serial 0000000012345678, terminal
// 112233445566 and the platform's date/time 2024-03-15 14:30:00.
var (
	mdlk     = mustHex("11111111111111112222222222222222")
	mtk      = mustHex("33333333333333334444444444444444")
	ef15     = mustHex("869820007590000001052000000000001234567820240101203412310100")
	appSer   = ef15[12:20]
	termID   = [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	hostTime = [7]byte{0x20, 0x24, 0x03, 0x15, 0x14, 0x30, 0x00}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// platform is the security module that issues MAC2 and checks TACs, as the FEP's HSM does.
func platform(t *testing.T) *hsm.Soft {
	t.Helper()
	master := make([]byte, 16)
	rand.Read(master)
	h, err := hsm.NewSoft(master, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string][]byte{"MDLK": mdlk, "MTK": mtk} {
		if _, err := h.ImportClear(name, hsm.UsageCardMaster, k); err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
	}
	return h
}

// writeCard writes the V2 card: balance 5000, online serial 5.
func writeCard(t *testing.T) string {
	t.Helper()
	st, err := vcard.NewCardState(mdlk, mtk, ef15, 5000, 100000, 5)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "card.json")
	if err := vcard.SaveCardFile(path, st); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileState(t *testing.T, path string) vcard.CardState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := vcard.ParseCardFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// timedReader measures the APDU round trips through PC/SC for the log.
type timedReader struct {
	card.Reader
	n     atomic.Int64
	total atomic.Int64
}

func (r *timedReader) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	t0 := time.Now()
	resp, err := r.Reader.Transmit(ctx, cmd)
	if err == nil {
		r.n.Add(1)
		r.total.Add(int64(time.Since(t0)))
	}
	return resp, err
}

func (r *timedReader) report(t *testing.T) {
	if n := r.n.Load(); n > 0 {
		t.Logf("%d APDUs through pcscd/vpcd, average round trip %v", n, time.Duration(r.total.Load()/n).Round(time.Microsecond))
	}
}

// pullOnCredit is a card that, when armed, leaves the field right after it executed CREDIT
// FOR LOAD: the credit is committed (on disk) but the kiosk never gets the TAC.
type pullOnCredit struct {
	*vcard.Card
	armed atomic.Bool
	pull  context.CancelFunc
}

func (c *pullOnCredit) Process(cmd []byte) []byte {
	resp := c.Card.Process(cmd)
	if len(cmd) > 1 && cmd[0] == 0x80 && cmd[1] == 0x52 && c.armed.CompareAndSwap(true, false) {
		c.pull()
	}
	return resp
}

type loaded struct {
	init card.InitLoadResponse
	mac2 [4]byte
}

// initAndMAC2 runs INITIALIZE FOR LOAD and gets MAC2 from the platform (which checks MAC1).
func initAndMAC2(ctx context.Context, t *testing.T, ep *card.EP, h *hsm.Soft, amount uint32) loaded {
	t.Helper()
	init, err := ep.InitForLoad(ctx, 0x01, amount, termID)
	if err != nil {
		t.Fatalf("INITIALIZE FOR LOAD: %v", err)
	}
	mac2, err := h.IssueMAC2(hsm.LoadRequest{
		MasterLoadKey: "MDLK", Factors: [][]byte{appSer},
		OldBalance: init.OldBalance, Amount: amount, Serial: init.Serial,
		Random: init.Random, TermID: termID, MAC1: init.MAC1,
	}, hostTime)
	if err != nil {
		t.Fatalf("IssueMAC2: %v", err)
	}
	return loaded{init: init, mac2: mac2}
}

func verifyTAC(t *testing.T, h *hsm.Soft, l loaded, amount uint32, tac [4]byte) {
	t.Helper()
	err := h.VerifyTAC(hsm.TACInput{
		MasterTACKey: "MTK", Factors: [][]byte{appSer},
		NewBalance: l.init.OldBalance + amount, Amount: amount, Serial: l.init.Serial,
		TermID: termID, HostDateTime: hostTime,
	}, tac)
	if err != nil {
		t.Fatalf("TAC %X: %v", tac, err)
	}
}

// selectCard runs SELECT, READ 0015 and GET BALANCE, checking the card is the V2 card.
func selectCard(ctx context.Context, t *testing.T, ep *card.EP) uint32 {
	t.Helper()
	if _, err := ep.SelectApp(ctx, card.AIDMOHURD()); err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	info, err := ep.ReadEF15(ctx)
	if err != nil {
		t.Fatalf("READ 0015: %v", err)
	}
	if !bytes.Equal(info.AppSerial[:], appSer) {
		t.Fatalf("app serial %X, want %X", info.AppSerial, appSer)
	}
	bal, err := ep.GetBalance(ctx)
	if err != nil {
		t.Fatalf("GET BALANCE: %v", err)
	}
	return bal
}

// TestLoadThroughPCSC drives spec 9.2's load through the real pcscd and vpcd, then a load
// whose card is pulled right after it committed the credit, and recovers it as spec 4 says.
func TestLoadThroughPCSC(t *testing.T) {
	testenv.RequirePCSC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := platform(t)
	path := writeCard(t)
	vc, err := vcard.LoadCard(path)
	if err != nil {
		t.Fatal(err)
	}

	sctx, pull := context.WithCancel(ctx)
	pc := &pullOnCredit{Card: vc, pull: pull}
	in := serve(t, sctx, pull, addr0, reader0, pc)
	r := openReader(t, reader0)
	tr := &timedReader{Reader: r}
	defer tr.report(t)
	ep := card.NewEP(tr)

	// 1. A complete load.
	if bal := selectCard(ctx, t, ep); bal != 5000 {
		t.Fatalf("balance %d, want 5000", bal)
	}
	l := initAndMAC2(ctx, t, ep, h, 1000)
	if l.init.OldBalance != 5000 || l.init.Serial != 5 {
		t.Fatalf("INIT FOR LOAD: old balance %d serial %d, want 5000 and 5", l.init.OldBalance, l.init.Serial)
	}
	tac, err := ep.CreditForLoad(ctx, hostTime, l.mac2)
	if err != nil {
		t.Fatalf("CREDIT FOR LOAD: %v", err)
	}
	verifyTAC(t, h, l, 1000, tac)
	prove, err := ep.GetTransactionProve(ctx, card.TxnTypeEPLoad, 6)
	if err != nil {
		t.Fatalf("GET TRANSACTION PROVE: %v", err)
	}
	if !prove.HasMAC || prove.MAC != l.mac2 || prove.TAC != tac {
		t.Fatalf("prove = %+v, want MAC2 %X TAC %X", prove, l.mac2, tac)
	}
	if bal, err := ep.GetBalance(ctx); err != nil || bal != 6000 {
		t.Fatalf("balance after load = %d, %v; want 6000", bal, err)
	}

	// 2. The card leaves the field after committing the credit: the kiosk sees "removed".
	l2 := initAndMAC2(ctx, t, ep, h, 500)
	pc.armed.Store(true)
	_, err = ep.CreditForLoad(ctx, hostTime, l2.mac2)
	if !errors.Is(err, card.ErrCardRemoved) {
		t.Fatalf("CREDIT FOR LOAD with the card pulled: %v, want card.ErrCardRemoved", err)
	}
	in.wait()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := r.WaitForRemoval(wctx); err != nil {
		t.Fatalf("WaitForRemoval: %v", err)
	}
	if st := fileState(t, path); st.Balance != 6500 || st.OnlineSerial != 7 {
		t.Fatalf("card file after the pulled credit: balance %d serial %d, want 6500 and 7", st.Balance, st.OnlineSerial)
	}

	// 3. Re-presented: the serial moved, so the credit is on the card, with our MAC2.
	insert(t, addr0, reader0, vc)
	if err := r.WaitForCard(wctx); err != nil {
		t.Fatalf("WaitForCard: %v", err)
	}
	if bal := selectCard(ctx, t, ep); bal != 6500 {
		t.Fatalf("balance after re-insert %d, want 6500", bal)
	}
	again, err := ep.InitForLoad(ctx, 0x01, 500, termID)
	if err != nil {
		t.Fatalf("fresh INITIALIZE FOR LOAD: %v", err)
	}
	if again.Serial != l2.init.Serial+1 {
		t.Fatalf("serial after pulled credit %d, want %d (credit applied)", again.Serial, l2.init.Serial+1)
	}
	prove, err = ep.GetTransactionProve(ctx, card.TxnTypeEPLoad, again.Serial)
	if err != nil {
		t.Fatalf("GET TRANSACTION PROVE: %v", err)
	}
	if prove.MAC != l2.mac2 {
		t.Fatalf("proved MAC2 %X, want the issued %X", prove.MAC, l2.mac2)
	}
	verifyTAC(t, h, l2, 500, prove.TAC)
	rec := card.RecoverUnknown(card.PendingLoad{Serial: l2.init.Serial, Amount: 500, TermID: termID,
		HostDateTime: hostTime, MAC2: l2.mac2}, card.Evidence{Serial: again.Serial, Prove: &prove})
	if rec.Decision != card.Applied {
		t.Fatalf("RecoverUnknown = %v (%s), want applied", rec.Decision, rec.Reason)
	}
}

// TestSimCardCLI runs `quancun sim card` as a process in the second reader and loads through
// it, then stops it with SIGTERM and checks the card file.
func TestSimCardCLI(t *testing.T) {
	testenv.RequirePCSC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := buildQuancun(ctx, t, dir)
	path := filepath.Join(dir, "card.json")
	out, err := exec.CommandContext(ctx, bin, "sim", "card", "--init", path, "--serial", "0000000012345678", "--balance", "5000").CombinedOutput()
	if err != nil {
		t.Fatalf("sim card --init: %v\n%s", err, out)
	}

	sim := startSim(ctx, t, bin, "sim", "card", "--vpcd", addr1, "--card", path)

	r := openReader(t, reader1)
	tr := &timedReader{Reader: r}
	ep := card.NewEP(tr)
	if bal := selectCard(ctx, t, ep); bal != 5000 {
		t.Fatalf("balance %d, want 5000", bal)
	}
	h := platform(t)
	l := initAndMAC2(ctx, t, ep, h, 1000)
	tac, err := ep.CreditForLoad(ctx, hostTime, l.mac2)
	if err != nil {
		t.Fatalf("CREDIT FOR LOAD: %v", err)
	}
	verifyTAC(t, h, l, 1000, tac)
	if bal, err := ep.GetBalance(ctx); err != nil || bal != 6000 {
		t.Fatalf("balance after load = %d, %v; want 6000", bal, err)
	}
	tr.report(t)
	r.Close()

	sim.stop(t)
	if st := fileState(t, path); st.Balance != 6000 || st.OnlineSerial != 1 {
		t.Fatalf("card file: balance %d serial %d, want 6000 and 1", st.Balance, st.OnlineSerial)
	}
	for _, want := range []string{"card inserted", "card removed"} {
		if !strings.Contains(sim.logs.String(), want) {
			t.Errorf("sim card log lacks %q", want)
		}
	}
	// Let pcscd see the reader empty before another test uses it.
	waitEmpty(t, reader1)
}

// TestSimPSAMCLI serves a PSAM with `quancun sim psam` and computes spec 9.4's MAC (V4)
// through PC/SC: a T=0 card, as real PSAMs are.
func TestSimPSAMCLI(t *testing.T) {
	testenv.RequirePCSC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := buildQuancun(ctx, t, dir)
	path := filepath.Join(dir, "psam.json")
	err := vcard.SavePSAMFile(path, vcard.PSAMState{
		TerminalID: termID[:], EF15: make([]byte, 14),
		Keys: []vcard.PSAMKey{{Usage: 0x27, Index: 0x01, Key: mustHex("0123456789ABCDEFFEDCBA9876543210")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sim := startSim(ctx, t, bin, "sim", "psam", "--vpcd", addr1, "--psam", path)
	r := openReader(t, reader1)
	psam := card.NewPSAM(r)
	id, err := psam.ReadTerminalID(ctx)
	if err != nil || id != termID {
		t.Fatalf("terminal id %X, %v; want %X", id, err, termID)
	}
	if err := psam.InitDES(ctx, 0x27, 0x01, mustHex("0000000000000001"), mustHex("2000FF0000000000")); err != nil {
		t.Fatalf("801A: %v", err)
	}
	mac, err := psam.MAC(ctx, []byte("LOADREQ|0000000012345678|000003E8"), nil)
	if err != nil {
		t.Fatalf("80FA: %v", err)
	}
	if want := [4]byte(mustHex("A5B5275E")); mac != want {
		t.Fatalf("PSAM MAC %X, want %X (spec 9.4)", mac, want)
	}
	r.Close()
	sim.stop(t)
	waitEmpty(t, reader1)
}

func buildQuancun(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "quancun")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/quancun/quancun/cmd/quancun")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// simProc is a `quancun sim ...` subprocess.
type simProc struct {
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan error
	stopped bool
}

// startSim starts a sim command; if the test ends without stop, it is killed. Its log is
// printed at the end of the test.
func startSim(ctx context.Context, t *testing.T, bin string, args ...string) *simProc {
	t.Helper()
	p := &simProc{cmd: exec.CommandContext(ctx, bin, args...), logs: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.stopped {
			p.cmd.Process.Kill()
			<-p.exited
		}
		t.Logf("%s log:\n%s", strings.Join(args[:2], " "), p.logs.String())
	})
	return p
}

// stop sends SIGTERM and requires a clean exit.
func (p *simProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.stopped = true
		if err != nil {
			t.Fatalf("%v after SIGTERM: %v", p.cmd.Args[1:3], err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%v did not stop on SIGTERM", p.cmd.Args[1:3])
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and the test.
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

// waitEmpty waits until pcscd reports no card in reader, so the next test does not connect to
// the ghost of a card that already left (it can look present for 0.4 s).
func waitEmpty(t *testing.T, reader string) {
	t.Helper()
	c, err := scard.EstablishContext()
	if err != nil {
		t.Fatalf("establish context: %v", err)
	}
	defer c.Release()
	rs := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.GetStatusChange(rs, 250*time.Millisecond); err != nil && !errors.Is(err, scard.ErrTimeout) {
			t.Fatalf("status of %s: %v", reader, err)
		}
		if rs[0].EventState&scard.StateEmpty != 0 {
			return
		}
		rs[0].CurrentState = rs[0].EventState &^ scard.StateChanged
	}
	t.Fatalf("%s still shows a card 5 s after it was pulled", reader)
}
