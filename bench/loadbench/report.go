package loadbench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Dist is a latency distribution in milliseconds, from an HDR histogram (3 significant
// digits). Buckets is its percentile distribution, for plotting and for the CI check.
type Dist struct {
	Count   int64    `json:"count"`
	P50     float64  `json:"p50_ms"`
	P90     float64  `json:"p90_ms"`
	P99     float64  `json:"p99_ms"`
	P999    float64  `json:"p99_9_ms"`
	Max     float64  `json:"max_ms"`
	Buckets []Bucket `json:"histogram"`
}

// Bucket is one point of the percentile distribution.
type Bucket struct {
	Percentile float64 `json:"percentile"`
	ValueMS    float64 `json:"value_ms"`
	Count      int64   `json:"count"`
}

func dist(h *hdrhistogram.Histogram) Dist {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	d := Dist{Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
	if d.Count > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(2) {
			d.Buckets = append(d.Buckets, Bucket{Percentile: b.Quantile, ValueMS: ms(b.ValueAt), Count: b.Count})
		}
	}
	return d
}

// Result is one measured phase.
type Result struct {
	System           string             `json:"system"` // fep or relay
	Mode             string             `json:"mode"`   // max or N/s
	Rate             float64            `json:"rate"`
	Kiosks           int                `json:"kiosks"`
	Seconds          float64            `json:"seconds"`
	Loads            int64              `json:"loads"` // complete durable loads in the window
	Failed           int64              `json:"failed"`
	LoadsPerSec      float64            `json:"loads_per_sec"`
	Latency          Dist               `json:"latency"`                // as the kiosk sees it
	Added            *Dist              `json:"switch_added,omitempty"` // the part the switch adds
	CPUPerLoadUS     float64            `json:"cpu_per_load_us"`        // the switch process
	PeerCPUPerLoadUS map[string]float64 `json:"peer_cpu_per_load_us"`   // platform, bank, bench (kiosks)
	PeakRSSKiB       int64              `json:"peak_rss_kib"`           // VmHWM of the switch
	AllocsPerLoad    float64            `json:"allocs_per_load"`        // runtime/metrics of the switch; -1 unknown
	AllocKiBPerLoad  float64            `json:"alloc_kib_per_load"`
	LoadAvg          string             `json:"loadavg"`
	FailSamples      []string           `json:"fail_samples,omitempty"`
}

// Report is everything one run measured.
type Report struct {
	Machine      string   `json:"machine"`
	Started      string   `json:"started"`
	LoadAvgStart string   `json:"loadavg_start"`
	LoadAvgEnd   string   `json:"loadavg_end"`
	Kiosks       int      `json:"kiosks"`
	Warmup       string   `json:"warmup"`
	Duration     string   `json:"duration"`
	Phases       []Result `json:"phases"`
	Idle         *Idle    `json:"idle,omitempty"`
	Money        string   `json:"money_check"`
	MoneyPassed  bool     `json:"money_check_passed"`
	Booked       int64    `json:"booked_fen"`
	Written      int      `json:"loads_written"`
	Targets      []Target `json:"targets"`
}

// Target is one row of the table.
type Target struct {
	Measure  string `json:"measure"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met,omitempty"` // nil: not measured in this run
}

func (r *Report) phase(system string, rate bool) *Result {
	for i := range r.Phases {
		p := &r.Phases[i]
		if p.System == system && (p.Rate > 0) == rate {
			return p
		}
	}
	return nil
}

func yes(b bool) *bool { return &b }

func targets(r *Report) []Target {
	var t []Target
	fmax, rmax := r.phase(FEP, false), r.phase(Relay, false)
	frate := r.phase(FEP, true)
	row := func(m, tg string) *Target {
		t = append(t, Target{Measure: m, Target: tg, Measured: "not measured"})
		return &t[len(t)-1]
	}
	x := row("complete durable loads/s (max rate)", ">= 5,000")
	if fmax != nil {
		x.Measured, x.Met = fmt.Sprintf("%.0f", fmax.LoadsPerSec), yes(fmax.LoadsPerSec >= 5000)
	}
	x = row("FEP CPU per load", "<= 100 µs")
	if p := firstOf(fmax, frate); p != nil {
		x.Measured, x.Met = fmt.Sprintf("%.0f µs (%s)", p.CPUPerLoadUS, p.Mode), yes(p.CPUPerLoadUS <= 100)
	}
	x = row("FEP-added latency p99 at 2,000 loads/s", "<= 5 ms")
	if frate != nil && frate.Added != nil {
		x.Measured = fmt.Sprintf("%.2f ms at %s (achieved %.0f/s)", frate.Added.P99, frate.Mode, frate.LoadsPerSec)
		x.Met = yes(frate.Added.P99 <= 5 && frate.LoadsPerSec >= 0.95*frate.Rate && frate.Rate >= 2000)
	}
	x = row("FEP throughput vs relay (max rate, same run)", ">= 60 %")
	if fmax != nil && rmax != nil && rmax.LoadsPerSec > 0 {
		ratio := fmax.LoadsPerSec / rmax.LoadsPerSec * 100
		x.Measured, x.Met = fmt.Sprintf("%.0f %% (%.0f / %.0f)", ratio, fmax.LoadsPerSec, rmax.LoadsPerSec), yes(ratio >= 60)
	}
	x = row("memory per idle connected kiosk", "<= 12 KiB at 50,000")
	if r.Idle != nil && r.Idle.Connected > 0 {
		x.Measured = fmt.Sprintf("%.1f KiB at %d kiosks", r.Idle.KiBPerKiosk, r.Idle.Connected)
		x.Met = yes(r.Idle.KiBPerKiosk <= 12 && r.Idle.Connected >= 50000)
	}
	return t
}

func firstOf(ps ...*Result) *Result {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteMarkdown writes the tables people read.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# quancun bench\n\n%s; started %s; load average %s at start, %s at end; %d kiosks, warm-up %s, measured %s per phase.\n\n",
		r.Machine, r.Started, r.LoadAvgStart, r.LoadAvgEnd, r.Kiosks, r.Warmup, r.Duration)
	fmt.Fprintln(&b, "## Targets\n\n| measure | target | measured | met |\n|---|---|---|---|")
	for _, t := range r.Targets {
		met := "-"
		if t.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*t.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Measure, t.Target, t.Measured, met)
	}
	fmt.Fprintln(&b, "\n## Phases\n\n| system | mode | loads/s | loads | failed | p50 ms | p90 ms | p99 ms | p99.9 ms | switch-added p50/p99/p99.9 ms | CPU µs/load | platform / bank / bench µs/load | peak RSS MiB | allocs / KiB per load | load avg |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range r.Phases {
		added := "-"
		if p.Added != nil && p.Added.Count > 0 {
			added = fmt.Sprintf("%.2f / %.2f / %.2f", p.Added.P50, p.Added.P99, p.Added.P999)
		}
		alloc := "-"
		if p.AllocsPerLoad >= 0 {
			alloc = fmt.Sprintf("%.0f / %.1f", p.AllocsPerLoad, p.AllocKiBPerLoad)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d | %d | %.2f | %.2f | %.2f | %.2f | %s | %.0f | %.0f / %.0f / %.0f | %.1f | %s | %s |\n",
			p.System, p.Mode, p.LoadsPerSec, p.Loads, p.Failed, p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.P999,
			added, p.CPUPerLoadUS, p.PeerCPUPerLoadUS["platform"], p.PeerCPUPerLoadUS["bank"], p.PeerCPUPerLoadUS["bench"],
			float64(p.PeakRSSKiB)/1024, alloc, p.LoadAvg)
	}
	for _, p := range r.Phases {
		for _, s := range p.FailSamples {
			fmt.Fprintf(&b, "\n- %s %s failure: %s", p.System, p.Mode, s)
		}
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(&b, "\n## Idle kiosks\n\n%d idle kiosks connected and signed in (%d asked, %d source addresses); FEP RSS %.1f -> %.1f MiB: **%.1f KiB per kiosk**; extrapolated to 50,000: %.0f MiB. Heartbeats every %s: %d answered in %.0f s, FEP CPU %.1f µs per heartbeat (%.1f %% of one core). Load average %s.\n",
			i.Connected, i.Asked, i.SourceAddrs, float64(i.RSSBeforeKiB)/1024, float64(i.RSSAfterKiB)/1024, i.KiBPerKiosk,
			i.Extrapolated50kMiB, i.Heartbeat, i.Heartbeats, i.HoldSeconds, i.CPUPerHeartbeatUS, i.CPUPercent, i.LoadAvg)
	}
	fmt.Fprintf(&b, "\n%s (%d loads written, %d fen booked)\n", r.Money, r.Written, r.Booked)
	_, err := io.WriteString(w, b.String())
	return err
}
