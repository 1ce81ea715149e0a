package crypt

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func h(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eqHex(t *testing.T, name string, got []byte, want string) {
	t.Helper()
	if g := strings.ToUpper(hex.EncodeToString(got)); g != want {
		t.Errorf("%s = %s, want %s", name, g, want)
	}
}

func TestPublishedVectors(t *testing.T) {
	// P1 FIPS 81
	out, err := EncryptECB(h(t, "0123456789ABCDEF"), []byte("Now is t"))
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "P1", out, "3FA40E8A984D4815")
	// P2 X9.9 FIPS 113
	m, _ := X99(h(t, "0123456789ABCDEF"), []byte("7654321 Now is the time for "))
	eqHex(t, "P2", m, "F1D30F6849312CA4")
	// P3 SESLK
	seslk, _ := LoadSessionKey(h(t, "11223344556677888877665544332211"), h(t, "11223344"), h(t, "0000"))
	eqHex(t, "P3", seslk, "9B1D924E05595603")
	// P4 MAC1 (ED load)
	m, _ = PBOCMAC(seslk, h(t, "000000000000100001001122334455"))
	eqHex(t, "P4", m, "2988AE5A")
	// P5 PBOC 3DES MAC
	key := h(t, "01020304050607081112131415161718")
	enc, _ := EncryptECB(key, h(t, "182713000000000000DF0458778792A164C8721AF4056B508180000000000000"))
	data := append(h(t, "84D4001124"), enc...)
	m, _ = PBOC3DESMACPadded(key, h(t, "C0300764594D6D8D"), Pad80(data))
	eqHex(t, "P5", m, "369A09B9")
	// V5 X9.19
	m, _ = X919(h(t, "0123456789ABCDEFFEDCBA9876543210"), []byte("Now is the time for all "))
	eqHex(t, "X9.19", m, "A1C72E74EA3FA9B6")
	// P7 ISO0
	pb, err := PINBlockISO0("1234", "43219876543210987")
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "P7", pb, "0412AC89ABCDEF67")
	pin, err := PINFromISO0(pb, "43219876543210987")
	if err != nil || pin != "1234" {
		t.Errorf("PINFromISO0 = %q, %v", pin, err)
	}
	// P8 KCV
	k, _ := KCV(h(t, "0123456789ABCDEFFEDCBA9876543210"))
	eqHex(t, "P8", k, "08D7B4FB")
}

func TestEPLoadV2(t *testing.T) {
	serial := h(t, "0000000012345678")
	dlk, _ := Diversify(h(t, "11111111111111112222222222222222"), serial)
	eqHex(t, "DLK", dlk, "3ECEA84455E3E0F66522F0ABB69CB30A")
	dtk, _ := Diversify(h(t, "33333333333333334444444444444444"), serial)
	eqHex(t, "DTK", dtk, "4A7A62B4C9BF7199D7E11613B1EBE0A1")
	tk, _ := TACKey(dtk)
	eqHex(t, "TAC key", tk, "9D9B74A778549138")
	seslk, _ := LoadSessionKey(dlk, h(t, "1A2B3C4D"), h(t, "0005"))
	eqHex(t, "SESLK", seslk, "464B17982AB9AC20")
	m, _ := PBOCMAC(seslk, h(t, "00001388000003E802112233445566"))
	eqHex(t, "MAC1", m, "57853F0D")
	m, _ = PBOCMAC(seslk, h(t, "000003E80211223344556620240315143000"))
	eqHex(t, "MAC2", m, "D14DBB02")
	m, _ = PBOCMAC(tk, h(t, "000017700005000003E80211223344556620240315143000"))
	eqHex(t, "TAC", m, "27840D33")
}

func TestTwoLevelV3(t *testing.T) {
	k1, _ := Diversify(h(t, "11111111111111112222222222222222"), h(t, "2000FF0000000000"))
	eqHex(t, "K1", k1, "9ECF89A2C1C2EB55AF64921197C81A3E")
	dlk, _ := DiversifyPath(h(t, "11111111111111112222222222222222"), h(t, "2000FF0000000000"), h(t, "0000000012345678"))
	eqHex(t, "DLK", dlk, "56ABA73A20BCBD24186CD693B44CFD63")
}

func TestPSAMMACV4(t *testing.T) {
	// The PSAM applies the last factor first.
	key, _ := DiversifyPath(h(t, "0123456789ABCDEFFEDCBA9876543210"), h(t, "2000FF0000000000"), h(t, "0000000000000001"))
	eqHex(t, "derived", key, "D33C8669401E0B7F6C82E52A0775C42D")
	m, _ := PBOC3DESMACPadded(key, make([]byte, 8), Pad80([]byte("LOADREQ|0000000012345678|000003E8")))
	eqHex(t, "PSAM MAC", m, "A5B5275E")
}

func TestHostV6(t *testing.T) {
	tmk := h(t, "00112233445566778899AABBCCDDEEFF")
	pik := h(t, "0123456789ABCDEFFEDCBA9876543210")
	mak := h(t, "89ABCDEF0123456776543210FEDCBA98")
	epik, _ := EncryptECB(tmk, pik)
	emak, _ := EncryptECB(tmk, mak)
	kp, _ := KCV(pik)
	km, _ := KCV(mak)
	f62 := bytes.Join([][]byte{epik, kp, emak, km}, nil)
	eqHex(t, "F62", f62, "4CD648347C7C41F1691C586546C2CBE108D7B4FBCDA7E1762F31892177130A0D50FBD76EEB7A8DF9")
	pb, _ := PINBlockISO0("123456", "6222021234567890123")
	eqHex(t, "PIN block", pb, "06122662A9876FED")
	f52, _ := EncryptECB(pik, pb)
	eqHex(t, "F52", f52, "2A084C604973D4AE")
	mab := h(t, "0200702404C020C098131962220212345678901230000000000000001000000002281202100012376222021234567890123D2812220123456789004B494F534B3030313839383331303034383939303030313135362A084C604973D4AE2600000000000000001122000001000000184C4430303030303030303132333435363738")
	m, _ := CUPSMAC(mak, mab)
	if string(m) != "F4482C8B" {
		t.Errorf("CUPS MAC = %s", m)
	}
	x, _ := X919(mak, mab)
	eqHex(t, "X9.19 MAB", x, "D906A041A2E9D677")
}

func TestPINBlockRejects(t *testing.T) {
	for _, c := range []struct{ pin, pan string }{{"123", "6222021234567890123"}, {"12a4", "6222021234567890123"}, {"1234", "12345"}} {
		if _, err := PINBlockISO0(c.pin, c.pan); err == nil {
			t.Errorf("PINBlockISO0(%q,%q) accepted", c.pin, c.pan)
		}
	}
	if _, err := PINFromISO0(make([]byte, 8), "6222021234567890123"); err == nil {
		t.Error("PINFromISO0 accepted a zero block")
	}
}

func FuzzPINFromISO0(f *testing.F) {
	f.Add([]byte{0x04, 0x12, 0xAC, 0x89, 0xAB, 0xCD, 0xEF, 0x67}, "43219876543210987")
	f.Fuzz(func(t *testing.T, block []byte, pan string) {
		pin, err := PINFromISO0(block, pan)
		if err != nil {
			return
		}
		back, err := PINBlockISO0(pin, pan)
		if err != nil || !bytes.Equal(back, block) {
			t.Fatalf("round trip of %x: %x %v", block, back, err)
		}
	})
}
