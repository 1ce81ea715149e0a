package platform

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/quancun/quancun/io/frame"
)

var update = flag.Bool("update", false, "rewrite testdata/dumps.txt")

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func arr4(s string) (a [4]byte) { copy(a[:], unhex(s)); return }

var (
	ltk    = unhex("404142434445464748494A4B4C4D4E4F")
	dk     = unhex("0123456789ABCDEFFEDCBA9876543210") // KCV 08D7B4FB (spec 9.1 P8)
	host   = HostTime{0x20, 0x24, 0x03, 0x15, 0x14, 0x30, 0x00}
	sent   = HostTime{0x20, 0x24, 0x03, 0x15, 0x14, 0x29, 0x59}
	ref    = "20240315000000000042"
	cardV2 = CardInit{AppSerial: [8]byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78}, City: [2]byte{0x20, 0x00}, CardType: 1,
		KeyIndex: 1, OldBalance: 5000, Serial: 5, KeyVersion: 1, AlgID: 0, Random: arr4("1A2B3C4D"),
		MAC1: arr4("57853F0D"), Amount: 1000, TermID: [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}}
	kioskSample = KioskRef{Terminal: "KIOSK001", Trace: "000017", Date: "20240315"}
)

func signInKey() MACer {
	k, err := SignInKey(ltk)
	if err != nil {
		panic(err)
	}
	return SoftMAC(k)
}

type sample struct {
	name string
	h    Header
	m    Message
	key  MACer // nil: unsigned
}

func samples() []sample {
	block, kcv, err := WrapDynamicKey(ltk, dk)
	if err != nil {
		panic(err)
	}
	var rec [23]byte
	copy(rec[:], unhex("0005000000000003E80211223344556620240315143000"))
	req := func(seq uint32) Header { return Header{Seq: seq, Batch: 7, Time: sent} }
	resp := func(seq uint32, c Code) Header { return Header{Result: c, Seq: seq, Batch: 7, Time: host} }
	d := SoftMAC(dk)
	return []sample{
		{"SIGN-IN", Header{Seq: 1, Time: sent}, &SignIn{AuthCode: "QC0769LOADFEP0000001"}, signInKey()},
		{"SIGN-IN RESPONSE", resp(1, OK), &SignInResponse{Key: &WrappedKey{Block: block, KCV: kcv}}, signInKey()},
		{"SIGN-OUT", req(90), &SignOut{}, d},
		{"SIGN-OUT RESPONSE", resp(90, OK), &SignOutResponse{}, d},
		{"HEARTBEAT", req(2), &Heartbeat{}, d},
		{"HEARTBEAT RESPONSE", resp(2, OK), &HeartbeatResponse{}, d},
		{"CARD CHECK", req(3), &CardCheck{Card: cardV2, BankCode: "0102000001", Kiosk: kioskSample}, d},
		{"CARD CHECK RESPONSE", resp(3, OK), &CardCheckResponse{Reference: ref}, d},
		{"CARD CHECK RESPONSE (blocked)", resp(3, CardBlocked), &CardCheckResponse{Text: Text{"blacklisted 2024-03-01"}}, d},
		{"BOOK", req(4), &Book{Reference: ref, Amount: 1000, BankRRN: "240315123456", BankAuth: "A12345", SettleDate: "20240315"}, d},
		{"BOOK RESPONSE", resp(4, OK), &BookResponse{Reference: ref, Issued: &Issued{MAC2: arr4("D14DBB02"), HostTime: host}}, d},
		{"CONFIRM", req(5), &Confirm{Reference: ref, Status: Written, TAC: arr4("27840D33"), NewBalance: 6000}, d},
		{"CONFIRM (U)", req(6), &Confirm{Reference: ref, Status: Unknown}, d},
		{"CONFIRM RESPONSE", resp(5, OK), &ConfirmResponse{Reference: ref}, d},
		{"PENDING QUERY", req(7), &PendingQuery{AppSerial: cardV2.AppSerial}, d},
		{"PENDING RESPONSE", resp(7, OK), &PendingResponse{AppSerial: cardV2.AppSerial, Loads: []Pending{{Reference: ref, Amount: 1000,
			Serial: 5, TermID: cardV2.TermID, HostTime: host, MAC2: arr4("D14DBB02"), OldBalance: 5000, Status: Unknown}}}, d},
		{"REWRITE", req(8), &Rewrite{Reference: ref, Card: CardInit{AppSerial: cardV2.AppSerial, KeyIndex: 1, OldBalance: 5000, Serial: 5,
			KeyVersion: 1, Random: arr4("0BADCAFE"), MAC1: arr4("11223344"), Amount: 1000, TermID: cardV2.TermID},
			Kiosk: KioskRef{Terminal: "KIOSK002", Trace: "000031", Date: "20240316"}}, d},
		{"REWRITE RESPONSE", resp(8, OK), &RewriteResponse{Reference: ref, Issued: &Issued{MAC2: arr4("55667788"), HostTime: host}}, d},
		{"RESOLVE-U", req(9), &Resolve{Reference: ref, AppSerial: cardV2.AppSerial, Observed: 6, Method: ByProve,
			MAC2: arr4("D14DBB02"), TAC: arr4("27840D33")}, d},
		{"RESOLVE-U (0018 record)", req(10), &Resolve{Reference: ref, AppSerial: cardV2.AppSerial, Observed: 8, Method: ByLog, Record: rec}, d},
		{"RESOLVE-U RESPONSE", resp(9, OK), &ResolveResponse{Reference: ref, Outcome: Applied}, d},
		{"CARD CHECK RESPONSE (stale batch, unsigned)", resp(11, StaleKey), &CardCheckResponse{}, nil},
	}
}

func (s sample) pack() ([]byte, error) { return Pack(s.h, s.m, s.key) }

func TestRoundTripEveryMessage(t *testing.T) {
	seen := map[Type]bool{}
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b, err := s.pack()
			if err != nil {
				t.Fatal(err)
			}
			h, m, err := Unpack(b, s.key)
			if err != nil {
				t.Fatal(err)
			}
			want := s.h
			want.Type = s.m.Type()
			if want.Result == "" {
				want.Result = OK
			}
			if h != want || !reflect.DeepEqual(m, s.m) {
				t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", h, m, want, s.m)
			}
			seen[h.Type] = true
		})
	}
	for _, s := range schemaTable {
		if !seen[s.Type] {
			t.Errorf("no sample of %s", s.Name)
		}
	}
}

func TestUnpackAs(t *testing.T) {
	b, _ := samples()[10].pack() // BOOK RESPONSE
	_, r, err := UnpackAs[*BookResponse](b, SoftMAC(dk))
	if err != nil || r.Issued.MAC2 != arr4("D14DBB02") {
		t.Fatalf("%+v %v", r, err)
	}
	if _, _, err := UnpackAs[*RewriteResponse](b, SoftMAC(dk)); !errors.Is(err, ErrFormat) {
		t.Fatalf("wrong type: %v", err)
	}
}

func TestEveryFlippedByteRefused(t *testing.T) {
	for _, s := range samples() {
		if s.key == nil {
			continue
		}
		b, _ := s.pack()
		for i := range b {
			c := bytes.Clone(b)
			c[i] ^= 0x80
			if _, _, err := Unpack(c, s.key); err == nil {
				t.Fatalf("%s: flipped byte %d accepted", s.name, i)
			}
		}
		// A body byte flipped is always a MAC failure: the MAC is checked first.
		c := bytes.Clone(b)
		c[headerSize] ^= 1
		if len(c) > headerSize+macSize {
			if _, _, err := Unpack(c, s.key); !errors.Is(err, ErrMAC) {
				t.Fatalf("%s: body flip: %v", s.name, err)
			}
		}
	}
}

// TestStaleDynamicKey plays the platform side of a re-sign-in: a request MACed with the old
// batch's key is refused by batch (A1, unsigned) before any MAC check, and a request claiming
// the new batch but MACed with the old key fails the MAC.
func TestStaleDynamicKey(t *testing.T) {
	oldKey, newKey := SoftMAC(dk), SoftMAC(unhex("00112233445566778899AABBCCDDEEFF"))
	const current = 8
	req, err := Pack(Header{Seq: 12, Batch: 7, Time: sent}, &Heartbeat{}, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	// Platform: peek, compare batch, refuse.
	h, err := PeekHeader(req)
	if err != nil || h.Batch == current {
		t.Fatalf("%+v %v", h, err)
	}
	refusal, err := Pack(Header{Result: StaleKey, Seq: h.Seq, Batch: h.Batch, Time: host}, &HeartbeatResponse{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// FEP: the unsigned A1 is readable with any key.
	rh, _, err := Unpack(refusal, oldKey)
	if err != nil || rh.Result != StaleKey {
		t.Fatalf("%+v %v", rh, err)
	}
	// New batch number, old key: MAC fails under the current key.
	forged, _ := Pack(Header{Seq: 13, Batch: current, Time: sent}, &Heartbeat{}, oldKey)
	if _, _, err := Unpack(forged, newKey); !errors.Is(err, ErrMAC) {
		t.Fatalf("old key accepted: %v", err)
	}
	// An OK response with a zero MAC is not an unsigned refusal: refused.
	ok, _ := Pack(Header{Result: OK, Seq: 12, Batch: 7, Time: host}, &HeartbeatResponse{}, oldKey)
	copy(ok[len(ok)-macSize:], make([]byte, macSize))
	if _, _, err := Unpack(ok, oldKey); !errors.Is(err, ErrMAC) {
		t.Fatalf("zero-MAC OK accepted: %v", err)
	}
	// Only refusal codes may be packed unsigned, and never in requests.
	if _, err := Pack(Header{Result: OK, Time: host}, &HeartbeatResponse{}, nil); !errors.Is(err, ErrMACMissing) {
		t.Fatalf("unsigned OK: %v", err)
	}
	if _, err := Pack(Header{Batch: 7, Time: sent}, &Heartbeat{}, nil); !errors.Is(err, ErrMACMissing) {
		t.Fatalf("unsigned request: %v", err)
	}
}

func TestSignInKeyDelivery(t *testing.T) {
	b, _ := samples()[1].pack()
	h, r, err := UnpackAs[*SignInResponse](b, signInKey())
	if err != nil {
		t.Fatal(err)
	}
	if h.Batch != 7 {
		t.Fatalf("batch %d", h.Batch)
	}
	got, err := UnwrapDynamicKey(ltk, r.Key.Block, r.Key.KCV)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("%X %v", got, err)
	}
	if r.Key.KCV != arr4("08D7B4FB") {
		t.Fatalf("KCV %X", r.Key.KCV)
	}
	bad := r.Key.KCV
	bad[0] ^= 1
	if _, err := UnwrapDynamicKey(ltk, r.Key.Block, bad); !errors.Is(err, ErrKeyCheck) {
		t.Fatalf("bad KCV: %v", err)
	}
	// The sign-in key is not the long-term key: a MAC under the LTK itself fails.
	if _, _, err := Unpack(b, SoftMAC(ltk)); !errors.Is(err, ErrMAC) {
		t.Fatalf("LTK as MAC key: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	d := SoftMAC(dk)
	cases := []struct {
		name string
		h    Header
		m    Message
	}{
		{"OK card check without reference", Header{Result: OK, Time: host}, &CardCheckResponse{}},
		{"OK book without MAC2", Header{Result: OK, Time: host}, &BookResponse{Reference: ref}},
		{"OK sign-in without key", Header{Result: OK, Time: host}, &SignInResponse{}},
		{"OK resolve without decision", Header{Result: OK, Time: host}, &ResolveResponse{Reference: ref}},
		{"short auth code", Header{Time: sent}, &SignIn{AuthCode: "SHORT"}},
		{"reference not digits", Header{Time: sent}, &ConfirmResponse{Reference: "2024031500000000004X"}},
		{"request with result", Header{Result: CardBlocked, Time: sent}, &Heartbeat{}},
		{"bad status", Header{Time: sent}, &Confirm{Reference: ref, Status: 'X'}},
		{"bad time", Header{Time: HostTime{0x20, 0x24, 0x13}}, &Heartbeat{}},
	}
	for _, c := range cases {
		if _, err := Pack(c.h, c.m, d); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	good, _ := samples()[6].pack()
	bad := map[string][]byte{
		"empty": nil, "short": good[:10], "magic": append([]byte("XX"), good[2:]...),
		"trailing": append(bytes.Clone(good), 0),
	}
	v2 := bytes.Clone(good)
	v2[2] = 2
	bad["version"] = v2
	for name, b := range bad {
		if _, _, err := Unpack(b, d); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, _, err := Unpack(v2, d); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
}

func TestCodeTable(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if !validCode(c.Code) || seen[c.Code] || c.Meaning == "" || c.Kiosk == "" {
			t.Errorf("bad row %+v", c)
		}
		seen[c.Code] = true
	}
	if i, _ := OK.Info(); i.Unsigned {
		t.Fatal("OK must be signed")
	}
}

// TestDumps pins every sample's bytes to testdata/dumps.txt, which docs/protocols/platform.md
// quotes. Run with -update after a deliberate format change.
func TestDumps(t *testing.T) {
	var out strings.Builder
	out.WriteString("# platform link sample frames (go test ./io/platform -run TestDumps -update)\n")
	out.WriteString("# LTK 404142434445464748494A4B4C4D4E4F, sign-in key Div(LTK,\"QCSIGNIN\"),\n")
	out.WriteString("# dynamic key 0123456789ABCDEFFEDCBA9876543210 (batch 7)\n")
	for _, s := range samples() {
		b, err := s.pack()
		if err != nil {
			t.Fatal(err)
		}
		f, _ := frame.Append(nil, b)
		fmt.Fprintf(&out, "\n## %s\nframe %X\n", s.name, f)
		fmt.Fprintf(&out, "  len %X | magic %X | ver %02X | type %02X | result %X | seq %X | batch %X | time %X\n",
			f[:2], b[:2], b[2], b[3], b[4:6], b[6:10], b[10:14], b[14:21])
		bd, _ := parseBody(b[headerSize : len(b)-macSize])
		for _, fl := range bd.fields {
			ts, _ := fl.tag.spec()
			fmt.Fprintf(&out, "  %02X %02X %-24s %X\n", byte(fl.tag), len(fl.val), ts.Name, fl.val)
		}
		fmt.Fprintf(&out, "  MAC %X\n", b[len(b)-macSize:])
	}
	path := "testdata/dumps.txt"
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != out.String() {
		t.Fatalf("dumps differ from %s; run with -update if the change is deliberate", path)
	}
}

func BenchmarkCardCheckPackUnpack(b *testing.B) {
	s := samples()[6]
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.pack()
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Unpack(p, s.key); err != nil {
			b.Fatal(err)
		}
	}
}
