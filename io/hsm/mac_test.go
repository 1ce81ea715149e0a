package hsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/quancun/quancun/io/crypt"
)

func TestHostMACsV6(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	mab := unhex(t, hexMAB)
	cups, err := m.MAC("mak", MACCUPS, mab)
	if err != nil || string(cups) != "F4482C8B" {
		t.Errorf("CUPS MAC = %q, %v; want F4482C8B", cups, err)
	}
	x919, err := m.MAC("mak", MACX919, mab)
	if err != nil || upper(x919) != "D906A041A2E9D677" {
		t.Errorf("X9.19 = %X, %v; want D906A041A2E9D677", x919, err)
	}
	if err := m.VerifyMAC("mak", MACCUPS, mab, []byte("F4482C8B")); err != nil {
		t.Errorf("VerifyMAC CUPS: %v", err)
	}
	for _, bad := range [][]byte{[]byte("F4482C8C"), []byte("F4482C8"), nil, []byte("f4482c8b")} {
		if err := m.VerifyMAC("mak", MACCUPS, mab, bad); !errors.Is(err, ErrMACMismatch) {
			t.Errorf("VerifyMAC(%q) err = %v, want ErrMACMismatch", bad, err)
		}
	}
	mab[10] ^= 1
	if err := m.VerifyMAC("mak", MACX919, mab, x919); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("VerifyMAC over tampered MAB err = %v, want ErrMACMismatch", err)
	}
}

func TestHostMACsPublished(t *testing.T) {
	m := newSoft(t, nil)
	mustClear(t, m, "x99", UsageMAC, "0123456789ABCDEF")
	mustClear(t, m, "x919", UsageMAC, "0123456789ABCDEFFEDCBA9876543210")
	mustClear(t, m, "p5", UsageMAC, "01020304050607081112131415161718")
	if got, _ := m.MAC("x99", MACX99, []byte("7654321 Now is the time for ")); upper(got) != "F1D30F6849312CA4" {
		t.Errorf("X9.9 = %X, want F1D30F6849312CA4 (P2)", got)
	}
	if got, _ := m.MAC("x919", MACX919, []byte("Now is the time for all ")); upper(got) != "A1C72E74EA3FA9B6" {
		t.Errorf("X9.19 = %X, want A1C72E74EA3FA9B6 (V5)", got)
	}
	// P5 with a zero IV is not published; check the algorithm against io/crypt instead.
	data := []byte("LOADREQ|0000000012345678|000003E8")
	want, _ := crypt.PBOC3DESMACPadded(unhex(t, "01020304050607081112131415161718"), nil, crypt.Pad80(data))
	if got, _ := m.MAC("p5", MACPBOC3DES, data); !bytes.Equal(got, want) || len(got) != 4 {
		t.Errorf("PBOC 3DES MAC = %X, want %X", got, want)
	}
	if _, err := m.MAC("x99", MACX919, nil); !errors.Is(err, ErrKeyLength) {
		t.Errorf("X9.19 with a single-DES key err = %v, want ErrKeyLength", err)
	}
	if _, err := m.MAC("x919", MACX99, nil); !errors.Is(err, ErrKeyLength) {
		t.Errorf("X9.9 with a double-length key err = %v, want ErrKeyLength", err)
	}
	if _, err := m.MAC("x919", MACAlg(99), nil); !errors.Is(err, ErrInput) {
		t.Errorf("unknown alg err = %v, want ErrInput", err)
	}
	// P6 needs the cnblogs message, which is not in the spec; single-DES CUPS vs crypt:
	if got, _ := m.MAC("x99", MACCUPS, data); !bytes.Equal(got, must(crypt.CUPSMAC(unhex(t, "0123456789ABCDEF"), data))) {
		t.Errorf("single-DES CUPS MAC = %s differs from io/crypt", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestMACKeyUsage(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	if _, err := m.MAC("pik", MACCUPS, nil); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("MAC under a PIN key err = %v, want ErrWrongUsage", err)
	}
	if _, err := m.MAC("tmk", MACX919, nil); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("MAC under a KEK err = %v, want ErrWrongUsage", err)
	}
	if err := m.VerifyMAC("nokey", MACX919, nil, nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("unknown key err = %v, want ErrNoKey", err)
	}
}

// checkTwins compares the module's cached-schedule MACs with io/crypt, the reference.
func checkTwins(t *testing.T, key8, key16, data []byte) {
	m := newSoft(t, nil)
	if _, err := m.ImportClear("k8", UsageMAC, key8); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ImportClear("k16", UsageMAC, key16); err != nil {
		t.Fatal(err)
	}
	pairs := []struct {
		name string
		alg  MACAlg
		key  string
		ref  []byte
	}{
		{"X9.9", MACX99, "k8", must(crypt.X99(key8, data))},
		{"X9.19", MACX919, "k16", must(crypt.X919(key16, data))},
		{"CUPS-DES", MACCUPS, "k8", must(crypt.CUPSMAC(key8, data))},
		{"CUPS-3DES", MACCUPS, "k16", must(crypt.CUPSMAC(key16, data))},
		{"PBOC-3DES", MACPBOC3DES, "k16", must(crypt.PBOC3DESMACPadded(key16, nil, crypt.Pad80(data)))},
	}
	for _, p := range pairs {
		got, err := m.MAC(p.key, p.alg, data)
		if err != nil || !bytes.Equal(got, p.ref) {
			t.Fatalf("%s over %X = %X, %v; io/crypt gives %X", p.name, data, got, err, p.ref)
		}
	}
	k8, _ := crypt.NewCipher(key8)
	for _, pad80 := range []bool{false, true} {
		p := crypt.PadZero(data)
		if pad80 {
			p = crypt.Pad80(data)
		}
		var want [8]byte
		for i := 0; i < len(p); i += 8 {
			for j := range want {
				want[j] ^= p[i+j]
			}
			k8.Encrypt(want[:], want[:])
		}
		if got := cbcMAC(k8, data, pad80); got != want {
			t.Fatalf("cbcMAC(pad80=%v) over %d bytes = %X, want %X", pad80, len(data), got, want)
		}
	}
}

func TestMACTwinsMatchCrypt(t *testing.T) {
	k8 := unhex(t, "0123456789ABCDEF")
	k16 := unhex(t, hexMAK)
	for n := 0; n <= 33; n++ {
		checkTwins(t, k8, k16, bytes.Repeat([]byte{byte(n)}, n))
	}
}

func FuzzMACMatchesCrypt(f *testing.F) {
	f.Add([]byte("0123456789ABCDEF"), []byte(""))
	f.Add([]byte("89ABCDEF0123456776543210FEDCBA98"), []byte("Now is the time for all "))
	f.Fuzz(func(t *testing.T, keys, data []byte) {
		k := make([]byte, 24)
		copy(k, keys)
		if bytes.Equal(k[8:16], k[16:24]) {
			k[23] ^= 0xFE // ImportClear accepts equal halves, but keep the keys distinct
		}
		checkTwins(t, k[:8], k[8:], data)
	})
}
