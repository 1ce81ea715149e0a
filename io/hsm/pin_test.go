package hsm

import (
	"errors"
	"testing"

	"github.com/quancun/quancun/io/crypt"
)

func TestEncryptPINV6(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	blk, err := m.EncryptPIN("pik", testPIN, testPAN)
	if err != nil || upper(blk) != "2A084C604973D4AE" {
		t.Fatalf("EncryptPIN = %X, %v; want 2A084C604973D4AE", blk, err)
	}
	if ok, err := m.PINMatches("pik", testPAN, blk, testPIN); !ok || err != nil {
		t.Errorf("PINMatches(right PIN) = %v, %v", ok, err)
	}
	for _, wrong := range []string{"123457", "12345", "1234567", ""} {
		if ok, err := m.PINMatches("pik", testPAN, blk, wrong); ok || err != nil {
			t.Errorf("PINMatches(%q) = %v, %v; want false, nil", wrong, ok, err)
		}
	}
}

func TestTranslatePIN(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	if _, err := m.Generate("zpk", UsagePIN); err != nil {
		t.Fatal(err)
	}
	kiosk := unhex(t, "2A084C604973D4AE") // V6 F52 under the PIK
	bank, err := m.TranslatePIN("pik", "zpk", testPAN, kiosk)
	if err != nil {
		t.Fatal(err)
	}
	if upper(bank) == upper(kiosk) {
		t.Fatal("translated block equals the input block")
	}
	if ok, err := m.PINMatches("zpk", testPAN, bank, testPIN); !ok || err != nil {
		t.Errorf("PINMatches under the ZPK = %v, %v", ok, err)
	}
	if ok, _ := m.PINMatches("pik", testPAN, bank, testPIN); ok {
		t.Error("translated block still matches under the PIK")
	}
	// A block for another PAN is not a valid format-0 block for this one.
	if _, err := m.TranslatePIN("pik", "zpk", "6222021234567890000", kiosk); !errors.Is(err, crypt.ErrPINFormat) {
		t.Errorf("wrong PAN err = %v, want crypt.ErrPINFormat", err)
	}
	if _, err := m.TranslatePIN("pik", "zpk", testPAN, kiosk[:7]); !errors.Is(err, ErrInput) {
		t.Errorf("7-byte block err = %v, want ErrInput", err)
	}
}

func TestPINKeyUsage(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	blk := unhex(t, "2A084C604973D4AE")
	if _, err := m.TranslatePIN("mak", "pik", testPAN, blk); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("translate from a MAC key err = %v, want ErrWrongUsage", err)
	}
	if _, err := m.TranslatePIN("pik", "tmk", testPAN, blk); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("translate to a KEK err = %v, want ErrWrongUsage", err)
	}
	if _, err := m.EncryptPIN("mak", testPIN, testPAN); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("EncryptPIN under a MAC key err = %v, want ErrWrongUsage", err)
	}
	if _, err := m.PINMatches("nokey", testPAN, blk, testPIN); !errors.Is(err, ErrNoKey) {
		t.Errorf("unknown key err = %v, want ErrNoKey", err)
	}
}

func TestMaskPAN(t *testing.T) {
	for in, want := range map[string]string{
		testPAN:                "622202*********0123",
		"4321987654321098":     "432198******1098",
		"123":                  "****",
		"12345678901234567890": "****",
	} {
		if got := maskPAN(in); got != want {
			t.Errorf("maskPAN(%s) = %s, want %s", in, got, want)
		}
	}
}

func FuzzTranslatePIN(f *testing.F) {
	f.Add(unhex(f, "2A084C604973D4AE"), testPAN)
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, block []byte, pan string) {
		m := newSoft(t, nil)
		signOn(t, m)
		out, err := m.TranslatePIN("pik", "pik", pan, block)
		if err != nil {
			return
		}
		if upper(out) != upper(block) {
			t.Errorf("translating to the same key changed the block: %X -> %X", block, out)
		}
		if _, err := m.PINMatches("pik", pan, block, "0000"); err != nil {
			t.Errorf("PINMatches refused a block TranslatePIN accepted: %v", err)
		}
	})
}
