package hsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func savedFile(t testing.TB) []byte {
	m := newSoft(t, nil)
	signOn(t, m)
	mustClear(t, m, "mdlk", UsageCardMaster, hexMDLK)
	mustClear(t, m, "mak1", UsageMAC, "0123456789ABCDEF")
	var buf bytes.Buffer
	if err := m.SaveKeys(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestKeyFileRoundTrip(t *testing.T) {
	file := savedFile(t)
	if bytes.Contains(file, []byte(hexPIK)) || bytes.Contains(file, []byte(hexMAK)) || bytes.Contains(file, []byte(hexTMK)) {
		t.Fatal("key file holds a clear key")
	}
	if !bytes.Contains(file, []byte(`"kcv": "08D7B4FB"`)) {
		t.Errorf("key file lacks the PIK's KCV:\n%s", file)
	}
	m := newSoft(t, nil)
	if err := m.LoadKeys(bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.MAC("mak", MACCUPS, unhex(t, hexMAB)); string(got) != "F4482C8B" {
		t.Errorf("MAC with reloaded MAK = %s, want F4482C8B", got)
	}
	if got, _ := m.EncryptPIN("pik", testPIN, testPAN); upper(got) != "2A084C604973D4AE" {
		t.Errorf("PIN block with reloaded PIK = %X", got)
	}
	var again bytes.Buffer
	if err := m.SaveKeys(&again); err != nil || !bytes.Equal(again.Bytes(), file) {
		t.Errorf("save after load differs (%v):\n%s\nvs\n%s", err, again.Bytes(), file)
	}
}

func TestKeyFileRefusesKCVMismatch(t *testing.T) {
	var f keyFile
	if err := json.Unmarshal(savedFile(t), &f); err != nil {
		t.Fatal(err)
	}
	f.Keys[3].KCV = "08D7B4FC" // "pik" (sorted: mak, mak1, mdlk, pik, tmk)
	bad, _ := json.Marshal(f)
	m := newSoft(t, nil)
	mustClear(t, m, "tmk", UsageKEK, "FFEEDDCCBBAA99887766554433221100")
	err := m.LoadKeys(bytes.NewReader(bad))
	if !errors.Is(err, ErrKCVMismatch) || !strings.Contains(err.Error(), "pik") {
		t.Fatalf("LoadKeys with a bad KCV err = %v, want ErrKCVMismatch naming pik", err)
	}
	if len(m.List()) != 1 || m.List()[0].KCV == f.Keys[4].KCV {
		t.Errorf("refused file changed the module: %+v", m.List())
	}
	// A flipped key byte gives a different KCV too.
	json.Unmarshal(savedFile(t), &f)
	f.Keys[0].Key = "00" + f.Keys[0].Key[2:]
	bad, _ = json.Marshal(f)
	if err := newSoft(t, nil).LoadKeys(bytes.NewReader(bad)); !errors.Is(err, ErrKCVMismatch) || !strings.Contains(err.Error(), "mak") {
		t.Errorf("LoadKeys with a changed key err = %v, want ErrKCVMismatch naming mak", err)
	}
}

func TestKeyFileRefusesOtherMaster(t *testing.T) {
	other, err := NewSoft(unhex(t, "F0E1D2C3B4A5968778695A4B3C2D1E0F"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.LoadKeys(bytes.NewReader(savedFile(t))); !errors.Is(err, ErrKCVMismatch) || !strings.Contains(err.Error(), "master") {
		t.Errorf("LoadKeys under another master err = %v", err)
	}
}

func TestKeyFileMalformed(t *testing.T) {
	m := newSoft(t, nil)
	good := string(savedFile(t))
	for name, in := range map[string]string{
		"empty":     "",
		"not json":  "keys",
		"version":   strings.Replace(good, `"version": 1`, `"version": 2`, 1),
		"unknown":   strings.Replace(good, `"version": 1`, `"version": 1, "clear": "x"`, 1),
		"usage":     strings.Replace(good, `"usage": "pin"`, `"usage": "data"`, 1),
		"duplicate": strings.Replace(good, `"name": "mak1"`, `"name": "mak"`, 1),
	} {
		if err := m.LoadKeys(strings.NewReader(in)); err == nil {
			t.Errorf("%s: LoadKeys accepted it", name)
		}
	}
	if len(m.List()) != 0 {
		t.Errorf("malformed files left keys: %+v", m.List())
	}
}

func FuzzLoadKeys(f *testing.F) {
	f.Add(savedFile(f))
	f.Add([]byte(`{"version":1,"master_kcv":"","keys":[]}`))
	f.Add([]byte(`{"version":1,"keys":[{"name":"a","usage":"mac","key":"00","kcv":"00000000"}]}`))
	f.Fuzz(func(t *testing.T, file []byte) {
		m := newSoft(t, nil)
		if err := m.LoadKeys(bytes.NewReader(file)); err != nil {
			if len(m.List()) != 0 {
				t.Fatalf("refused file left keys: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := m.SaveKeys(&buf); err != nil {
			t.Fatal(err)
		}
		n := newSoft(t, nil)
		if err := n.LoadKeys(&buf); err != nil {
			t.Fatalf("saved file does not load again: %v", err)
		}
	})
}
