package recon

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/quancun/quancun/internal/testenv"
)

// chromium runs headless Chromium once on page with a throw-away profile and the extra
// flags; it returns stdout.
func chromium(t *testing.T, bin, page string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1200,900"}, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
	}
	return out.Bytes()
}

// TestClearingHTMLInChromium renders the clearing page in real headless Chromium: the
// screenshot is not blank (many colours, the load bars' green among them) and the figures
// Chromium's DOM holds are those of the CSV report of the same day.
func TestClearingHTMLInChromium(t *testing.T) {
	bin := testenv.RequireChromium(t)
	lines := Clearing(clearingRecords(), "20101201")
	dir := t.TempDir()
	page := filepath.Join(dir, "clearing.html")
	var h, c bytes.Buffer
	if err := WriteClearingHTML(&h, lines); err != nil {
		t.Fatal(err)
	}
	if err := WriteClearingCSV(&c, lines); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, h.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	shot := filepath.Join(dir, "shot.png")
	chromium(t, bin, page, "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	colours, nonWhite, green := screenshotStats(img)
	total := img.Bounds().Dx() * img.Bounds().Dy()
	t.Logf("screenshot %v: %d colours, %d of %d pixels not white, %d load-bar green", img.Bounds(), colours, nonWhite, total, green)
	if colours < 8 || nonWhite < total/200 {
		t.Errorf("screenshot looks blank: %d colours, %d non-white pixels", colours, nonWhite)
	}
	if green < 500 {
		t.Errorf("the load bars (#2e7d32) are not drawn: %d pixels", green)
	}

	dom := chromium(t, bin, page, "--dump-dom")
	cells := map[string]int64{}
	re := regexp.MustCompile(`id="((?:load|reversed|open)-(?:count|amount)-[A-Za-z0-9]+)" data-(?:fen|count)="(\d+)">([^<]*)<`)
	for _, m := range re.FindAllSubmatch(dom, -1) {
		v, _ := strconv.ParseInt(string(m[2]), 10, 64)
		cells[string(m[1])] = v
		if id := string(m[1]); bytes.Contains(m[1], []byte("amount")) && string(m[3]) != Yuan(v) {
			t.Errorf("#%s shows %q, data-fen %d (%s yuan)", id, m[3], v, Yuan(v))
		}
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(rows) != len(lines)+1 {
		t.Fatalf("csv: %v %v", rows, err)
	}
	fields := []string{"load-count", "load-amount", "reversed-count", "reversed-amount", "open-count", "open-amount"}
	sum := make([]int64, len(fields))
	for _, row := range rows[1:] {
		for i, f := range fields {
			want, _ := strconv.ParseInt(row[2+i], 10, 64)
			sum[i] += want
			if got, ok := cells[f+"-"+row[1]]; !ok || got != want {
				t.Errorf("DOM #%s-%s = %d (present %v), CSV %d", f, row[1], got, ok, want)
			}
		}
	}
	for i, f := range fields {
		if got := cells[f+"-total"]; got != sum[i] {
			t.Errorf("DOM #%s-total = %d, CSV sums to %d", f, got, sum[i])
		}
	}
	if sum[1] == 0 {
		t.Error("the test day has no loads: the comparison proves nothing")
	}
}

// screenshotStats counts distinct colours, pixels that are not white, and pixels of the
// load bars' green (#2e7d32, with a little tolerance for anti-aliasing).
func screenshotStats(img image.Image) (colours, nonWhite, green int) {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			seen[[3]uint32{r, g, bl}] = true
			if r < 250 || g < 250 || bl < 250 {
				nonWhite++
			}
			if near(r, 0x2e) && near(g, 0x7d) && near(bl, 0x32) {
				green++
			}
		}
	}
	return len(seen), nonWhite, green
}

func near(v, want uint32) bool { return v+6 >= want && v <= want+6 }
