package testenv

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// lockReaders serialises the tests of every package that use pcscd's virtual readers:
// pcscd is one per machine with fixed reader names, and `go test ./...` runs packages in
// parallel, so two packages must not drive "Virtual PCD 00 01" at once. The lock is an
// flock on a file in the temp dir, held until the test ends.
func lockReaders(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "quancun-pcsc-readers.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("pcsc reader lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("pcsc reader lock: %v", err)
	}
	t.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
