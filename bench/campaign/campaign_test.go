package campaign_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/campaign"
	"github.com/quancun/quancun/io/kiosk"
)

// TestShortCampaign kills the FEP at least 3 times while 3 kiosks load through faulty links,
// then requires the money check from the peers' books to pass with nothing lost or stuck.
func TestShortCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign takes about half a minute")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "quancun")
	build := exec.Command("go", "build", "-o", bin, "github.com/quancun/quancun/cmd/quancun")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := campaign.Run(ctx, campaign.Options{Bin: bin, Dir: filepath.Join(dir, "run"), Duration: 12 * time.Second,
		Kiosks: 3, Kills: 3, Seed: 42, Out: &out, Progress: -1})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Kills < 3 {
		t.Errorf("kills survived %d, want at least 3", res.Kills)
	}
	if !res.Check.Passed() {
		t.Errorf("%s", res.Check.Line())
	}
	if res.Lost != 0 || res.Stuck != 0 || res.Invented != 0 {
		t.Errorf("lost %d, invented %d, stuck %d; want 0", res.Lost, res.Invented, res.Stuck)
	}
	// The campaign did something worth checking: loads went through and some were approved.
	if res.Loads < 10 || res.Codes[kiosk.Approved] == 0 || res.Final["loaded"] == 0 {
		t.Errorf("too little happened: %d loads, %d approved, final %v", res.Loads, res.Codes[kiosk.Approved], res.Final)
	}
	for _, want := range []string{"kills survived: ", "lost: 0", "stuck: 0", "money check: passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
