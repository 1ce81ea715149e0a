package simplatform

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	ftpserver "goftp.io/server/v2"
	"goftp.io/server/v2/driver/file"
)

// serveFTP starts the embedded FTP server on s.ftpLn: goftp's file driver rooted at the
// upload dir, one user. The FEP uploads a reconciliation file as <name>.tmp and renames it
// (DESIGN 8); the driver below makes both durable before the FTP reply, so a file the FEP
// saw renamed is on disk. stop closes the listener; open sessions end with the process.
func (s *Server) serveFTP() (stop func(), err error) {
	root, err := filepath.Abs(s.UploadDir())
	if err != nil {
		return nil, fmt.Errorf("simplatform: ftp root: %w", err)
	}
	inner, err := file.NewDriver(root)
	if err != nil {
		return nil, fmt.Errorf("simplatform: ftp driver: %w", err)
	}
	srv, err := ftpserver.NewServer(&ftpserver.Options{
		Driver:   &syncDriver{Driver: inner, root: root, log: s.log},
		Auth:     &ftpserver.SimpleAuth{Name: s.cfg.FTP.User, Password: s.cfg.FTP.Password},
		Perm:     ftpserver.NewSimplePerm("quancun", "quancun"),
		Name:     "quancun sim platform",
		Logger:   ftpLogger{s.log},
		Hostname: "127.0.0.1",
	})
	if err != nil {
		return nil, fmt.Errorf("simplatform: ftp: %w", err)
	}
	ln := s.ftpLn
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve returns when ln closes; we close the listener ourselves rather than call
		// Shutdown, which races with Serve setting up its context.
		if err := srv.Serve(ln); err != nil && !errors.Is(err, ftpserver.ErrServerClosed) {
			s.log.Debug("sim platform: ftp stopped", "err", err)
		}
	}()
	s.log.Info("sim platform: ftp listening", "addr", ln.Addr().String(), "root", root, "user", s.cfg.FTP.User)
	return func() { ln.Close(); <-done }, nil
}

// syncDriver is the file driver with an fsync after every upload and rename.
type syncDriver struct {
	ftpserver.Driver
	root string
	log  *slog.Logger
}

func (d *syncDriver) real(p string) string {
	return filepath.Join(append([]string{d.root}, strings.Split(p, "/")...)...)
}

func (d *syncDriver) PutFile(ctx *ftpserver.Context, path string, data io.Reader, offset int64) (int64, error) {
	n, err := d.Driver.PutFile(ctx, path, data, offset)
	if err != nil {
		return n, err
	}
	if err := syncPath(d.real(path)); err != nil {
		return n, err
	}
	d.log.Info("sim platform: ftp upload", "path", path, "bytes", n)
	return n, nil
}

func (d *syncDriver) Rename(ctx *ftpserver.Context, from, to string) error {
	if err := d.Driver.Rename(ctx, from, to); err != nil {
		return err
	}
	if err := syncPath(filepath.Dir(d.real(to))); err != nil {
		return err
	}
	d.log.Info("sim platform: ftp rename", "from", from, "to", to)
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ftpLogger sends goftp's log to slog at debug level (commands include PASS, so never
// above debug, and PASS parameters are dropped).
type ftpLogger struct{ log *slog.Logger }

func (l ftpLogger) Print(sid string, msg any) {
	l.log.Debug("ftp", "session", sid, "msg", fmt.Sprint(msg))
}
func (l ftpLogger) Printf(sid string, format string, v ...any) {
	l.log.Debug("ftp", "session", sid, "msg", fmt.Sprintf(format, v...))
}
func (l ftpLogger) PrintCommand(sid, cmd, params string) {
	if strings.EqualFold(cmd, "PASS") {
		params = "****"
	}
	l.log.Debug("ftp command", "session", sid, "cmd", cmd, "params", params)
}
func (l ftpLogger) PrintResponse(sid string, code int, msg string) {
	l.log.Debug("ftp response", "session", sid, "code", code, "msg", msg)
}
