package hsm

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/quancun/quancun/io/crypt"
)

// TestLogNeverHoldsSecrets runs a whole session at debug level, errors included, and checks
// that neither the log nor any error text holds a clear key, the PIN, a clear PIN block or the
// full PAN, while the KCVs are there.
func TestLogNeverHoldsSecrets(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newSoft(t, logger)
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	signOn(t, m)
	mustClear(t, m, "mdlk", UsageCardMaster, hexMDLK)
	mustClear(t, m, "mtk", UsageCardMaster, hexMTK)
	mustClear(t, m, "psam", UsagePSAMMaster, hexPSAMMK)
	_, err := m.Generate("zpk", UsagePIN)
	note(err)
	f62 := unhex(t, hexF62)
	_, err = m.Import("pik", UsagePIN, "tmk", f62[0:16], []byte{1, 2, 3, 4})
	note(err)
	blk, err := m.EncryptPIN("pik", testPIN, testPAN)
	note(err)
	zblk, err := m.TranslatePIN("pik", "zpk", testPAN, blk)
	note(err)
	_, err = m.PINMatches("zpk", testPAN, zblk, "654321")
	note(err)
	_, err = m.TranslatePIN("pik", "zpk", "6222021234567890000", blk)
	note(err)
	_, err = m.EncryptPIN("pik", "12a456", testPAN)
	note(err)
	_, err = m.MAC("mak", MACCUPS, unhex(t, hexMAB))
	note(err)
	note(m.VerifyMAC("mak", MACX919, unhex(t, hexMAB), []byte("12345678")))
	_, r, dt := v2(t)
	_, err = m.IssueMAC2(r, dt)
	note(err)
	r.MAC1[0] ^= 1
	_, err = m.IssueMAC2(r, dt)
	note(err)
	_, err = m.ComputeTAC(tacInput(r, dt))
	note(err)
	_, err = m.PSAMMAC("psam", [][]byte{unhex(t, "2000FF0000000000"), unhex(t, "0000000000000001")}, []byte("x"))
	note(err)
	wrapped, _, err := m.Export("zpk", "tmk")
	note(err)
	var file bytes.Buffer
	note(m.SaveKeys(&file))
	note(m.LoadKeys(bytes.NewReader(file.Bytes())))
	note(m.LoadKeys(strings.NewReader(strings.Replace(file.String(), `"kcv": "08D7B4FB"`, `"kcv": "08D7B4FA"`, 1))))

	zpk, _ := crypt.DecryptECB(unhex(t, hexTMK), wrapped)
	pinBlock, _ := crypt.PINBlockISO0(testPIN, testPAN)
	secrets := []string{hexMaster, hexMDLK, hexMTK, hexTMK, hexPIK, hexMAK, hexPSAMMK, upper(zpk),
		upper(pinBlock), testPIN, testPAN,
		"3ECEA84455E3E0F66522F0ABB69CB30A", "464B17982AB9AC20", "9D9B74A778549138"} // DLK, SESLK, TAC key
	out := buf.String() + strings.Join(errs, "\n")
	for _, s := range secrets {
		forms := []string{s, strings.ToLower(s)}
		if len(s) >= 16 { // any half of a key is a secret too
			forms = append(forms, s[:8], s[8:16], strings.ToLower(s[:8]))
		}
		for _, form := range forms {
			if strings.Contains(out, form) {
				t.Errorf("log or errors contain secret %s (as %q)", s, form)
			}
		}
	}
	for _, want := range []string{"kcv=08D7B4FB", "622202*********0123", "KCV mismatch", "usage=pin"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if len(errs) < 5 {
		t.Errorf("session produced only %d errors; the test wants the error paths too", len(errs))
	}
	if testing.Verbose() {
		t.Log(out)
	}
}
