package testenv

import (
	"errors"
	"os/exec"
	"testing"
)

// RequireChromium needs a headless-capable Chromium (Debian's `chromium`) and returns its
// path. Tests that render a page start it themselves, one process per page, with a
// throw-away profile.
func RequireChromium(t testing.TB) string {
	t.Helper()
	var bin string
	requireService(t, "chromium", func() error {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				bin = p
				return nil
			}
		}
		return errors.New("no chromium on PATH")
	}, "run scripts/deps.sh (Debian package chromium)")
	return bin
}
