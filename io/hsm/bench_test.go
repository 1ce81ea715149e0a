package hsm

import (
	"testing"

	"github.com/quancun/quancun/io/crypt"
)

func BenchmarkIssueMAC2(b *testing.B) {
	m, r, dt := v2(b)
	for b.Loop() {
		if _, err := m.IssueMAC2(r, dt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPSAMMAC(b *testing.B) {
	m := newSoft(b, nil)
	mustClear(b, m, "psam", UsagePSAMMaster, hexPSAMMK)
	factors := [][]byte{unhex(b, "2000FF0000000000"), unhex(b, "0000000000000001")}
	data := make([]byte, 200) // a typical kiosk load request
	mac, _ := m.PSAMMAC("psam", factors, data)
	for b.Loop() {
		if err := m.VerifyPSAMMAC("psam", factors, data, mac); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslatePIN(b *testing.B) {
	m := newSoft(b, nil)
	signOn(b, m)
	if _, err := m.Generate("zpk", UsagePIN); err != nil {
		b.Fatal(err)
	}
	blk := unhex(b, "2A084C604973D4AE")
	for b.Loop() {
		if _, err := m.TranslatePIN("pik", "zpk", testPAN, blk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMACCUPS(b *testing.B) {
	m := newSoft(b, nil)
	signOn(b, m)
	mab := unhex(b, hexMAB)
	b.SetBytes(int64(len(mab)))
	for b.Loop() {
		if _, err := m.MAC("mak", MACCUPS, mab); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMACX919(b *testing.B) {
	m := newSoft(b, nil)
	signOn(b, m)
	mab := unhex(b, hexMAB)
	b.SetBytes(int64(len(mab)))
	for b.Loop() {
		if _, err := m.MAC("mak", MACX919, mab); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMACCUPSUncached is the same MAC through io/crypt with a clear key, i.e. a fresh key
// schedule per call: the price the cached schedules avoid (docs/security-module.md).
func BenchmarkMACCUPSUncached(b *testing.B) {
	key, mab := unhex(b, hexMAK), unhex(b, hexMAB)
	b.SetBytes(int64(len(mab)))
	for b.Loop() {
		if _, err := crypt.CUPSMAC(key, mab); err != nil {
			b.Fatal(err)
		}
	}
}
