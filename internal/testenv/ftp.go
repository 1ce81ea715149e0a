package testenv

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// RequireVsftpd needs the vsftpd binary and root, and returns the binary's path. Tests start
// their own vsftpd from a generated config (so each owns its port and lifetime); root is
// needed because vsftpd chroots the anonymous user into the served directory.
func RequireVsftpd(t testing.TB) string {
	t.Helper()
	var bin string
	requireService(t, "vsftpd", func() error {
		p, err := exec.LookPath("vsftpd")
		if err != nil {
			if _, serr := os.Stat("/usr/sbin/vsftpd"); serr != nil {
				return err
			}
			p = "/usr/sbin/vsftpd" // not on a non-root PATH
		}
		if os.Geteuid() != 0 {
			return errors.New("vsftpd's anonymous chroot needs root")
		}
		bin = p
		return nil
	}, "run scripts/vsftpd.sh install (Debian package vsftpd) as root")
	return bin
}
