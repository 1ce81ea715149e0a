package card

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quancun/quancun/io/apdu"
	"github.com/quancun/quancun/io/crypt"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// script is a Processor that checks each command against an expected trace and answers
// from it, so the clients are pinned to the exact bytes of the spec.
type script struct {
	t     *testing.T
	steps [][2]string // command hex, response hex
	i     int
}

func (s *script) Process(cmd []byte) []byte {
	s.t.Helper()
	if s.i >= len(s.steps) {
		s.t.Fatalf("unexpected command %X", cmd)
	}
	st := s.steps[s.i]
	s.i++
	if got := fmt.Sprintf("%X", cmd); got != strings.ReplaceAll(st[0], " ", "") {
		s.t.Fatalf("command %d = %s, want %s", s.i, got, st[0])
	}
	return hx(s.t, st[1])
}

const (
	v2EF15 = "869820007590000001052000000000001234567820240101203412310100"
	v2FCI  = "6F328409A00000000386980701A5259F0801029F0C1E" + v2EF15
)

func TestEPV2Trace(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"00A4040009A00000000386980701", v2FCI + "9000"},
		{"00B095001E", v2EF15 + "9000"},
		{"805C000204", "00001388 9000"},
		{"805000020B01000003E811223344556610", "00001388000501001A2B3C4D57853F0D 9000"},
		{"805200000B20240315143000D14DBB0204", "27840D33 9000"},
		{"00B201C417", "0005000000000003E80211223344556620240315143000 9000"},
		{"805A000202000608", "D14DBB0227840D33 9000"},
		{"805A000202000508", "6985"},
		{"00B202C417", "6A83"},
	}}
	ctx := context.Background()
	ep := NewEP(NewInProcessReader(s))
	fci, err := ep.SelectApp(ctx, AIDMOHURD())
	if err != nil || !bytes.Equal(fci.DFName, AIDMOHURD()) || fci.AppVersion != 2 || !bytes.Equal(fci.EF15, hx(t, v2EF15)) {
		t.Fatalf("FCI %+v %v", fci, err)
	}
	info, err := ep.ReadEF15(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AppSerial != [8]byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78} || info.CityCode != [2]byte{0x20, 0x00} ||
		info.IssuerCode != [2]byte{0x86, 0x98} || info.StartDate != "20240101" || info.ExpiryDate != "20341231" ||
		info.CardType != 1 || info.AppVersion != 5 {
		t.Errorf("AppInfo %+v", info)
	}
	if bal, err := ep.GetBalance(ctx); err != nil || bal != 5000 {
		t.Errorf("balance %d %v", bal, err)
	}
	term := [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	ir, err := ep.InitForLoad(ctx, 1, 1000, term)
	if err != nil {
		t.Fatal(err)
	}
	want := InitLoadResponse{OldBalance: 5000, Serial: 5, KeyVersion: 1, AlgID: 0, Random: [4]byte{0x1A, 0x2B, 0x3C, 0x4D}, MAC1: [4]byte{0x57, 0x85, 0x3F, 0x0D}}
	if ir != want {
		t.Errorf("init %+v", ir)
	}
	tac, err := ep.CreditForLoad(ctx, [7]byte{0x20, 0x24, 0x03, 0x15, 0x14, 0x30, 0x00}, [4]byte{0xD1, 0x4D, 0xBB, 0x02})
	if err != nil || tac != [4]byte{0x27, 0x84, 0x0D, 0x33} {
		t.Errorf("TAC %X %v", tac, err)
	}
	rec, err := ep.ReadRecord(ctx, 1)
	if err != nil || rec.Serial != 5 || rec.Amount != 1000 || rec.Type != 2 || rec.TermID != term ||
		rec.DateTime != [7]byte{0x20, 0x24, 0x03, 0x15, 0x14, 0x30, 0x00} {
		t.Errorf("record %+v %v", rec, err)
	}
	pr, err := ep.GetTransactionProve(ctx, TxnTypeEPLoad, 6)
	if err != nil || !pr.HasMAC || pr.MAC != [4]byte{0xD1, 0x4D, 0xBB, 0x02} || pr.TAC != tac {
		t.Errorf("prove %+v %v", pr, err)
	}
	_, err = ep.GetTransactionProve(ctx, TxnTypeEPLoad, 5)
	if !errors.Is(err, &apdu.StatusError{SW: apdu.SW6985}) {
		t.Errorf("prove old serial: %v", err)
	}
	_, err = ep.ReadRecord(ctx, 2)
	if !errors.Is(err, ErrNoRecord) || !errors.Is(err, &apdu.StatusError{SW: apdu.SW6A83}) {
		t.Errorf("record 2: %v", err)
	}
}

func TestEPStatusErrors(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"805200000B20240315143000D14DBB0304", "9302"},
		{"805000020B02000003E811223344556610", "9403"},
		{"0020000003123456", "63C2"},
		{"0020000002123F", "9000"},
	}}
	ctx := context.Background()
	ep := NewEP(NewInProcessReader(s))
	_, err := ep.CreditForLoad(ctx, [7]byte{0x20, 0x24, 0x03, 0x15, 0x14, 0x30, 0x00}, [4]byte{0xD1, 0x4D, 0xBB, 0x03})
	if err == nil || err.Error() != "CREDIT FOR LOAD: 9302 MAC invalid" {
		t.Errorf("credit: %v", err)
	}
	_, err = ep.InitForLoad(ctx, 2, 1000, [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66})
	if sw, _ := apdu.SWOf(err); sw != apdu.SW9403 {
		t.Errorf("init key 2: %v", err)
	}
	if err := ep.Verify(ctx, "123456"); !errors.Is(err, &apdu.StatusError{SW: 0x63C2}) {
		t.Errorf("verify: %v", err)
	}
	if err := ep.Verify(ctx, "123"); err != nil {
		t.Errorf("verify odd: %v", err)
	}
	if err := ep.Verify(ctx, "12a4"); !errors.Is(err, ErrBadPIN) {
		t.Errorf("verify letters: %v", err)
	}
}

// T=0 conveniences: 6Cxx repeats with the right Le, 61xx is fetched with GET RESPONSE.
func TestExchangeT0(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"00B201C417", "6C17"},
		{"00B201C417", "0005000000000003E80211223344556620240315143000 9000"},
		{"805C000204", "6104"},
		{"00C0000004", "00001388 9000"},
	}}
	ep := NewEP(NewInProcessReader(s))
	if r, err := ep.ReadRecord(context.Background(), 1); err != nil || r.Amount != 1000 {
		t.Errorf("record %+v %v", r, err)
	}
	if b, err := ep.GetBalance(context.Background()); err != nil || b != 5000 {
		t.Errorf("balance %d %v", b, err)
	}
}

func TestPSAMV4(t *testing.T) {
	s := &script{t: t, steps: [][2]string{
		{"00B0960006", "112233445566 9000"},
		{"801A27011000000000000000012000FF0000000000", "9000"},
		{"80FA05003000000000000000004C4F41445245517C303030303030303031323334353637387C303030303033453880000000000000", "A5B5275E 9000"},
	}}
	ctx := context.Background()
	p := NewPSAM(NewInProcessReader(s))
	if id, err := p.ReadTerminalID(ctx); err != nil || id != [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66} {
		t.Errorf("terminal %X %v", id, err)
	}
	if err := p.InitDES(ctx, 0x27, 0x01, hx(t, "0000000000000001"), hx(t, "2000FF0000000000")); err != nil {
		t.Fatal(err)
	}
	mac, err := p.MAC(ctx, []byte("LOADREQ|0000000012345678|000003E8"), nil)
	if err != nil || mac != [4]byte{0xA5, 0xB5, 0x27, 0x5E} {
		t.Errorf("MAC %X %v", mac, err)
	}
	if err := p.InitDES(ctx, 0x27, 1, []byte{1}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("short factor: %v", err)
	}
}

// macPSAM answers 80FA chains by recomputing the MAC over everything it received, so the
// chunking can be checked against the one-shot algorithm.
type macPSAM struct {
	key, buf, iv []byte
	p1s          []byte
}

func (m *macPSAM) Process(cmd []byte) []byte {
	c, _ := apdu.ParseCommand(cmd)
	m.p1s = append(m.p1s, c.P1)
	if len(c.Data) > psamChunk || len(c.Data)%8 != 0 {
		return []byte{0x67, 0x00}
	}
	d := c.Data
	if c.P1&0x04 != 0 {
		m.iv, m.buf, d = d[:8], nil, d[8:]
	}
	m.buf = append(m.buf, d...)
	if c.P1&0x02 != 0 {
		return []byte{0x90, 0x00}
	}
	mac, _ := crypt.PBOC3DESMACPadded(m.key, m.iv, m.buf)
	return append(mac, 0x90, 0x00)
}

func TestPSAMMACChaining(t *testing.T) {
	key := hx(t, "D33C8669401E0B7F6C82E52A0775C42D")
	data := bytes.Repeat([]byte("0123456789"), 20) // 200 bytes -> 208 padded
	iv := hx(t, "C0300764")
	m := &macPSAM{key: key}
	mac, err := NewPSAM(NewInProcessReader(m)).MAC(context.Background(), data, iv)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := crypt.PBOC3DESMACPadded(key, hx(t, "C030076400000000"), crypt.Pad80(data))
	if !bytes.Equal(mac[:], want) {
		t.Errorf("chained MAC %X, want %X", mac, want)
	}
	// 8+208 bytes: 0x30 (IV + 40), then 0x30 x3 (144), then 24.
	if got := fmt.Sprintf("%X", m.p1s); got != "0703030301" {
		t.Errorf("P1 sequence %s", got)
	}
}

func TestInProcessReaderPull(t *testing.T) {
	s := &script{t: t, steps: [][2]string{{"805C000204", "00001388 9000"}, {"805C000204", "00001388 9000"}}}
	r := NewInProcessReader(s)
	ctx := context.Background()
	r.PullAfter(1)
	if _, err := r.Transmit(ctx, hx(t, "805C000204")); !errors.Is(err, ErrCardRemoved) {
		t.Fatalf("pull after 1: %v", err)
	}
	if s.i != 1 {
		t.Errorf("the command before the pull was not processed")
	}
	if _, err := r.Transmit(ctx, hx(t, "805C000204")); !errors.Is(err, ErrCardRemoved) || s.i != 1 {
		t.Errorf("pulled card reached: %v", err)
	}
	r.Insert()
	if out, err := r.Transmit(ctx, hx(t, "805C000204")); err != nil || len(out) != 6 {
		t.Errorf("after insert: %X %v", out, err)
	}
	r.Pull()
	if r.Present() {
		t.Error("present after Pull")
	}
	_ = r.Close()
	if _, err := r.Transmit(ctx, hx(t, "805C000204")); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v", err)
	}
}

func TestParsersReject(t *testing.T) {
	if _, err := ParseEF15(make([]byte, 29)); !errors.Is(err, ErrBadResponse) {
		t.Error("EF15 29 bytes")
	}
	if _, err := ParseInitLoadResponse(make([]byte, 15)); !errors.Is(err, ErrBadResponse) {
		t.Error("init 15 bytes")
	}
	if _, err := ParseLogRecord(make([]byte, 22)); !errors.Is(err, ErrBadResponse) {
		t.Error("record 22 bytes")
	}
	if _, err := ParseFCI(hx(t, "6F0584099999")); !errors.Is(err, ErrBadResponse) {
		t.Error("FCI with a cut TLV")
	}
	if _, err := ParseTransactionProve(apdu.Response{SW: apdu.SW9000, Data: make([]byte, 5)}); !errors.Is(err, ErrBadResponse) {
		t.Error("prove 5 bytes")
	}
}

func TestParseTransactionProveForms(t *testing.T) {
	mac, tac := [4]byte{0xD1, 0x4D, 0xBB, 0x02}, [4]byte{0x27, 0x84, 0x0D, 0x33}
	tests := []struct {
		resp    string
		hasMAC  bool
		wantErr uint16
	}{
		{"D14DBB0227840D339000", true, 0},
		{"27840D339000", false, 0},
		{"27840D339406", false, 0},
		{"D14DBB0227840D339406", false, 0},
		{"9406", false, apdu.SW9406},
		{"6985", false, apdu.SW6985},
	}
	for _, tt := range tests {
		r, _ := apdu.ParseResponse(hx(t, tt.resp))
		p, err := ParseTransactionProve(r)
		if tt.wantErr != 0 {
			if sw, _ := apdu.SWOf(err); sw != tt.wantErr {
				t.Errorf("%s: err %v", tt.resp, err)
			}
			continue
		}
		if err != nil || p.HasMAC != tt.hasMAC || p.TAC != tac || (tt.hasMAC && p.MAC != mac) {
			t.Errorf("%s: %+v %v", tt.resp, p, err)
		}
	}
}

func TestLogRecordRoundTrip(t *testing.T) {
	b := hx(t, "0005000000000003E80211223344556620240315143000")
	r, err := ParseLogRecord(b)
	if err != nil || !bytes.Equal(r.Bytes(), b) {
		t.Errorf("%X %v", r.Bytes(), err)
	}
}

func TestExchangeRetriesLeOnce(t *testing.T) {
	s := &script{t: t, steps: [][2]string{{"805C000204", "6C04"}, {"805C000204", "6C04"}}}
	_, err := NewEP(NewInProcessReader(s)).GetBalance(context.Background())
	if sw, _ := apdu.SWOf(err); sw != 0x6C04 || s.i != 2 {
		t.Errorf("err %v after %d commands", err, s.i)
	}
}
