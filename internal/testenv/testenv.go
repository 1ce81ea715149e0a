// Package testenv lets tests that need a real outside service (pcscd, and later an FTP server
// or etcd) say so in one line. Without the service a test is skipped on a developer's machine
// but fails under `make test` and CI (QUANCUN_SERVICES=1), where a skip would hide that the
// real-parts tests never ran. It only probes; it never starts anything (scripts/ do that).
package testenv

import (
	"net"
	"os"
	"testing"
	"time"
)

// ServicesEnv is the variable `make test` and CI set to 1 to make missing services a failure.
const ServicesEnv = "QUANCUN_SERVICES"

// pcscSocket is pcsc-lite's client socket on Debian; pcsc-lite itself honours the same
// variable to move it.
func pcscSocket() string {
	if s := os.Getenv("PCSCLITE_CSOCK_NAME"); s != "" {
		return s
	}
	return "/run/pcscd/pcscd.comm"
}

// RequirePCSC needs a running pcscd (with the vpcd readers: scripts/pcscd.sh starts both). The
// probe opens pcscd's socket without cgo, so this package stays free of libpcsclite.
// It also holds the machine-wide reader lock until the test ends (see lockReaders).
func RequirePCSC(t testing.TB) {
	t.Helper()
	requireService(t, "pcscd", probeUnix(pcscSocket()), "run scripts/pcscd.sh")
	lockReaders(t)
}

// requireService skips or fails t when probe reports the service unusable. fix tells a person
// what to run.
func requireService(t testing.TB, name string, probe func() error, fix string) {
	t.Helper()
	err := probe()
	if err == nil {
		return
	}
	if os.Getenv(ServicesEnv) == "1" {
		t.Fatalf("%s is not reachable (%v); %s=1 requires it: %s", name, err, ServicesEnv, fix)
	}
	t.Skipf("%s is not reachable (%v): %s (set %s=1 to fail instead of skipping)", name, err, fix, ServicesEnv)
}

// probeUnix succeeds when something accepts connections on a Unix socket.
func probeUnix(path string) func() error {
	return func() error { return dialProbe("unix", path) }
}

func dialProbe(network, addr string) error {
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return err // a *net.OpError already names the network and address
	}
	return c.Close()
}
