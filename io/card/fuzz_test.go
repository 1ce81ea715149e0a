package card

import (
	"testing"

	"github.com/quancun/quancun/io/apdu"
)

func seed(f *testing.F, hexes ...string) {
	for _, s := range hexes {
		f.Add(hx(f, s))
	}
	f.Add([]byte{})
}

func FuzzParseFCI(f *testing.F) {
	seed(f, v2FCI, "6F0584099999", "6F81039F1F00", "6F8200")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseFCI(b) })
}

func FuzzParseEF15(f *testing.F) {
	seed(f, v2EF15)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseEF15(b)
		if err == nil && len(a.StartDate) != 8 {
			t.Fatalf("start date %q", a.StartDate)
		}
	})
}

func FuzzParseInitLoadResponse(f *testing.F) {
	seed(f, "00001388000501001A2B3C4D57853F0D")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseInitLoadResponse(b) })
}

func FuzzParseBalance(f *testing.F) {
	seed(f, "00001388")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseBalance(b) })
}

func FuzzParseTAC(f *testing.F) {
	seed(f, "27840D33")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseTAC(b) })
}

func FuzzParseTransactionProve(f *testing.F) {
	seed(f, "D14DBB0227840D339000", "27840D339406", "9406", "6985")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := apdu.ParseResponse(b)
		if err != nil {
			return
		}
		p, err := ParseTransactionProve(r)
		if err == nil && p.HasMAC && r.SW != apdu.SW9000 {
			t.Fatal("MAC trusted without 9000")
		}
	})
}

func FuzzParseLogRecord(f *testing.F) {
	seed(f, "0005000000000003E80211223344556620240315143000")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLogRecord(b)
		if err == nil && string(r.Bytes()) != string(b) {
			t.Fatalf("round trip %X", b)
		}
	})
}
