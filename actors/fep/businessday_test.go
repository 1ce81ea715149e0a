package fep

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/quancun/quancun/persistence"
)

func TestBusinessDayConfig(t *testing.T) {
	c, err := ParseConfig([]byte(minimal + `
[business_day]
cutover = "22:30"
[reconciliation]
ftp_addr = "127.0.0.1:2121"
user = "quancun"
mask_pan = true
`))
	if err != nil {
		t.Fatal(err)
	}
	cal, err := c.BusinessDay.Calendar()
	if err != nil || cal.At.Hours() != 22.5 || cal.Zone.String() != "Asia/Shanghai" {
		t.Fatalf("calendar %+v %v", cal, err)
	}
	if c.Terminals()["0102000001"] != "QCFEP001" {
		t.Fatalf("terminals %v", c.Terminals())
	}
	for _, bad := range []struct{ toml, key string }{
		{"[business_day]\ncutover = \"24:00\"\n", "business_day.cutover"},
		{"[business_day]\ntime_zone = \"Nowhere/City\"\n", "business_day.time_zone"},
		{"[reconciliation]\nftp_addr = \"nohost\"\n", "reconciliation.ftp_addr"},
		{"[reconciliation]\nftp_adr = \"127.0.0.1:21\"\n", "ftp_adr"},
	} {
		_, err := ParseConfig([]byte(minimal + bad.toml))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%q: %v, want ErrConfig naming %s", bad.toml, err, bad.key)
		}
	}
	// An empty store gives the empty file, named for the auth code and the date.
	s, err := persistence.Open(t.TempDir(), persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name, data, recs, err := c.ReconFile(s, "20261127", nil)
	if err != nil || string(data) != "0|0\n" || len(recs) != 0 || name != "QC_"+c.Platform.AuthCode+"_20261127.txt" {
		t.Fatalf("ReconFile: %q %q %v %v", name, data, recs, err)
	}
}
