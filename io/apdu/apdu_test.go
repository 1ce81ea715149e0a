package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCommandCases(t *testing.T) {
	tests := []struct {
		in       string
		wantData string
		wantLe   int
	}{
		{"00A40000", "", -1},    // case 1
		{"805C000204", "", 4},   // case 2 (GET BALANCE)
		{"00B0950000", "", 256}, // case 2, Le 00
		{"00A4040009A00000000386980701", "A00000000386980701", -1},           // case 3 (SELECT, spec 9.2)
		{"805000020B01000003E811223344556610", "01000003E8112233445566", 16}, // case 4 (INIT FOR LOAD)
	}
	for _, tt := range tests {
		c, err := ParseCommand(hx(t, tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if !bytes.Equal(c.Data, hx(t, tt.wantData)) || c.Le != tt.wantLe {
			t.Errorf("%s: data %X Le %d, want %s %d", tt.in, c.Data, c.Le, tt.wantData, tt.wantLe)
		}
		if got := fmt.Sprintf("%X", c.Bytes()); got != tt.in {
			t.Errorf("re-encode %s = %s", tt.in, got)
		}
	}
	c, _ := ParseCommand(hx(t, "805000020B01000003E811223344556610"))
	if c.CLA != 0x80 || c.INS != 0x50 || c.P1 != 0 || c.P2 != 2 {
		t.Errorf("header %+v", c)
	}
}

func TestParseCommandRejects(t *testing.T) {
	for _, in := range []string{"", "00", "00A400", "00A4040002A0", "00A404000000", "00A4040001A00000"} {
		if _, err := ParseCommand(hx(t, in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err %v, want ErrMalformed", in, err)
		}
	}
}

func TestCommandValidate(t *testing.T) {
	if err := (Command{Data: make([]byte, 256), Le: -1}).Validate(); !errors.Is(err, ErrMalformed) {
		t.Errorf("256 data bytes: %v", err)
	}
	if err := (Command{Le: 257}).Validate(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Le 257: %v", err)
	}
	if got := (Command{CLA: 0, INS: 0xB0, P1: 0x95, Le: 0}).Bytes(); !bytes.Equal(got, hx(t, "00B0950000")) {
		t.Errorf("Le 0 = %X", got)
	}
}

func TestResponse(t *testing.T) {
	r, err := ParseResponse(hx(t, "27840D339000"))
	if err != nil || r.SW != SW9000 || !bytes.Equal(r.Data, hx(t, "27840D33")) || !r.OK() {
		t.Fatalf("%+v %v", r, err)
	}
	if !bytes.Equal(r.Bytes(), hx(t, "27840D339000")) {
		t.Errorf("Bytes %X", r.Bytes())
	}
	r, _ = ParseResponse(hx(t, "6985"))
	if r.SW != SW6985 || len(r.Data) != 0 || r.SW1() != 0x69 || r.SW2() != 0x85 {
		t.Errorf("%+v", r)
	}
	if _, err := ParseResponse([]byte{0x90}); !errors.Is(err, ErrMalformed) {
		t.Errorf("1 byte: %v", err)
	}
}

func TestStatusError(t *testing.T) {
	err := fmt.Errorf("load: %w", &StatusError{SW: SW9302, Cmd: "CREDIT FOR LOAD"})
	if got := err.Error(); got != "load: CREDIT FOR LOAD: 9302 MAC invalid" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, &StatusError{SW: SW9302}) || errors.Is(err, &StatusError{SW: SW6985}) {
		t.Error("errors.Is by SW")
	}
	if sw, ok := SWOf(err); !ok || sw != SW9302 {
		t.Errorf("SWOf = %04X %v", sw, ok)
	}
	for sw, want := range map[uint16]string{0x63C2: "PIN wrong, 2 tries left", 0x6C17: "wrong Le, correct length 23",
		0x6104: "4 response bytes available", SW9406: "required MAC not available", 0x1234: "unknown status"} {
		if got := Meaning(sw); got != want {
			t.Errorf("Meaning(%04X) = %q, want %q", sw, got, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"00A40000", "805C000204", "00A4040009A00000000386980701", "805000020B01000003E811223344556610", "00A404000000"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed command invalid: %v", err)
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatalf("round trip %X -> %X", b, c.Bytes())
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x90, 0x00})
	f.Add([]byte{0x27, 0x84, 0x0D, 0x33, 0x90, 0x00})
	f.Add([]byte{0x61})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("round trip %X -> %X", b, r.Bytes())
		}
	})
}
