package simplatform

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`data_dir = "d"`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.Ceiling != 100000 || c.MaxAmount != 100000 || c.LTK != DefaultLTK ||
		c.MDLK != DefaultMDLK || c.MTK != DefaultMTK || len(c.AuthCodes) != 1 || c.AuthCodes[0] != DefaultAuthCode ||
		c.CheckTTL != 24*time.Hour || c.SignInSkew != 300*time.Second || c.FTP.Listen != DefaultFTPListen ||
		c.FTP.UploadDir != "upload" || c.Outage.Mode != OutageNone {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseConfigFull(t *testing.T) {
	c, err := ParseConfig([]byte(`
listen = "127.0.0.1:9401"
data_dir = "/var/lib/platform"
auth_codes = ["QC0769LOADFEP0000001", "QC0769LOADFEP0000002"]
group_factor = "2000FF0000000000"
ceiling = 50000
blocked = ["00000000deadbeef"]
latency = "50ms"
[ftp]
listen = "off"
[outage]
mode = "ignore"
after = "10s"
for = "5s"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ceiling != 50000 || len(c.AuthCodes) != 2 || c.Latency != 50*time.Millisecond || c.FTP.Listen != FTPOff ||
		c.Outage.For != 5*time.Second || !c.blockedSet()["00000000DEADBEEF"] || c.GroupFactor != "2000FF0000000000" {
		t.Fatalf("parsed: %+v", c)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"no data dir":     ``,
		"unknown key":     "data_dir = \"d\"\nceilng = 5",
		"short auth code": "data_dir = \"d\"\nauth_codes = [\"QC\"]",
		"bad ltk":         "data_dir = \"d\"\nltk = \"00\"",
		"single DES mdlk": "data_dir = \"d\"\nmdlk = \"11111111111111111111111111111111\"",
		"bad blocked":     "data_dir = \"d\"\nblocked = [\"xyz\"]",
		"bad group":       "data_dir = \"d\"\ngroup_factor = \"2000\"",
		"bad outage":      "data_dir = \"d\"\n[outage]\nmode = \"sometimes\"",
		"escaping upload": "data_dir = \"d\"\n[ftp]\nupload_dir = \"../x\"",
		"negative":        "data_dir = \"d\"\nceiling = -1",
		"not toml":        "data_dir = ",
	} {
		if _, err := ParseConfig([]byte(doc)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLoadConfigRelativeDataDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "platform.toml")
	os.WriteFile(p, []byte(`data_dir = "data"`), 0o600)
	c, err := LoadConfig(p)
	if err != nil || c.DataDir != filepath.Join(dir, "data") {
		t.Fatalf("%+v %v", c.DataDir, err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`data_dir = "d"`))
	f.Add([]byte("data_dir = \"d\"\nceiling = 5\n[ftp]\nlisten = \"off\"\n[outage]\nmode = \"refuse\"\nfor = \"1s\""))
	f.Add([]byte(`auth_codes = ["x"]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted what Validate refuses: %v", err)
		}
	})
}

func TestParseJournalRefusesCorruption(t *testing.T) {
	good := `{"ev":"signin","at":"2024-03-15T06:30:00Z","batch":1,"dk_kcv":"08D7B4FB"}
{"ev":"check","at":"2024-03-15T06:30:01Z","batch":1,"ref":"20240315000000000001","card":"0000000012345678","amount":1000,"bank_code":"0102000001","kiosk":{"terminal":"KIOSK001","trace":"000001","date":"20240315"},"init":{"serial":5,"random":"1A2B3C4D","term":"112233445566","old_balance":5000,"key_index":1,"key_version":1,"alg":0,"mac1":"57853F0D"}}
{"ev":"book","at":"2024-03-15T06:30:02Z","batch":1,"ref":"20240315000000000001","mac2":"D14DBB02","host_time":"20240315143000","rrn":"240315123456","settle":"20240315"}
{"ev":"confirm","at":"2024-03-15T06:30:03Z","ref":"20240315000000000001","write":"S","tac":"27840D33"}
`
	j, err := ParseJournal(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := j.Load("20240315000000000001")
	if !ok || !l.Booked || l.Write != WriteOK || l.Last().MAC2 != [4]byte{0xD1, 0x4D, 0xBB, 0x02} || j.Written()["0000000012345678"] != 1000 {
		t.Fatalf("replayed %+v", l)
	}
	for name, bad := range map[string]string{
		"book of unknown ref": strings.Replace(good, `"ev":"book","at":"2024-03-15T06:30:02Z","batch":1,"ref":"20240315000000000001"`, `"ev":"book","at":"2024-03-15T06:30:02Z","batch":1,"ref":"20240315000000000002"`, 1),
		"batch goes back":     good + `{"ev":"signin","at":"2024-03-15T06:31:00Z","batch":1}` + "\n",
		"unknown field":       `{"ev":"signin","batch":1,"extra":1}` + "\n",
		"booked twice":        good + strings.Split(good, "\n")[2] + "\n",
		"bad status":          strings.Replace(good, `"write":"S"`, `"write":"X"`, 1),
	} {
		if _, err := ParseJournal(strings.NewReader(bad)); !errors.Is(err, ErrJournal) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"ev":"signin","at":"2024-03-15T06:30:00Z","batch":1}` + "\n"))
	f.Add([]byte(`{"ev":"check","ref":"20240315000000000001","card":"0000000012345678","amount":1,"kiosk":{},"init":{"random":"00000000","term":"000000000000","mac1":"00000000"}}` + "\n" +
		`{"ev":"book","ref":"20240315000000000001","mac2":"00000000","host_time":"20240315143000"}` + "\n" +
		`{"ev":"rewrite","ref":"20240315000000000001","mac2":"00000000","host_time":"20240315143000","init":{"random":"00000000","term":"000000000000","mac1":"00000000"}}` + "\n" +
		`{"ev":"resolve","ref":"20240315000000000001","outcome":"Y"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseJournal(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, l := range j.Loads() {
			if len(l.Inits) == 0 || (l.Write == WriteOK && !l.Booked) {
				t.Fatalf("replay built an impossible load: %+v", l)
			}
			_ = l.Last()
		}
		_ = j.Written()
		_ = j.ReconEntries()
	})
}
