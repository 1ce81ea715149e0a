package testenv

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// recorder captures Skipf/Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...) }

func TestRequireServiceSkipsOrFails(t *testing.T) {
	down := func() error { return errors.New("connection refused") }

	t.Setenv(ServicesEnv, "")
	r := &recorder{TB: t}
	requireService(r, "pcscd", down, "run scripts/pcscd.sh")
	if r.skipped == "" || r.failed != "" {
		t.Fatalf("without %s: skipped=%q failed=%q, want a skip", ServicesEnv, r.skipped, r.failed)
	}

	t.Setenv(ServicesEnv, "1")
	r = &recorder{TB: t}
	requireService(r, "pcscd", down, "run scripts/pcscd.sh")
	if r.failed == "" || !strings.Contains(r.failed, "scripts/pcscd.sh") {
		t.Fatalf("with %s=1: failed=%q, want a failure naming the fix", ServicesEnv, r.failed)
	}

	r = &recorder{TB: t}
	requireService(r, "pcscd", func() error { return nil }, "x")
	if r.failed != "" || r.skipped != "" {
		t.Fatalf("service up: skipped=%q failed=%q", r.skipped, r.failed)
	}
}

func TestProbeUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	if err := probeUnix(path)(); err == nil {
		t.Fatal("probe succeeded with no socket")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := probeUnix(path)(); err != nil {
		t.Fatalf("probe of a listening socket: %v", err)
	}
}
