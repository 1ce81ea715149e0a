package hsm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/quancun/quancun/io/crypt"
)

// Spec vectors (spec/card-and-host.md section 9).
const (
	hexMaster = "000102030405060708090A0B0C0D0E0F" // module master key for the tests
	hexMDLK   = "11111111111111112222222222222222"
	hexMTK    = "33333333333333334444444444444444"
	hexTMK    = "00112233445566778899AABBCCDDEEFF"
	hexPIK    = "0123456789ABCDEFFEDCBA9876543210"
	hexMAK    = "89ABCDEF0123456776543210FEDCBA98"
	hexPSAMMK = "0123456789ABCDEFFEDCBA9876543210"
	hexF62    = "4CD648347C7C41F1691C586546C2CBE108D7B4FBCDA7E1762F31892177130A0D50FBD76EEB7A8DF9"
	hexMAB    = "0200702404C020C098131962220212345678901230000000000000001000000002281202100012376222021234567890123D2812220123456789004B494F534B3030313839383331303034383939303030313135362A084C604973D4AE2600000000000000001122000001000000184C4430303030303030303132333435363738"
	testPAN   = "6222021234567890123"
	testPIN   = "123456"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func upper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func newSoft(t testing.TB, logger *slog.Logger) *Soft {
	t.Helper()
	m, err := NewSoft(unhex(t, hexMaster), logger)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustClear(t testing.TB, m *Soft, name string, u Usage, hexKey string) KeyInfo {
	t.Helper()
	info, err := m.ImportClear(name, u, unhex(t, hexKey))
	if err != nil {
		t.Fatalf("ImportClear(%s): %v", name, err)
	}
	return info
}

// signOn imports PIK and MAK from the V6 field 62 under the TMK.
func signOn(t testing.TB, m *Soft) {
	t.Helper()
	mustClear(t, m, "tmk", UsageKEK, hexTMK)
	f62 := unhex(t, hexF62)
	if _, err := m.Import("pik", UsagePIN, "tmk", f62[0:16], f62[16:20]); err != nil {
		t.Fatalf("Import PIK: %v", err)
	}
	if _, err := m.Import("mak", UsageMAC, "tmk", f62[20:36], f62[36:40]); err != nil {
		t.Fatalf("Import MAK: %v", err)
	}
}

func TestNewSoftRefusesBadMaster(t *testing.T) {
	for _, k := range []string{"0011223344556677", "1111111111111111" + "1111111111111111", ""} {
		if _, err := NewSoft(unhex(t, k), nil); !errors.Is(err, ErrKeyLength) {
			t.Errorf("NewSoft(%d bytes) err = %v, want ErrKeyLength", len(k)/2, err)
		}
	}
}

func TestImportV6KeyBlock(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	pik, err := m.Info("pik")
	if err != nil || pik.KCV != "08D7B4FB" || pik.Usage != UsagePIN {
		t.Errorf("Info(pik) = %+v, %v; want KCV 08D7B4FB usage pin", pik, err)
	}
	mac, _ := crypt.KCV(unhex(t, hexMAK))
	if mak, _ := m.Info("mak"); mak.KCV != upper(mac) {
		t.Errorf("MAK KCV = %s, want %s", mak.KCV, upper(mac))
	}
}

func TestImportKCVMismatchKeepsOldKey(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	f62 := unhex(t, hexF62)
	kcv := append([]byte(nil), f62[16:20]...)
	kcv[3] ^= 0x01
	// A different key under the TMK, with the PIK's KCV flipped: must be refused.
	_, err := m.Import("pik", UsagePIN, "tmk", f62[20:36], kcv)
	if !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("Import with flipped KCV err = %v, want ErrKCVMismatch", err)
	}
	_, err = m.Import("pik", UsagePIN, "tmk", f62[0:16], kcv)
	if !errors.Is(err, ErrKCVMismatch) {
		t.Fatalf("Import with flipped KCV err = %v, want ErrKCVMismatch", err)
	}
	if info, _ := m.Info("pik"); info.KCV != "08D7B4FB" {
		t.Errorf("after refused import PIK KCV = %s, want the old 08D7B4FB", info.KCV)
	}
	// A refused first import stores nothing.
	if _, err := m.Import("pik2", UsagePIN, "tmk", f62[0:16], kcv); !errors.Is(err, ErrKCVMismatch) {
		t.Fatal(err)
	}
	if _, err := m.Info("pik2"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Info(pik2) err = %v, want ErrNoKey", err)
	}
	// 3-byte KCVs are accepted (spec 7.5: "sometimes 3").
	if _, err := m.Import("pik3", UsagePIN, "tmk", f62[0:16], f62[16:19]); err != nil {
		t.Errorf("Import with 3-byte KCV: %v", err)
	}
}

func TestImportRules(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	mustClear(t, m, "mdlk", UsageCardMaster, hexMDLK)
	f62 := unhex(t, hexF62)
	cases := []struct {
		name, wrap string
		usage      Usage
		wrapped    []byte
		kcv        []byte
		want       error
	}{
		{"x", "nokek", UsagePIN, f62[0:16], f62[16:20], ErrNoKey},
		{"x", "pik", UsagePIN, f62[0:16], f62[16:20], ErrWrongUsage},  // a PIN key cannot unwrap
		{"x", "mdlk", UsagePIN, f62[0:16], f62[16:20], ErrWrongUsage}, // nor can a card master
		{"x", "tmk", UsageKEK, f62[0:16], f62[16:20], ErrWrongUsage},  // KEKs are not imported under KEKs
		{"x", "tmk", UsagePIN, f62[0:8], f62[16:20], ErrKeyLength},    // 8-byte PIN key
		{"x", "tmk", UsagePIN, f62[0:15], f62[16:20], ErrKeyLength},
		{"x", "tmk", UsagePIN, f62[0:16], nil, ErrInput},
		{"bad name", "tmk", UsagePIN, f62[0:16], f62[16:20], ErrInput},
		{"mak", "tmk", UsagePIN, f62[0:16], f62[16:20], ErrWrongUsage}, // name keeps its usage
	}
	for _, c := range cases {
		if _, err := m.Import(c.name, c.usage, c.wrap, c.wrapped, c.kcv); !errors.Is(err, c.want) {
			t.Errorf("Import(%q, %s, %s, %d bytes) err = %v, want %v", c.name, c.usage, c.wrap, len(c.wrapped), err, c.want)
		}
	}
}

func TestSingleDESOnlyForMAC(t *testing.T) {
	m := newSoft(t, nil)
	if _, err := m.ImportClear("mak1", UsageMAC, unhex(t, "0123456789ABCDEF")); err != nil {
		t.Errorf("8-byte MAC key: %v", err)
	}
	for _, u := range []Usage{UsagePIN, UsageKEK, UsageCardMaster, UsagePSAMMaster} {
		if _, err := m.ImportClear("k", u, unhex(t, "0123456789ABCDEF")); !errors.Is(err, ErrKeyLength) {
			t.Errorf("8-byte %s key err = %v, want ErrKeyLength", u, err)
		}
	}
	if _, err := m.ImportClear("k", Usage("data"), unhex(t, hexPIK)); !errors.Is(err, ErrInput) {
		t.Errorf("unknown usage err = %v, want ErrInput", err)
	}
}

func TestExportGenerateRoundTrip(t *testing.T) {
	bank := newSoft(t, nil)
	kiosk, err := NewSoft(unhex(t, "F0E1D2C3B4A5968778695A4B3C2D1E0F"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustClear(t, bank, "zmk", UsageKEK, hexTMK)
	mustClear(t, kiosk, "zmk", UsageKEK, hexTMK)
	info, err := bank.Generate("zpk", UsagePIN)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, kcv, err := bank.Export("zpk", "zmk")
	if err != nil {
		t.Fatal(err)
	}
	if upper(kcv) != info.KCV || len(wrapped) != 16 {
		t.Fatalf("Export kcv %X (%d-byte key), want %s", kcv, len(wrapped), info.KCV)
	}
	clear, _ := crypt.DecryptECB(unhex(t, hexTMK), wrapped)
	for i, b := range clear {
		if parity(b) != 1 {
			t.Errorf("generated key byte %d = %02X has even parity", i, b)
		}
	}
	got, err := kiosk.Import("zpk", UsagePIN, "zmk", wrapped, kcv)
	if err != nil || got.KCV != info.KCV {
		t.Fatalf("Import of exported key = %+v, %v", got, err)
	}
	// The same key on both sides: a block from one is read by the other.
	blk, _ := bank.EncryptPIN("zpk", testPIN, testPAN)
	if ok, err := kiosk.PINMatches("zpk", testPAN, blk, testPIN); !ok || err != nil {
		t.Errorf("PINMatches across modules = %v, %v", ok, err)
	}
	// Masters and KEKs never leave.
	mustClear(t, bank, "mdlk", UsageCardMaster, hexMDLK)
	for _, n := range []string{"mdlk", "zmk"} {
		if _, _, err := bank.Export(n, "zmk"); !errors.Is(err, ErrWrongUsage) {
			t.Errorf("Export(%s) err = %v, want ErrWrongUsage", n, err)
		}
	}
	if _, _, err := bank.Export("zpk", "zpk"); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("Export under a PIN key err = %v, want ErrWrongUsage", err)
	}
}

func TestStoredOnlyWrapped(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	m.mu.RLock()
	defer m.mu.RUnlock()
	want, _ := crypt.EncryptECB(unhex(t, hexMaster), unhex(t, hexPIK))
	if e := m.keys["pik"]; !bytes.Equal(e.wrapped, want) {
		t.Errorf("stored PIK = %X, want it under the master key %X", e.wrapped, want)
	}
	for name, e := range m.keys {
		if bytes.Contains([]byte(upper(e.wrapped)), []byte(hexPIK)) || bytes.Contains([]byte(upper(e.wrapped)), []byte(hexMAK)) {
			t.Errorf("key %s stored in clear", name)
		}
	}
}

func TestList(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	var names []string
	for _, k := range m.List() {
		names = append(names, k.Name+"/"+string(k.Usage))
	}
	if got := strings.Join(names, ","); got != "mak/mac,pik/pin,tmk/kek" {
		t.Errorf("List = %s", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newSoft(t, nil)
	signOn(t, m)
	mab := unhex(t, hexMAB)
	f62 := unhex(t, hexF62)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if g%2 == 0 {
					if _, err := m.Import("mak", UsageMAC, "tmk", f62[20:36], f62[36:40]); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if mac, err := m.MAC("mak", MACCUPS, mab); err != nil || string(mac) != "F4482C8B" {
					t.Errorf("MAC = %s, %v", mac, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func FuzzImport(f *testing.F) {
	f62 := unhex(f, hexF62)
	f.Add(f62[0:16], f62[16:20], "pin")
	f.Add(f62[20:28], f62[36:39], "mac")
	f.Add([]byte{}, []byte{}, "kek")
	f.Fuzz(func(t *testing.T, wrapped, kcv []byte, usage string) {
		m := newSoft(t, nil)
		mustClear(t, m, "tmk", UsageKEK, hexTMK)
		info, err := m.Import("k", Usage(usage), "tmk", wrapped, kcv)
		if err != nil {
			if _, e := m.Info("k"); !errors.Is(e, ErrNoKey) {
				t.Fatalf("refused import (%v) stored a key", err)
			}
			return
		}
		clear, _ := crypt.DecryptECB(unhex(t, hexTMK), wrapped)
		want, _ := crypt.KCV(clear)
		if info.KCV != upper(want) || !strings.HasPrefix(info.KCV, upper(kcv)) {
			t.Fatalf("imported KCV %s, key gives %X, caller said %X", info.KCV, want, kcv)
		}
	})
}
