package bank

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/quancun/quancun/io/crypt"
	"github.com/quancun/quancun/io/frame"
)

// V6 of spec/vectors.txt (card-and-host.md 9.5).
const (
	v6TMK      = "00112233445566778899AABBCCDDEEFF"
	v6PIK      = "0123456789ABCDEFFEDCBA9876543210"
	v6MAK      = "89ABCDEF0123456776543210FEDCBA98"
	v6F62      = "4CD648347C7C41F1691C586546C2CBE108D7B4FBCDA7E1762F31892177130A0D50FBD76EEB7A8DF9"
	v6SignOn   = "003C600003000060310000000008000020000000C000120000014B494F534B30303138393833313030343839393030303100110000000100300003303031"
	v6DebitMAB = "0200702404C020C098131962220212345678901230000000000000001000000002281202100012376222021234567890123D2812220123456789004B494F534B3030313839383331303034383939303030313135362A084C604973D4AE2600000000000000001122000001000000184C4430303030303030303132333435363738"
	v6Debit    = "009460000300006031000000000200702404C020C098131962220212345678901230000000000000001000000002281202100012376222021234567890123D2812220123456789004B494F534B3030313839383331303034383939303030313135362A084C604973D4AE2600000000000000001122000001000000184C44303030303030303031323334353637384634343832433842"
	v6Reversal = "005D600003000060310000000004007024048002C080111962220212345678901230000000000000001000000002281202100039384B494F534B30303138393833313030343839393030303131353600112200000100004430374545454334"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cupsMAC is the test stand-in for the security module: the CUPS ECB MAC under the V6 MAK.
func cupsMAC(t testing.TB) MACer {
	mak := unhex(t, v6MAK)
	return MACFunc(func(mab []byte) ([]byte, error) { return crypt.CUPSMAC(mak, mab) })
}

var kiosk = Terminal{ID: "KIOSK001", Merchant: "898310048990001"}

// v6Debit is the 0200 of V6, field values read off the given frame.
func v6DebitMsg(t testing.TB) *Debit {
	return &Debit{
		PAN: "6222021234567890123", ProcCode: "000000", Amount: 1000, STAN: 2,
		Expiry: "2812", EntryMode: "021", Condition: "00", PINCapture: "12",
		Track2: "6222021234567890123D28122201234567890", Terminal: kiosk, Currency: "156",
		PINBlock: unhex(t, "2A084C604973D4AE"), SecurityCtl: "2600000000000000",
		F60: F60{Type: "22", Batch: 1, Code: "000"}, Private: "LD0000000012345678",
	}
}

// withLen frames a payload as it goes on the wire, for comparing with the V6 frames.
func withLen(t testing.TB, payload []byte) string {
	t.Helper()
	b, err := frame.Append(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

func TestV6SignOn(t *testing.T) {
	d := DefaultDialect()
	p, err := d.Pack(&SignOn{STAN: 1, Terminal: kiosk, Batch: 1, Operator: "001"})
	if err != nil {
		t.Fatal(err)
	}
	if got := withLen(t, p); got != v6SignOn {
		t.Fatalf("0800\n got %s\nwant %s", got, v6SignOn)
	}
	fr, err := d.Decode(unhex(t, v6SignOn)[2:])
	if err != nil {
		t.Fatal(err)
	}
	want := &SignOn{STAN: 1, Terminal: kiosk, Batch: 1, Operator: "001"}
	if !reflect.DeepEqual(fr.Msg, want) || fr.TPDU != d.TPDU || fr.Header != d.Header {
		t.Fatalf("decoded %+v %X %X", fr.Msg, fr.TPDU, fr.Header)
	}
}

func TestV6Debit(t *testing.T) {
	d := DefaultDialect()
	var gotMAB []byte
	mac := cupsMAC(t)
	spy := MACFunc(func(mab []byte) ([]byte, error) {
		gotMAB = append([]byte(nil), mab...)
		return mac.MAC(mab)
	})
	p, err := d.PackMACed(v6DebitMsg(t), spy)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ToUpper(hex.EncodeToString(gotMAB)); got != v6DebitMAB {
		t.Fatalf("MAB\n got %s\nwant %s", got, v6DebitMAB)
	}
	if string(p[len(p)-8:]) != "F4482C8B" {
		t.Fatalf("F64 = %q, want F4482C8B", p[len(p)-8:])
	}
	if got := withLen(t, p); got != v6Debit {
		t.Fatalf("0200\n got %s\nwant %s", got, v6Debit)
	}
	// Decoding the published frame gives back the message, and its MAC verifies.
	fr, err := d.Decode(unhex(t, v6Debit)[2:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fr.Msg, v6DebitMsg(t)) {
		t.Fatalf("decoded %+v", fr.Msg)
	}
	if err := fr.VerifyMAC(Recompute(mac)); err != nil {
		t.Fatal(err)
	}
	// X9.19 over the same MAB, the alternative profile.
	x, err := crypt.X919(unhex(t, v6MAK), unhex(t, v6DebitMAB))
	if err != nil || fmt.Sprintf("%X", x) != "D906A041A2E9D677" {
		t.Fatalf("X9.19 = %X %v", x, err)
	}
}

func TestV6Reversal(t *testing.T) {
	d := DefaultDialect()
	rev := ReversalOf(v6DebitMsg(t), ReasonTimeout)
	p, err := d.PackMACed(&rev, cupsMAC(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(p[len(p)-8:]) != "D07EEEC4" {
		t.Fatalf("F64 = %q, want D07EEEC4", p[len(p)-8:])
	}
	if got := withLen(t, p); got != v6Reversal {
		t.Fatalf("0400\n got %s\nwant %s", got, v6Reversal)
	}
	fr, err := d.Decode(unhex(t, v6Reversal)[2:])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fr.Msg, &rev) {
		t.Fatalf("decoded %+v\nwant %+v", fr.Msg, &rev)
	}
	// The repeat differs only in the MTI.
	rev.Repeat = true
	p2, err := d.PackMACed(&rev, cupsMAC(t))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(p2[11:13]) != "0401" || !bytes.Equal(p2[13:len(p2)-8], p[13:len(p)-8]) {
		t.Fatalf("repeat %X", p2)
	}
}

func TestV6SignOnResponseKeys(t *testing.T) {
	d := DefaultDialect()
	resp := &SignOnResponse{STAN: 1, LocalTime: "120000", LocalDate: "0228", AcquirerID: "12345678",
		RRN: "000000000001", Code: "00", Terminal: kiosk, Batch: 2}
	var err error
	if resp.Keys, err = d.Keys.Parse(unhex(t, v6F62)); err != nil {
		t.Fatal(err)
	}
	p, err := d.Pack(resp)
	if err != nil {
		t.Fatal(err)
	}
	if fr := mustDecode(t, &d, p); !reflect.DeepEqual(fr.Msg, resp) || fr.TPDU != d.TPDU.Swap() {
		t.Fatalf("round trip %+v TPDU %X", fr.Msg, fr.TPDU)
	}
	// The KCV rule: unwrap under the TMK, the check value must equal the one sent.
	tmk := unhex(t, v6TMK)
	unwrap := func(_ string, wrapped []byte) ([]byte, error) {
		clear, err := crypt.DecryptECB(tmk, wrapped)
		if err != nil {
			return nil, err
		}
		return crypt.KCV(clear)
	}
	if err := resp.Keys.Verify(unwrap); err != nil {
		t.Fatal(err)
	}
	pik, _ := crypt.DecryptECB(tmk, resp.Keys.PIK)
	mak, _ := crypt.DecryptECB(tmk, resp.Keys.MAK)
	if fmt.Sprintf("%X", pik) != v6PIK || fmt.Sprintf("%X", mak) != v6MAK || fmt.Sprintf("%X", resp.Keys.PIKKCV) != "08D7B4FB" {
		t.Fatalf("unwrapped PIK %X MAK %X", pik, mak)
	}
	bad := resp.Keys
	bad.MAKKCV = []byte{0, 0, 0, 0}
	if err := bad.Verify(unwrap); !errors.Is(err, ErrKCV) || !strings.Contains(err.Error(), "MAK") {
		t.Fatalf("bad KCV: %v", err)
	}
	if s := resp.Keys.String(); strings.Contains(s, "4CD64834") || !strings.Contains(s, "08D7B4FB") {
		t.Fatalf("String leaks or lacks: %s", s)
	}
	// Other layouts: single length 24 bytes, double with TDK 60 bytes.
	for _, l := range []KeyLayout{{8, 4, false}, {16, 4, true}, {16, 3, false}} {
		k := WorkingKeys{PIK: make([]byte, l.KeyLen), PIKKCV: make([]byte, l.KCVLen),
			MAK: bytes.Repeat([]byte{1}, l.KeyLen), MAKKCV: bytes.Repeat([]byte{2}, l.KCVLen)}
		if l.TDK {
			k.TDK, k.TDKKCV = bytes.Repeat([]byte{3}, l.KeyLen), bytes.Repeat([]byte{4}, l.KCVLen)
		}
		b, err := l.Append(nil, k)
		if err != nil || len(b) != l.Len() {
			t.Fatalf("%+v: %d bytes %v", l, len(b), err)
		}
		back, err := l.Parse(b)
		if err != nil || !reflect.DeepEqual(back, k) {
			t.Fatalf("%+v: %+v %v", l, back, err)
		}
		if _, err := l.Parse(b[1:]); !errors.Is(err, ErrFormat) {
			t.Fatalf("short F62: %v", err)
		}
	}
	if l := (KeyLayout{8, 4, false}); l.Len() != 24 {
		t.Fatal(l.Len())
	}
	if l := (KeyLayout{16, 4, true}); l.Len() != 60 {
		t.Fatal(l.Len())
	}
}

func mustDecode(t testing.TB, d *Dialect, p []byte) *Frame {
	t.Helper()
	fr, err := d.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// allMessages is one of every message type, as a FEP and a bank peer would fill them.
func allMessages(t testing.TB) []Message {
	debit := v6DebitMsg(t)
	resp := debit.Response("00")
	resp.LocalTime, resp.LocalDate, resp.SettleDate = "120102", "0228", "0229"
	resp.AcquirerID, resp.RRN, resp.AuthCode = "01020000", "123456789012", "A1B2C3"
	resp.Expiry, resp.AddlData, resp.Private = "2812", "0102000001020000", "LD0000000012345678"
	rev := ReversalOf(debit, ReasonMAC)
	rev.RRN, rev.AuthCode = resp.RRN, resp.AuthCode
	rresp := rev.Response("00")
	rresp.LocalTime, rresp.LocalDate, rresp.AcquirerID, rresp.RRN = "120500", "0228", "01020000", "123456789013"
	keys, _ := DefaultDialect().Keys.Parse(unhex(t, v6F62))
	ic := *debit
	ic.Track2, ic.EntryMode, ic.CardSeq, ic.ICC, ic.Track3 = "", "051", "001", []byte{0x9F, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8}, "996222021234567890123D1561560000000000000003000000114000028120D000000000000D000000000000D"
	net := NetRequest{STAN: 7, Terminal: kiosk, Batch: 3}
	netr := NetResponse{STAN: 7, LocalTime: "235959", LocalDate: "1231", Code: "00", Terminal: kiosk, Batch: 3}
	return []Message{
		&SignOn{STAN: 1, Terminal: kiosk, Batch: 1, Operator: "001"},
		&SignOnResponse{STAN: 1, LocalTime: "120000", LocalDate: "0228", AcquirerID: "01020000",
			RRN: "000000000001", Code: "00", Terminal: kiosk, Batch: 2, Keys: keys},
		&SignOnResponse{STAN: 1, LocalTime: "120000", LocalDate: "0228", Code: "97", Terminal: kiosk, Batch: 1},
		&Echo{net}, &EchoResponse{netr}, &SignOff{net}, &SignOffResponse{netr},
		debit, &ic, &resp, &rev, &rresp,
	}
}

func packAny(t testing.TB, d *Dialect, m Message) []byte {
	t.Helper()
	var p []byte
	var err error
	if m.macRequired() {
		p, err = d.PackMACed(m, cupsMAC(t))
	} else {
		p, err = d.Pack(m)
	}
	if err != nil {
		t.Fatalf("%T: %v", m, err)
	}
	return p
}

// TestRoundTrip packs every message type, decodes it generically and into its own type, and
// requires the same value back, the MAC to verify, and a flipped byte to fail it.
func TestRoundTrip(t *testing.T) {
	for _, d := range testDialects() {
		for _, m := range allMessages(t) {
			p := packAny(t, &d, m)
			fr := mustDecode(t, &d, p)
			if !reflect.DeepEqual(fr.Msg, m) {
				t.Fatalf("%s %T:\n got %+v\nwant %+v", d.Name, m, fr.Msg, m)
			}
			typed := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			if _, err := d.Unpack(p, typed); err != nil || !reflect.DeepEqual(typed, m) {
				t.Fatalf("%s Unpack %T: %v", d.Name, m, err)
			}
			if !m.macRequired() {
				if err := fr.VerifyMAC(Recompute(cupsMAC(t))); !errors.Is(err, ErrNoMAC) {
					t.Fatalf("%T: %v", m, err)
				}
				continue
			}
			if err := d.VerifyMAC(p, Recompute(cupsMAC(t))); err != nil {
				t.Fatalf("%s %T: %v", d.Name, m, err)
			}
			bad := append([]byte(nil), p...)
			bad[len(bad)-9] ^= 0x01 // last byte before F64: inside the MAB, still valid BCD or text
			if err := d.VerifyMAC(bad, Recompute(cupsMAC(t))); !errors.Is(err, ErrMAC) && !errors.Is(err, ErrFormat) {
				t.Fatalf("%s %T tampered: %v", d.Name, m, err)
			}
		}
	}
}

// testDialects: the default and a 0420/0421, 0800-echo, X9.19, single-length-with-TDK bank.
func testDialects() []Dialect {
	a := DefaultDialect()
	b := DefaultDialect()
	b.Name, b.ReversalMTI, b.RepeatMTI = "advice-bank", "0420", "0421"
	b.EchoMTI, b.SignOffMTI = "0800", "0800"
	b.MAC, b.Keys = MACX919, KeyLayout{KeyLen: 16, KCVLen: 4, TDK: false}
	b.TPDU, b.Header = NewTPDU(0x0010, 0x0020), Header{0x60, 0x32, 0x10, 0x32, 0x00, 0x72}
	return []Dialect{a, b}
}

func TestDialects(t *testing.T) {
	for _, d := range testDialects() {
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	d := testDialects()[1]
	rev := ReversalOf(v6DebitMsg(t), ReasonTimeout)
	p := packAny(t, &d, &rev)
	if hex.EncodeToString(p[11:13]) != "0420" || p[0] != 0x60 || NewTPDU(0x10, 0x20) != TPDU(p[:5]) {
		t.Fatalf("advice reversal %X", p[:13])
	}
	resp := rev.Response("00")
	resp.LocalTime, resp.LocalDate, resp.RRN = "120000", "0228", "1"
	p = packAny(t, &d, &resp)
	if hex.EncodeToString(p[11:13]) != "0430" || TPDU(p[:5]).Dest() != 0x20 || TPDU(p[:5]).Src() != 0x10 {
		t.Fatalf("advice response %X", p[:13])
	}
	// The default dialect does not know 0420.
	def := DefaultDialect()
	if _, err := def.Decode(packAny(t, &d, &rev)); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("0420 under default: %v", err)
	}
	bad := DefaultDialect()
	bad.EchoCode = "003"
	bad.EchoMTI = "0800"
	if err := bad.Validate(); !errors.Is(err, ErrDialect) {
		t.Fatalf("ambiguous dialect: %v", err)
	}
	bad = DefaultDialect()
	bad.RepeatMTI = "0410"
	if err := bad.Validate(); !errors.Is(err, ErrDialect) {
		t.Fatalf("response MTI as repeat: %v", err)
	}
}

func TestMatchKey(t *testing.T) {
	d := DefaultDialect()
	debit := v6DebitMsg(t)
	debit.STAN = 123
	resp := debit.Response("00")
	resp.LocalTime, resp.LocalDate, resp.RRN = "120000", "0228", "000000000123"
	rev := ReversalOf(debit, ReasonTimeout)
	rev.Repeat = true
	rresp := rev.Response("00")
	rresp.LocalTime, rresp.LocalDate, rresp.RRN = "120000", "0228", "000000000124"
	keyWire := func(m Message) Key { return KeyOf(mustDecode(t, &d, packAny(t, &d, m)).Fields) }

	reqKey := KeyOfMessage(&d, debit)
	if reqKey != (Key{Class: "0200", Terminal: "KIOSK001", STAN: "000123"}) {
		t.Fatalf("request key %v", reqKey)
	}
	if keyWire(debit) != reqKey {
		t.Fatalf("typed %v != wire %v", reqKey, keyWire(debit))
	}
	respKey := keyWire(&resp)
	if respKey != KeyOfMessage(&d, &resp) || !respKey.Matches(reqKey) || respKey.Slot() != reqKey {
		t.Fatalf("response %v does not match request %v", respKey, reqKey)
	}
	revKey, rrespKey := keyWire(&rev), keyWire(&rresp)
	if !rrespKey.Matches(revKey) || revKey.Class != "0400" {
		t.Fatalf("0410 %v vs 0401 %v", rrespKey, revKey)
	}
	// A late 0210 must not be taken for the answer to the reversal.
	if respKey.Matches(revKey) || rrespKey.Matches(reqKey) {
		t.Fatal("classes collide")
	}
	// A duplicate 0210 from another day does not match a response already dated.
	old := respKey
	old.Date = "0227"
	if old.Matches(respKey) {
		t.Fatal("stale date matched")
	}
	// Terminal padding and STAN zero-padding are the same on both sides.
	short := *debit
	short.Terminal.ID = "T1"
	if keyWire(&short) != KeyOfMessage(&d, &short) || keyWire(&short).Terminal != "T1" {
		t.Fatalf("short terminal id: %v", keyWire(&short))
	}
}

func TestResponseCodes(t *testing.T) {
	cases := map[string]Action{"00": Approve, "51": Decline, "55": Decline, "96": Retry,
		"98": Retry, "A0": ReSignOn, "99": ReSignOn, "ZZ": Decline}
	for code, want := range cases {
		if got := Lookup(code); got.Action != want || got.Code != code || got.Meaning == "" {
			t.Errorf("Lookup(%s) = %+v, want %v", code, got, want)
		}
	}
	seen := map[string]bool{}
	for _, c := range ResponseCodes() {
		if seen[c.Code] || len(c.Code) != 2 {
			t.Errorf("bad or duplicate code %q", c.Code)
		}
		seen[c.Code] = true
	}
	r := DebitResponse{Code: "51"}
	if r.Outcome().Meaning != "insufficient funds" {
		t.Error(r.Outcome())
	}
}

func TestDecodeErrors(t *testing.T) {
	d := DefaultDialect()
	good := unhex(t, v6Debit)[2:]
	cases := []struct {
		name string
		p    []byte
		want error
	}{
		{"short", good[:7], ErrShort},
		{"no bitmap", good[:15], ErrShort},
		{"trailing", append(append([]byte(nil), good...), 0), ErrTrailing},
		{"cut", good[:len(good)-3], ErrFormat},
		{"secondary bitmap", func() []byte { b := append([]byte(nil), good...); b[13] |= 0x80; return b }(), ErrSecondaryBitmap},
		{"unknown field", func() []byte { b := append([]byte(nil), good...); b[13+2] |= 0x01; return b }(), ErrUnknownField},
		{"bad BCD in PAN", func() []byte { b := append([]byte(nil), good...); b[13+10+1] = 0xAB; return b }(), ErrFormat},
		{"unknown MTI", func() []byte { b := append([]byte(nil), good...); b[12] = 0x50; return b }(), ErrUnknownMessage},
	}
	for _, c := range cases {
		if _, err := d.Decode(c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Unpacking into the wrong type is ErrMTI; a 0200 without F64 is ErrNoMAC.
	if _, err := d.Unpack(good, &DebitResponse{}); !errors.Is(err, ErrMTI) {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := d.Pack(v6DebitMsg(t)); !errors.Is(err, ErrNoMAC) {
		t.Errorf("Pack of a 0200: %v", err)
	}
	neg := v6DebitMsg(t)
	neg.Amount = -1
	if _, err := d.PackMACed(neg, cupsMAC(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("negative amount: %v", err)
	}
	nd := v6DebitMsg(t)
	nd.PAN = "62220212345678X"
	if _, err := d.PackMACed(nd, cupsMAC(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("non-digit PAN: %v", err)
	}
	long := v6DebitMsg(t)
	long.Terminal.ID = "KIOSK0001"
	if _, err := d.PackMACed(long, cupsMAC(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("9-char terminal id: %v", err)
	}
}

func TestNoSecretsInStrings(t *testing.T) {
	debit := v6DebitMsg(t)
	rev := ReversalOf(debit, ReasonTimeout)
	resp := debit.Response("00")
	rresp := rev.Response("00")
	for _, s := range []fmt.Stringer{debit, &rev, &resp, &rresp} {
		out := s.String()
		if strings.Contains(out, "6222021234567890123") || strings.Contains(out, "2A084C60") ||
			!strings.Contains(out, "622202*********0123") {
			t.Errorf("%T: %s", s, out)
		}
	}
}
