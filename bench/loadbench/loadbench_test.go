package loadbench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/loadbench"
)

// TestTinyBench runs the harness for real at the smallest size — 2 kiosks, the FEP and the
// relay, a fixed rate with the latency split — and checks that the report has what a
// reader needs: loads/s, a latency histogram on both sides, the switch-added part, CPU
// per load, and the money check passing from the peers' books. Not a performance test.
func TestTinyBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the platform, a bank, the FEP and the relay as processes (~30 s)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "quancun")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/quancun/quancun/cmd/quancun").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := loadbench.Run(ctx, loadbench.Options{Bin: bin, Dir: filepath.Join(dir, "run"), Kiosks: 2,
		Warmup: 2 * time.Second, Duration: 3 * time.Second, Rate: 20})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.MoneyPassed {
		t.Fatalf("money check: %s", rep.Money)
	}
	if len(rep.Phases) != 2 || rep.Phases[0].System != loadbench.FEP || rep.Phases[1].System != loadbench.Relay {
		t.Fatalf("phases: %+v", rep.Phases)
	}
	for _, p := range rep.Phases {
		if p.LoadsPerSec <= 0 || p.Loads == 0 {
			t.Errorf("%s: no loads measured: %+v", p.System, p)
		}
		if p.Latency.Count != p.Loads || len(p.Latency.Buckets) == 0 || p.Latency.P50 <= 0 || p.Latency.P99 < p.Latency.P50 {
			t.Errorf("%s: latency histogram %+v for %d loads", p.System, p.Latency, p.Loads)
		}
		if p.Added == nil || p.Added.Count == 0 || p.Added.P50 > p.Latency.P99 {
			t.Errorf("%s: switch-added latency %+v", p.System, p.Added)
		}
		if p.CPUPerLoadUS <= 0 || p.PeakRSSKiB <= 0 {
			t.Errorf("%s: CPU per load %.0f µs, peak RSS %d KiB", p.System, p.CPUPerLoadUS, p.PeakRSSKiB)
		}
		if p.AllocsPerLoad <= 0 {
			t.Errorf("%s: allocations per load %.0f", p.System, p.AllocsPerLoad)
		}
	}
	var md, js bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"money check: passed", "| fep | 20/s |", "| relay | 20/s |", "FEP throughput vs relay"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var back loadbench.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Phases[0].Latency.Count != rep.Phases[0].Latency.Count {
		t.Errorf("JSON does not round-trip: %v", err)
	}
	t.Log("\n" + md.String())
}
