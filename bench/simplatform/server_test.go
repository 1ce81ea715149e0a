package simplatform

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/platform"
)

func TestSignInBatchAndStaleKey(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)

	// No session yet: A4, unsigned.
	f.dk = platform.SoftMAC(mustHex("0123456789ABCDEFFEDCBA9876543210"))
	if h, _ := f.call(&platform.Heartbeat{}); h.Result != platform.NotSignedIn {
		t.Fatalf("heartbeat before sign-in: %s", h.Result)
	}
	if h, _ := f.signIn("QC0769LOADFEP0000009"); h.Result != platform.AuthRefused {
		t.Fatalf("unknown auth code: %s", h.Result)
	}
	f.clock = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	if h, _ := f.signIn(DefaultAuthCode); h.Result != platform.AuthRefused {
		t.Fatalf("skewed clock: %s", h.Result)
	}
	f.clock = time.Now

	h, _ := f.signIn(DefaultAuthCode)
	if h.Result != platform.OK || h.Batch != 1 {
		t.Fatalf("sign-in: %s batch %d", h.Result, h.Batch)
	}
	expect[*platform.HeartbeatResponse](f, &platform.Heartbeat{}, platform.OK)
	oldBatch, oldKey := f.batch, f.dk

	h, _ = f.signIn(DefaultAuthCode)
	if h.Batch != 2 || bytes.Equal(oldKey.(platform.SoftMAC), f.dk.(platform.SoftMAC)) {
		t.Fatalf("second sign-in: batch %d, key reused %v", h.Batch, bytes.Equal(oldKey.(platform.SoftMAC), f.dk.(platform.SoftMAC)))
	}
	// The old batch with its key: A1, and the zero MAC is accepted as a hint.
	newBatch, newKey := f.batch, f.dk
	f.batch, f.dk = oldBatch, oldKey
	if h, _ := f.call(&platform.Heartbeat{}); h.Result != platform.StaleKey {
		t.Fatalf("stale batch: %s", h.Result)
	}
	// The current batch under the old key: A0.
	f.batch = newBatch
	if h, _ := f.call(&platform.Heartbeat{}); h.Result != platform.MACError {
		t.Fatalf("stale key: %s", h.Result)
	}
	f.dk = newKey
	expect[*platform.HeartbeatResponse](f, &platform.Heartbeat{}, platform.OK)
	expect[*platform.SignOutResponse](f, &platform.SignOut{}, platform.OK)
	if h, _ := f.call(&platform.Heartbeat{}); h.Result != platform.NotSignedIn {
		t.Fatalf("after sign-out: %s", h.Result)
	}
}

func TestLoadCheckBookConfirm(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	k := newKiosk(t, "0000000012345678", 5000, 5)

	chk := k.check(1000)
	ref := expect[*platform.CardCheckResponse](f, chk, platform.OK).Reference
	if len(ref) != 20 {
		t.Fatalf("reference %q", ref)
	}
	// Same kiosk terminal/trace/date and data: same reference; different data: 07.
	if again := expect[*platform.CardCheckResponse](f, chk, platform.OK).Reference; again != ref {
		t.Fatalf("repeated check: %s, want %s", again, ref)
	}
	changed := *chk
	changed.BankCode = "0103000001"
	expect[*platform.CardCheckResponse](f, &changed, platform.Duplicate)
	if j, _ := p.Journal(); j.BookedTotal() != 0 {
		t.Fatalf("a card check booked %d", j.BookedTotal())
	}

	expect[*platform.BookResponse](f, &platform.Book{Reference: "20240315999999999999", Amount: 1000, BankRRN: "240315123456", SettleDate: "20240315"}, platform.UnknownRef)
	expect[*platform.BookResponse](f, &platform.Book{Reference: ref, Amount: 999, BankRRN: "240315123456", SettleDate: "20240315"}, platform.AmountInvalid)
	book := &platform.Book{Reference: ref, Amount: 1000, BankRRN: "240315123456", BankAuth: "A12345", SettleDate: "20240315"}
	b1 := expect[*platform.BookResponse](f, book, platform.OK)
	b2 := expect[*platform.BookResponse](f, book, platform.OK)
	if *b1.Issued != *b2.Issued {
		t.Fatalf("BOOK twice: %+v then %+v", b1.Issued, b2.Issued)
	}

	tac, err := k.credit(b1.Issued)
	if err != nil {
		t.Fatalf("the platform's MAC2 does not credit the card: %v", err)
	}
	if k.balance() != 6000 {
		t.Fatalf("card balance %d, want 6000", k.balance())
	}
	bad := tac
	bad[0] ^= 1
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Written, TAC: bad}, platform.TACInvalid)
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Written, TAC: tac, NewBalance: 6000}, platform.OK)
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Written, TAC: tac}, platform.OK)
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Failed}, platform.StateConflict)

	j, err := p.Journal()
	if err != nil {
		t.Fatal(err)
	}
	l, _ := j.Load(ref)
	if !l.Booked || l.Write != WriteOK || l.TAC != tac || l.BankRRN != "240315123456" || l.BookBatch != 1 {
		t.Fatalf("journal: %+v", l)
	}
	if w := j.Written()[serialHex(k)]; w != 1000 {
		t.Fatalf("written to card: %d", w)
	}
	e := j.ReconEntries()
	if len(e) != 1 || e[0].Ref != ref || !e[0].Booked || e[0].Write != 'S' || e[0].AcctDate != "20240315" || e[0].Amount != 1000 {
		t.Fatalf("recon export: %+v", e)
	}
}

func TestCardCheckRefusals(t *testing.T) {
	p := startPlatform(t, t.TempDir(), func(c *Config) { c.Ceiling = 10000 })
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)

	k := newKiosk(t, "0000000012345678", 5000, 5)
	chk := k.check(1000)
	chk.Card.MAC1[3] ^= 1
	expect[*platform.CardCheckResponse](f, chk, platform.MAC1Invalid)
	chk = k.check(1000)
	chk.Card.OldBalance = 4000 // MAC1 covers the balance
	expect[*platform.CardCheckResponse](f, chk, platform.MAC1Invalid)

	expect[*platform.CardCheckResponse](f, k.check(5001), platform.OverCeiling)
	expect[*platform.CardCheckResponse](f, k.check(5000), platform.OK) // exactly at the ceiling

	blocked := newKiosk(t, "00000000DEADBEEF", 0, 0)
	expect[*platform.CardCheckResponse](f, blocked.check(1000), platform.CardBlocked)
	expect[*platform.CardCheckResponse](f, blocked.check(0), platform.AmountInvalid)
}

// A card pulled before CREDIT: confirm U, the pending query lists it, a new load is
// refused until the re-write, which credits the card with a new MAC2 for the same reference.
func TestPulledCardRewrite(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	k := newKiosk(t, "0000000012345678", 5000, 5)

	chk := k.check(1000)
	ref := expect[*platform.CardCheckResponse](f, chk, platform.OK).Reference
	issued := expect[*platform.BookResponse](f, &platform.Book{Reference: ref, Amount: 1000, BankRRN: "240315123456", SettleDate: "20240315"}, platform.OK).Issued
	k.rd.Pull()
	if _, err := k.credit(issued); !errors.Is(err, card.ErrCardRemoved) {
		t.Fatalf("credit with the card out: %v", err)
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Unknown}, platform.OK)

	pend := expect[*platform.PendingResponse](f, &platform.PendingQuery{AppSerial: k.serial}, platform.OK)
	if len(pend.Loads) != 1 {
		t.Fatalf("pending: %+v", pend.Loads)
	}
	pl := pend.Loads[0]
	if pl.Reference != ref || pl.Status != platform.Unknown || pl.Serial != 5 || pl.MAC2 != issued.MAC2 || pl.OldBalance != 5000 || pl.Amount != 1000 {
		t.Fatalf("pending load: %+v", pl)
	}

	k.rd.Insert()
	k.selectApp()
	expect[*platform.CardCheckResponse](f, k.check(500), platform.PendingExists)

	// The serial did not move (S' == S): not applied, re-write with a fresh INIT.
	fresh := k.initLoad(1000)
	if fresh.Serial != pl.Serial {
		t.Fatalf("serial moved to %d", fresh.Serial)
	}
	moved := &platform.Rewrite{Reference: ref, Card: fresh, Kiosk: platform.KioskRef{Terminal: "KIOSK002", Trace: "000031", Date: "20240316"}}
	moved.Card.Serial++
	expect[*platform.RewriteResponse](f, moved, platform.SerialMoved)
	rw := &platform.Rewrite{Reference: ref, Card: fresh, Kiosk: moved.Kiosk}
	r1 := expect[*platform.RewriteResponse](f, rw, platform.OK)
	r2 := expect[*platform.RewriteResponse](f, rw, platform.OK)
	if *r1.Issued != *r2.Issued || r1.Issued.MAC2 == issued.MAC2 {
		t.Fatalf("rewrite MAC2s: %+v %+v (book %+v)", r1.Issued, r2.Issued, issued)
	}
	tac, err := k.credit(r1.Issued)
	if err != nil {
		t.Fatalf("credit with the re-write MAC2: %v", err)
	}
	if k.balance() != 6000 {
		t.Fatalf("balance %d, want 6000", k.balance())
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Written, TAC: tac}, platform.OK)
	if pend := expect[*platform.PendingResponse](f, &platform.PendingQuery{AppSerial: k.serial}, platform.OK); len(pend.Loads) != 0 {
		t.Fatalf("still pending: %+v", pend.Loads)
	}
	expect[*platform.RewriteResponse](f, rw, platform.StateConflict) // an S load is never re-written
	j, _ := p.Journal()
	if w := j.Written()[serialHex(k)]; w != 1000 {
		t.Fatalf("written %d, want 1000 once", w)
	}
	expect[*platform.CardCheckResponse](f, k.check(500), platform.OK)
}

// A card pulled after the credit committed: the serial moved, 805A shows our MAC2 and the
// TAC, RESOLVE-U closes the load as S with nothing to write.
func TestResolveApplied(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	k := newKiosk(t, "0000000012345678", 5000, 5)

	ref := expect[*platform.CardCheckResponse](f, k.check(1000), platform.OK).Reference
	issued := expect[*platform.BookResponse](f, &platform.Book{Reference: ref, Amount: 1000, BankRRN: "240315123456", SettleDate: "20240315"}, platform.OK).Issued
	k.rd.PullAfter(1) // the card commits, the answer is lost
	if _, err := k.credit(issued); !errors.Is(err, card.ErrCardRemoved) {
		t.Fatalf("credit: %v", err)
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Unknown}, platform.OK)

	k.rd.Insert()
	k.selectApp()
	fresh := k.initLoad(1000)
	if fresh.Serial != 6 {
		t.Fatalf("serial %d, want 6", fresh.Serial)
	}
	prove, err := k.ep.GetTransactionProve(context.Background(), card.TxnTypeEPLoad, fresh.Serial)
	if err != nil || !prove.HasMAC {
		t.Fatalf("805A: %+v %v", prove, err)
	}
	// A re-write with the moved serial is refused while the load is U.
	expect[*platform.RewriteResponse](f, &platform.Rewrite{Reference: ref, Card: fresh, Kiosk: platform.KioskRef{Terminal: "KIOSK001", Trace: "000099", Date: "20240315"}}, platform.SerialMoved)

	res := &platform.Resolve{Reference: ref, AppSerial: k.serial, Observed: fresh.Serial, Method: platform.ByProve, MAC2: prove.MAC, TAC: prove.TAC}
	res.TAC[1] ^= 0x80
	expect[*platform.ResolveResponse](f, res, platform.TACInvalid)
	res.TAC = prove.TAC
	if out := expect[*platform.ResolveResponse](f, res, platform.OK).Outcome; out != platform.Applied {
		t.Fatalf("outcome %c", out)
	}
	if out := expect[*platform.ResolveResponse](f, res, platform.OK).Outcome; out != platform.Applied {
		t.Fatalf("repeated resolve: %c", out)
	}
	j, _ := p.Journal()
	l, _ := j.Load(ref)
	if l.Write != WriteOK || l.TAC != prove.TAC || j.Written()[serialHex(k)] != 1000 || k.balance() != 6000 {
		t.Fatalf("after resolve: load %+v written %d balance %d", l, j.Written()[serialHex(k)], k.balance())
	}
}

// Two loads race for serial 5: B is credited, A's MAC2 never reaches the card. Every kind of
// evidence (805A, 0018, the ledger) says A was not applied; A is then re-written with the
// moved serial. Separately, the ledger alone closes a load whose serial only it was issued for.
func TestResolveNotAppliedThenRewrite(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	k := newKiosk(t, "0000000012345678", 5000, 5)
	book := func(ref string, amount uint32) *platform.Issued {
		return expect[*platform.BookResponse](f, &platform.Book{Reference: ref, Amount: amount, BankRRN: "240315123456", SettleDate: "20240315"}, platform.OK).Issued
	}

	refA := expect[*platform.CardCheckResponse](f, k.check(1000), platform.OK).Reference
	refB := expect[*platform.CardCheckResponse](f, k.check(700), platform.OK).Reference // INIT B replaced A's context
	tacB, err := k.credit(book(refB, 700))
	if err != nil {
		t.Fatal(err)
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: refB, Status: platform.Written, TAC: tacB}, platform.OK)
	issuedA := book(refA, 1000) // the bank answered A late; its MAC2 is for serial 5, now used
	if _, err := k.credit(issuedA); err == nil {
		t.Fatal("A's MAC2 credited a card without a load context")
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: refA, Status: platform.Unknown}, platform.OK)

	k.selectApp()
	fresh := k.initLoad(1000)
	prove, err := k.ep.GetTransactionProve(context.Background(), card.TxnTypeEPLoad, fresh.Serial)
	if err != nil || fresh.Serial != 6 {
		t.Fatalf("805A: %v, serial %d", err, fresh.Serial)
	}
	log, err := k.ep.ReadLog(context.Background(), 10)
	if err != nil || len(log) == 0 || log[0].Serial != 5 {
		t.Fatalf("0018: %+v %v", log, err)
	}
	for _, res := range []*platform.Resolve{
		{Reference: refA, AppSerial: k.serial, Observed: 6, Method: platform.ByProve, MAC2: prove.MAC, TAC: prove.TAC},
		{Reference: refA, AppSerial: k.serial, Observed: 6, Method: platform.ByLog, Record: [23]byte(log[0].Bytes())},
		{Reference: refA, AppSerial: k.serial, Observed: 6, Method: platform.NoProof},
	} {
		if out := expect[*platform.ResolveResponse](f, res, platform.OK).Outcome; out != platform.NotApplied {
			t.Fatalf("method %c: outcome %c", res.Method, out)
		}
	}
	// Not applied: the re-write may now come with the moved serial (a fresh INIT: 805A and
	// the log reads consumed the load context).
	fresh = k.initLoad(1000)
	r := expect[*platform.RewriteResponse](f, &platform.Rewrite{Reference: refA, Card: fresh, Kiosk: platform.KioskRef{Terminal: "KIOSK001", Trace: "000077", Date: "20240315"}}, platform.OK)
	tacA, err := k.credit(r.Issued)
	if err != nil {
		t.Fatal(err)
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: refA, Status: platform.Written, TAC: tacA}, platform.OK)
	j, _ := p.Journal()
	if w := j.Written()[serialHex(k)]; w != 1700 || k.balance() != 6700 {
		t.Fatalf("written %d balance %d, want 1700 and 6700", w, k.balance())
	}

	// Ledger only: C is credited but the answer is lost; nothing else was issued for serial 7.
	refC := expect[*platform.CardCheckResponse](f, k.check(100), platform.OK).Reference
	k.rd.PullAfter(1)
	k.credit(book(refC, 100))
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: refC, Status: platform.Unknown}, platform.OK)
	res := &platform.Resolve{Reference: refC, AppSerial: k.serial, Observed: 9, Method: platform.NoProof}
	if out := expect[*platform.ResolveResponse](f, res, platform.OK).Outcome; out != platform.Applied {
		t.Fatalf("ledger: %c", out)
	}
}

func TestJournalSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	p := startPlatform(t, dir, nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	k := newKiosk(t, "0000000012345678", 5000, 5)
	chk := k.check(1000)
	ref := expect[*platform.CardCheckResponse](f, chk, platform.OK).Reference
	book := &platform.Book{Reference: ref, Amount: 1000, BankRRN: "240315123456", SettleDate: "20240315"}
	issued := expect[*platform.BookResponse](f, book, platform.OK).Issued
	tac, err := k.credit(issued)
	if err != nil {
		t.Fatal(err)
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Written, TAC: tac}, platform.OK)
	p.stop()

	// A torn last line (the process died inside a write) is not part of the journal.
	jf, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	jf.WriteString(`{"ev":"book","ref":"2024`)
	jf.Close()
	j, err := LoadJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := j.Load(ref); !ok || l.Write != WriteOK || j.Written()[serialHex(k)] != 1000 || len(j.Batches()) != 1 {
		t.Fatalf("replayed: %+v", l)
	}

	p2 := startPlatform(t, dir, nil)
	f2 := dialFEP(t, p2)
	f2.batch, f2.dk = f.batch, f.dk
	if h, _ := f2.call(&platform.Heartbeat{}); h.Result != platform.NotSignedIn {
		t.Fatalf("old session after restart: %s", h.Result)
	}
	if h, _ := f2.signIn(DefaultAuthCode); h.Batch != 2 {
		t.Fatalf("batch after restart: %d", h.Batch)
	}
	if again := expect[*platform.BookResponse](f2, book, platform.OK).Issued; *again != *issued {
		t.Fatalf("BOOK after restart: %+v, want %+v", again, issued)
	}
	if again := expect[*platform.CardCheckResponse](f2, chk, platform.OK).Reference; again != ref {
		t.Fatalf("check after restart: %s", again)
	}
	ref2 := expect[*platform.CardCheckResponse](f2, k.check(500), platform.OK).Reference
	if ref2[8:] <= ref[8:] {
		t.Fatalf("reference sequence went back: %s after %s", ref2, ref)
	}
	b, _ := os.ReadFile(filepath.Join(dir, JournalFile))
	if bytes.Contains(b, []byte(`"ref":"2024`+"\n")) || !bytes.HasSuffix(b, []byte("}\n")) {
		t.Fatalf("torn tail kept:\n%s", b)
	}
}

func TestOutage(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	p.SetOutage(OutageRefuse, time.Time{})
	expect[*platform.HeartbeatResponse](f, &platform.Heartbeat{}, platform.SystemError)
	p.SetOutage(OutageIgnore, time.Now().Add(time.Hour))
	f.seq++
	b, _ := platform.Pack(platform.Header{Seq: f.seq, Batch: f.batch, Time: f.now()}, &platform.Heartbeat{}, f.dk)
	if out := f.roundTrip(b, 300*time.Millisecond); out != nil {
		t.Fatalf("answered during an ignore outage: %X", out)
	}
	p.SetOutage(OutageNone, time.Time{})
	// The ignored request's answer never comes; the next one is answered.
	expect[*platform.HeartbeatResponse](f, &platform.Heartbeat{}, platform.OK)
}

func TestGarbageGetsFormatError(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	f.seq++
	b, _ := platform.Pack(platform.Header{Seq: f.seq, Batch: f.batch, Time: f.now()}, &platform.Heartbeat{}, f.dk)
	b[2] = 2 // version
	h, err := platform.PeekHeader(f.roundTrip(b, 5*time.Second))
	if err != nil || h.Result != platform.VersionRefused || h.Seq != f.seq {
		t.Fatalf("version 2: %+v %v", h, err)
	}
	if err := frame.Write(f.c, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	expect[*platform.HeartbeatResponse](f, &platform.Heartbeat{}, platform.OK) // still serving
}

func TestFTPUpload(t *testing.T) {
	p := startPlatform(t, t.TempDir(), func(c *Config) { c.FTP.User, c.FTP.Password = "fep", "secret" })
	c, err := ftp.Dial(p.FTPAddr().String(), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("fep", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := c.Login("fep", "secret"); err != nil {
		t.Fatal(err)
	}
	body := "1|1000\n20240315000000000001|1|622202******1234|0102000001|20240315|1000|20240315143000|S|S\n"
	if err := c.Stor("QC_x.txt.tmp", strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.FileSize("QC_x.txt.tmp"); err != nil || n != int64(len(body)) {
		t.Fatalf("SIZE: %d %v", n, err)
	}
	if err := c.Rename("QC_x.txt.tmp", "QC_x.txt"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(p.UploadDir(), "QC_x.txt"))
	if err != nil || string(got) != body {
		t.Fatalf("uploaded file: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(p.UploadDir(), "QC_x.txt.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary name left: %v", err)
	}
}

// A stale F: the load's MAC2 reached the card (the credit committed), yet a CONFIRM F
// arrives for it (an FEP reporting the first MAC2's fate late). F must not license a
// re-write with the moved serial — that would credit the card twice; the card's evidence
// decides, and it says applied.
func TestStaleFailedIsResolvedNotRewritten(t *testing.T) {
	p := startPlatform(t, t.TempDir(), nil)
	f := dialFEP(t, p)
	f.signIn(DefaultAuthCode)
	k := newKiosk(t, "0000000012345678", 5000, 5)

	ref := expect[*platform.CardCheckResponse](f, k.check(1000), platform.OK).Reference
	issued := expect[*platform.BookResponse](f, &platform.Book{Reference: ref, Amount: 1000, BankRRN: "240315123456", SettleDate: "20240315"}, platform.OK).Issued
	if _, err := k.credit(issued); err != nil {
		t.Fatalf("credit: %v", err)
	}
	expect[*platform.ConfirmResponse](f, &platform.Confirm{Reference: ref, Status: platform.Failed}, platform.OK)

	k.selectApp()
	fresh := k.initLoad(1000)
	if fresh.Serial != 6 || k.balance() != 6000 {
		t.Fatalf("serial %d balance %d, want 6 and 6000", fresh.Serial, k.balance())
	}
	expect[*platform.RewriteResponse](f, &platform.Rewrite{Reference: ref, Card: fresh, Kiosk: platform.KioskRef{Terminal: "KIOSK001", Trace: "000098", Date: "20240315"}}, platform.SerialMoved)
	prove, err := k.ep.GetTransactionProve(context.Background(), card.TxnTypeEPLoad, fresh.Serial)
	if err != nil || !prove.HasMAC {
		t.Fatalf("805A: %+v %v", prove, err)
	}
	res := &platform.Resolve{Reference: ref, AppSerial: k.serial, Observed: fresh.Serial, Method: platform.ByProve, MAC2: prove.MAC, TAC: prove.TAC}
	if out := expect[*platform.ResolveResponse](f, res, platform.OK).Outcome; out != platform.Applied {
		t.Fatalf("outcome %c, want applied", out)
	}
	j, _ := p.Journal()
	if l, _ := j.Load(ref); l.Write != WriteOK || j.Written()[serialHex(k)] != 1000 || k.balance() != 6000 {
		t.Fatalf("after resolve: write %c written %d balance %d", l.Write, j.Written()[serialHex(k)], k.balance())
	}
}
