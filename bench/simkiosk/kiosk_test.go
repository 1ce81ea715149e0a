package simkiosk

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/simkiosk/kiosktest"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Keys: the demo card masters (spec 9.2, `quancun sim card --init`), the PSAM master of
// spec 9.4 and the TMK of spec 9.5.
const (
	mdlkHex       = "11111111111111112222222222222222"
	mtkHex        = "33333333333333334444444444444444"
	psamMasterHex = "0123456789ABCDEFFEDCBA9876543210"
	tmkHex        = "00112233445566778899AABBCCDDEEFF"
	ef15Hex       = "869820007590000001052000000000001234567820240101203412310100"
	goodPIN       = "123456"
	pan           = "6222021234567890123"
	bankCode      = "0102000001"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testCard(t testing.TB, balance uint32) (*vcard.Card, *card.InProcessReader) {
	t.Helper()
	st, err := vcard.NewCardState(hx(t, mdlkHex), hx(t, mtkHex), hx(t, ef15Hex), balance, 100000, 5)
	if err != nil {
		t.Fatal(err)
	}
	c, err := vcard.NewCard(st, vcard.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	return c, card.NewInProcessReader(c)
}

func testPSAM(t testing.TB) card.Reader {
	t.Helper()
	p, err := vcard.NewPSAM(vcard.PSAMState{TerminalID: hx(t, "112233445566"), EF15: make(vcard.Hex, 14),
		Keys: []vcard.PSAMKey{{Usage: 0x27, Index: 0x01, Key: hx(t, psamMasterHex)}}}, vcard.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	return card.NewInProcessReader(p)
}

func startFEP(t testing.TB) *kiosktest.FEP {
	t.Helper()
	f, err := kiosktest.Start(kiosktest.Config{TMK: hx(t, tmkHex), PSAMMaster: hx(t, psamMasterHex),
		MDLK: hx(t, mdlkHex), MTK: hx(t, mtkHex), PIN: goodPIN, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func newKiosk(t testing.TB, f *kiosktest.FEP, heartbeat time.Duration) *Kiosk {
	t.Helper()
	ctx := context.Background()
	k, err := New(ctx, Config{Terminal: "KIOSK001", TMK: hx(t, tmkHex), PSAM: testPSAM(t), Heartbeat: heartbeat,
		Timeouts: Timeouts{Load: 5 * time.Second, Confirm: time.Second}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	if err := k.Dial(ctx, f.Addr()); err != nil {
		t.Fatal(err)
	}
	return k
}

func signedIn(t testing.TB) (*kiosktest.FEP, *Kiosk) {
	t.Helper()
	f := startFEP(t)
	k := newKiosk(t, f, -1)
	if err := k.SignIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f, k
}

func load(amount int64, r card.Reader, pull Step) LoadParams {
	return LoadParams{Card: r, Amount: amount, BankCode: bankCode, PAN: pan, PIN: goodPIN, PullAt: pull}
}

func status(t *testing.T, f *kiosktest.FEP, ref string) byte {
	t.Helper()
	l, ok := f.Lookup(ref)
	if !ok {
		t.Fatalf("FEP has no load %s", ref)
	}
	return l.Status
}

func TestSignInChecksKCV(t *testing.T) {
	f := startFEP(t)
	f.SetBadKCV(true)
	k := newKiosk(t, f, -1)
	err := k.SignIn(context.Background())
	if !errors.Is(err, ErrSignIn) || !errors.Is(err, hsm.ErrKCVMismatch) {
		t.Fatalf("sign-in with a bad KCV: err = %v, want ErrSignIn and hsm.ErrKCVMismatch", err)
	}
	// No keys were kept: a load is refused before anything reaches the card or the FEP.
	if _, err := k.call(context.Background(), time.Second, func(e kiosk.Envelope) kiosk.Request {
		return &kiosk.Heartbeat{Envelope: e}
	}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("request after a refused sign-in: err = %v, want ErrNotConnected", err)
	}
	f.SetBadKCV(false)
	if err := k.SignIn(context.Background()); err != nil {
		t.Fatalf("good sign-in: %v", err)
	}
	if k.Batch() == 0 {
		t.Fatal("batch not taken from the sign-in response")
	}
	if f.MACFailures() != 0 {
		t.Fatalf("%d PSAM MAC failures at the FEP", f.MACFailures())
	}
}

func TestLoadCreditsCardAndConfirmsS(t *testing.T) {
	f, k := signedIn(t)
	c, r := testCard(t, 5000)
	res, err := k.Load(context.Background(), load(1000, r, PullNone))
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != kiosk.Approved || !res.Written || res.Write != kiosk.Written || res.ConfirmCode != kiosk.Approved {
		t.Fatalf("result %v", res)
	}
	if res.BalanceBefore != 5000 || res.BalanceAfter != 6000 || c.State().Balance != 6000 {
		t.Fatalf("balances: result %d->%d, card %d", res.BalanceBefore, res.BalanceAfter, c.State().Balance)
	}
	if got := status(t, f, res.Ref); got != 'S' { // the stand-in verified the TAC
		t.Fatalf("FEP status %c, want S", got)
	}
	if res.Card != "0000000012345678" || res.Latency <= 0 {
		t.Fatalf("card %s latency %v", res.Card, res.Latency)
	}
}

func TestWrongPINDeclinedCardUntouched(t *testing.T) {
	_, k := signedIn(t)
	c, r := testCard(t, 5000)
	p := load(1000, r, PullNone)
	p.PIN = "999999"
	res, err := k.Load(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != kiosk.WrongPIN || res.Credit || c.State().Balance != 5000 {
		t.Fatalf("result %v, card balance %d", res, c.State().Balance)
	}
}

func TestPullBeforeCreditConfirmsFThenRewrites(t *testing.T) {
	f, k := signedIn(t)
	c, r := testCard(t, 5000)
	res, err := k.Load(context.Background(), load(1000, r, PullBeforeCredit))
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != kiosk.Approved || res.Write != kiosk.Failed || res.Credit || res.ConfirmCode != kiosk.Approved {
		t.Fatalf("result %v", res)
	}
	if st := c.State(); st.Balance != 5000 || st.OnlineSerial != 5 {
		t.Fatalf("card changed: balance %d serial %d", st.Balance, st.OnlineSerial)
	}
	ref := res.Ref
	if got := status(t, f, ref); got != 'F' {
		t.Fatalf("FEP status %c, want F", got)
	}

	// The next load re-writes the F load first, then loads.
	res2, err := k.Load(context.Background(), load(500, r, PullNone))
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Rewrites) != 1 {
		t.Fatalf("rewrites %v", res2.Rewrites)
	}
	rw := res2.Rewrites[0]
	if rw.Reference != ref || rw.Listed != kiosk.Failed || rw.RewriteCode != kiosk.Approved || rw.Write != kiosk.Written || !rw.Applied || rw.Evidence != 0 {
		t.Fatalf("rewrite %+v", rw)
	}
	if res2.Code != kiosk.Approved || !res2.Written || c.State().Balance != 6500 || res2.BalanceAfter != 6500 {
		t.Fatalf("second load %v, card %d", res2, c.State().Balance)
	}
	if status(t, f, ref) != 'S' || status(t, f, res2.Ref) != 'S' {
		t.Fatal("both loads must be S at the FEP")
	}
}

func TestPullAfterCommitConfirmsUThenResolvesApplied(t *testing.T) {
	f, k := signedIn(t)
	c, r := testCard(t, 5000)
	res, err := k.Load(context.Background(), load(1000, r, PullAfterCommit))
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != kiosk.Approved || res.Write != kiosk.Unknown || res.Written || res.ConfirmCode != kiosk.Approved {
		t.Fatalf("result %v", res)
	}
	if st := c.State(); st.Balance != 6000 || st.OnlineSerial != 6 {
		t.Fatalf("the credit must be on the card: balance %d serial %d", st.Balance, st.OnlineSerial)
	}
	if got := status(t, f, res.Ref); got != 'U' {
		t.Fatalf("FEP status %c, want U", got)
	}

	res2, err := k.Load(context.Background(), load(500, r, PullNone))
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Rewrites) != 1 {
		t.Fatalf("rewrites %v", res2.Rewrites)
	}
	rw := res2.Rewrites[0]
	if rw.Listed != kiosk.Unknown || rw.Evidence != kiosk.ByProve || rw.ResolveCode != kiosk.Approved || !rw.Applied || rw.RewriteCode != "" {
		t.Fatalf("resolution %+v", rw)
	}
	// Not written twice: 5000 + 1000 (the U load, already there) + 500.
	if c.State().Balance != 6500 || status(t, f, res.Ref) != 'S' || status(t, f, res2.Ref) != 'S' {
		t.Fatalf("card %d, statuses %c %c", c.State().Balance, status(t, f, res.Ref), status(t, f, res2.Ref))
	}
}

// creditElsewhere loads the card outside this kiosk and FEP (another terminal of the
// scheme), moving its online serial on.
func creditElsewhere(t *testing.T, r card.Reader, amount uint32) {
	t.Helper()
	ctx := context.Background()
	m, err := hsm.NewSoft(hx(t, tmkHex), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportClear("mdlk", hsm.UsageCardMaster, hx(t, mdlkHex)); err != nil {
		t.Fatal(err)
	}
	ep := card.NewEP(r)
	if _, err := ep.SelectApp(ctx, card.AIDMOHURD()); err != nil {
		t.Fatal(err)
	}
	term := [6]byte{0x99, 0, 0, 0, 0, 1}
	in, err := ep.InitForLoad(ctx, 1, amount, term)
	if err != nil {
		t.Fatal(err)
	}
	ht := kiosk.HostTimeOf(time.Now())
	mac2, err := m.IssueMAC2(hsm.LoadRequest{MasterLoadKey: "mdlk", Factors: [][]byte{hx(t, "0000000012345678")},
		OldBalance: in.OldBalance, Amount: amount, Serial: in.Serial, Random: in.Random, TermID: term, MAC1: in.MAC1}, ht)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.CreditForLoad(ctx, ht, mac2); err != nil {
		t.Fatal(err)
	}
}

func TestUResolvedFromLogWhenSerialMovedFurther(t *testing.T) {
	f, k := signedIn(t)
	c, r := testCard(t, 5000)
	first, err := k.Load(context.Background(), load(1000, r, CrashAfterCredit))
	if err != nil {
		t.Fatal(err)
	}
	if first.Write != kiosk.Written || first.ConfirmCode != "" || status(t, f, first.Ref) != kiosktest.Approved {
		t.Fatalf("crash after credit: %v, FEP %c", first, status(t, f, first.Ref))
	}
	creditElsewhere(t, r, 100) // serial 6 -> 7: 805A can no longer prove serial 5
	res, err := k.Load(context.Background(), load(200, r, PullNone))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rewrites) != 1 {
		t.Fatalf("rewrites %+v", res.Rewrites)
	}
	rw := res.Rewrites[0]
	if rw.Evidence != kiosk.ByLog || rw.ResolveCode != kiosk.Approved || !rw.Applied || rw.RewriteCode != "" {
		t.Fatalf("resolution %+v", rw)
	}
	if c.State().Balance != 6300 || status(t, f, first.Ref) != 'S' {
		t.Fatalf("card %d (want 5000+1000+100+200), FEP %c", c.State().Balance, status(t, f, first.Ref))
	}
}

func TestCrashBeforeCreditIsRewritten(t *testing.T) {
	f, k := signedIn(t)
	c, r := testCard(t, 5000)
	first, err := k.Load(context.Background(), load(1000, r, CrashBeforeCredit))
	if err != nil {
		t.Fatal(err)
	}
	if first.Code != kiosk.Approved || first.Credit || first.Write != 0 || c.State().Balance != 5000 {
		t.Fatalf("crash before credit: %v", first)
	}
	res, err := k.Load(context.Background(), load(300, r, PullNone))
	if err != nil {
		t.Fatal(err)
	}
	rw := res.Rewrites
	// U with the serial unchanged: a plain re-write, no U RESOLUTION.
	if len(rw) != 1 || rw[0].Listed != kiosk.Unknown || rw[0].Evidence != 0 || rw[0].Write != kiosk.Written {
		t.Fatalf("rewrites %+v", rw)
	}
	if c.State().Balance != 6300 || status(t, f, first.Ref) != 'S' {
		t.Fatalf("card %d, FEP %c", c.State().Balance, status(t, f, first.Ref))
	}
	if f.Count(kiosk.KindResolve) != 0 || f.Count(kiosk.KindRewrite) != 1 {
		t.Fatalf("resolve %d rewrite %d", f.Count(kiosk.KindResolve), f.Count(kiosk.KindRewrite))
	}
}

func TestPullBeforeInitSendsNothing(t *testing.T) {
	f, k := signedIn(t)
	c, r := testCard(t, 5000)
	res, err := k.Load(context.Background(), load(1000, r, PullBeforeInit))
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != "" || res.Ref != "" || f.Count(kiosk.KindLoad) != 0 || c.State().Balance != 5000 {
		t.Fatalf("result %v, loads at FEP %d", res, f.Count(kiosk.KindLoad))
	}
	// The slot gives the card back for the next load.
	if res, err := k.Load(context.Background(), load(1000, r, PullNone)); err != nil || !res.Written {
		t.Fatalf("next load: %v %v", res, err)
	}
}

func TestPullStepNeedsPuller(t *testing.T) {
	_, k := signedIn(t)
	c, _ := testCard(t, 5000)
	var plain card.Reader = struct{ card.Reader }{card.NewInProcessReader(c)} // hides Pull
	if _, err := k.Load(context.Background(), load(1000, plain, PullAfterCommit)); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

func TestHeartbeat(t *testing.T) {
	f := startFEP(t)
	k := newKiosk(t, f, 30*time.Millisecond)
	if err := k.SignIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for f.Count(kiosk.KindHeartbeat) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.Count(kiosk.KindHeartbeat); n < 2 {
		t.Fatalf("%d heartbeats", n)
	}
	// Loads still work with the heartbeat running alongside.
	_, r := testCard(t, 0)
	if res, err := k.Load(context.Background(), load(100, r, PullNone)); err != nil || !res.Written {
		t.Fatalf("load: %v %v", res, err)
	}
}

func TestReconnectAfterLinkLoss(t *testing.T) {
	f, k := signedIn(t)
	k.mu.Lock()
	k.conn.Close() // the link breaks under the kiosk
	k.mu.Unlock()
	_, r := testCard(t, 0)
	res, err := k.Load(context.Background(), load(100, r, PullNone))
	if err == nil {
		// the break is found on the first send; the next load must reconnect and sign in
		t.Logf("first load after the break went through: %v", res)
	}
	res, err = k.Load(context.Background(), load(100, r, PullNone))
	if err != nil || !res.Written {
		t.Fatalf("load after reconnect: %v %v", res, err)
	}
	if f.Count(kiosk.KindSignIn) < 2 {
		t.Fatalf("%d sign-ins, want a second one", f.Count(kiosk.KindSignIn))
	}
}

func TestStepNames(t *testing.T) {
	for _, s := range Steps() {
		got, err := ParseStep(s.String())
		if err != nil || got != s {
			t.Fatalf("%v -> %v %v", s, got, err)
		}
	}
	if _, err := ParseStep("sideways"); err == nil {
		t.Fatal("unknown step accepted")
	}
}

func TestWrongPSAMKeyRefusedByFEP(t *testing.T) {
	f := startFEP(t)
	p, err := vcard.NewPSAM(vcard.PSAMState{TerminalID: hx(t, "112233445566"), EF15: make(vcard.Hex, 14),
		Keys: []vcard.PSAMKey{{Usage: 0x27, Index: 0x01, Key: hx(t, mdlkHex)}}}, vcard.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	k, err := New(context.Background(), Config{Terminal: "KIOSK009", TMK: hx(t, tmkHex), PSAM: card.NewInProcessReader(p),
		Heartbeat: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.Dial(context.Background(), f.Addr()); err != nil {
		t.Fatal(err)
	}
	err = k.SignIn(context.Background())
	if !errors.Is(err, ErrSignIn) || !strings.Contains(err.Error(), "A0") || f.MACFailures() != 1 {
		t.Fatalf("err = %v, FEP MAC failures %d", err, f.MACFailures())
	}
}
