// Package ftpup delivers the reconciliation file to the platform's FTP server (DESIGN 8):
// store under a temporary name, rename into place, check the size, and retry with back-off
// until the file is there or the caller's context ends.
//
// The temporary name keeps the platform from ever reading a half-written file. A rename onto
// an existing name overwrites it silently on vsftpd; that is safe only because the file for a
// day is deterministic (package recon), so a second upload puts the same bytes in place.
// This package never decides what to upload or when; it only delivers bytes it is given.
package ftpup

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jlaffaye/ftp"
)

// Sentinel errors.
var (
	// ErrConfig marks a Config or file name that can never work; Upload does not retry it.
	ErrConfig = errors.New("ftpup: bad config")
	// ErrVerify marks a file that reached the server with a different size or content. It is
	// retried like any other failure: the next attempt stores the file again.
	ErrVerify = errors.New("ftpup: verify failed")
)

// Config says where and how to upload. The zero values of the timing fields pick defaults.
type Config struct {
	Addr     string // host:port of the FTP server
	User     string // empty for anonymous
	Password string // ignored for anonymous
	Dir      string // remote directory to upload into; empty for the login directory

	TLS bool // explicit TLS (AUTH TLS), control and data channels protected
	// RootCAs verifies the server's certificate; nil uses the system pool.
	RootCAs *x509.CertPool
	// ServerName checks the certificate's name; empty uses the host part of Addr.
	ServerName string
	// InsecureSkipVerify skips certificate checks. For tests only.
	InsecureSkipVerify bool

	// VerifyContent downloads the file after the rename and compares every byte, on top of
	// the SIZE check. Needs the server to allow downloads (vsftpd's anonymous user may not).
	VerifyContent bool

	AttemptTimeout time.Duration // one whole attempt: dial to verify; default 30s
	MinBackoff     time.Duration // wait after the first failure; default 1s
	MaxBackoff     time.Duration // cap of the doubling wait; default 1m

	Logger *slog.Logger // failed attempts are logged at Warn; nil uses slog.Default()
	// Progress, when set, is called after every attempt (successful or not).
	Progress func(Attempt)
}

// Attempt reports one try of Upload.
type Attempt struct {
	N    int           // 1-based
	Err  error         // nil on success
	Wait time.Duration // back-off before the next try; 0 after success
}

func (c Config) withDefaults() Config {
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 30 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(time.Minute, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// TempName is the name a file is stored under before the rename.
func TempName(name string) string { return name + ".tmp" }

// checkName allows a plain file name only: a path or control character in it would put the
// file somewhere else or inject an FTP command.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\r\n\x00") {
		return fmt.Errorf("%w: file name %q", ErrConfig, name)
	}
	return nil
}

// Upload delivers data as name, retrying with exponential back-off (MinBackoff doubling up
// to MaxBackoff) until one attempt succeeds or ctx ends. Each failure is logged and passed to
// Progress. On ctx's end the error wraps ctx.Err() and the last attempt's error.
func Upload(ctx context.Context, cfg Config, name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if cfg.Addr == "" {
		return fmt.Errorf("%w: no server address", ErrConfig)
	}
	cfg = cfg.withDefaults()
	return retry(ctx, cfg, func(ctx context.Context) error { return uploadOnce(ctx, cfg, name, data) })
}

// retry runs once until it succeeds, ctx ends, or it fails with ErrConfig. Split from the
// FTP work so the back-off is testable without a server.
func retry(ctx context.Context, cfg Config, once func(context.Context) error) error {
	wait := cfg.MinBackoff
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, cfg.AttemptTimeout)
		err := once(actx)
		cancel()
		if err == nil {
			if cfg.Progress != nil {
				cfg.Progress(Attempt{N: n})
			}
			if n > 1 {
				cfg.Logger.Info("ftp upload succeeded after retries", "addr", cfg.Addr, "attempts", n)
			}
			return nil
		}
		if errors.Is(err, ErrConfig) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ftp upload to %s gave up after %d attempts: %w (last error: %w)", cfg.Addr, n, ctx.Err(), err)
		}
		cfg.Logger.Warn("ftp upload attempt failed", "addr", cfg.Addr, "attempt", n, "retry_in", wait, "err", err)
		if cfg.Progress != nil {
			cfg.Progress(Attempt{N: n, Err: err, Wait: wait})
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ftp upload to %s gave up after %d attempts: %w (last error: %w)", cfg.Addr, n, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, cfg.MaxBackoff)
	}
}

// uploadOnce is one attempt: dial, log in, change directory, STOR name.tmp, RNTO name,
// verify. ctx bounds the whole attempt: its end closes every connection the attempt opened,
// since the FTP library itself only honours a context while dialing.
func uploadOnce(ctx context.Context, cfg Config, name string, data []byte) (err error) {
	var tc *tls.Config
	if cfg.TLS {
		if tc, err = tlsConfig(cfg); err != nil {
			return err
		}
	}
	var d net.Dialer
	dials := 0
	// The library calls dial once for the control connection (which it upgrades itself after
	// AUTH TLS) and once per data connection, which it leaves as returned when a dial function
	// is set: so data connections are wrapped in TLS here.
	dial := func(network, addr string) (net.Conn, error) {
		dials++
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		var conn net.Conn = &stopConn{Conn: c, stop: stop}
		if tc != nil && dials > 1 {
			conn = tls.Client(conn, tc)
		}
		return conn, nil
	}
	opts := []ftp.DialOption{ftp.DialWithContext(ctx), ftp.DialWithDialFunc(dial), ftp.DialWithShutTimeout(cfg.AttemptTimeout)}
	if tc != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(tc))
	}
	c, err := ftp.Dial(cfg.Addr, opts...)
	if err != nil {
		return fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	defer func() {
		if qerr := c.Quit(); qerr != nil && err == nil {
			cfg.Logger.Debug("ftp quit", "addr", cfg.Addr, "err", qerr)
		}
	}()
	user, pass := cfg.User, cfg.Password
	if user == "" {
		user, pass = "anonymous", "anonymous"
	}
	if err := c.Login(user, pass); err != nil {
		return fmt.Errorf("login to %s as %s: %w", cfg.Addr, user, err)
	}
	if cfg.Dir != "" {
		if err := c.ChangeDir(cfg.Dir); err != nil {
			return fmt.Errorf("cd %s: %w", cfg.Dir, err)
		}
	}
	tmp := TempName(name)
	if err := c.Stor(tmp, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("stor %s: %w", tmp, err)
	}
	if err := c.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, name, err)
	}
	size, err := c.FileSize(name)
	if err != nil {
		return fmt.Errorf("size %s: %w", name, err)
	}
	if size != int64(len(data)) {
		return fmt.Errorf("%w: %s is %d bytes on the server, want %d", ErrVerify, name, size, len(data))
	}
	if cfg.VerifyContent {
		if err := compare(c, name, data); err != nil {
			return err
		}
	}
	return nil
}

func compare(c *ftp.ServerConn, name string, data []byte) error {
	r, err := c.Retr(name)
	if err != nil {
		return fmt.Errorf("retr %s: %w", name, err)
	}
	got, rerr := io.ReadAll(io.LimitReader(r, int64(len(data))+1))
	if cerr := r.Close(); rerr == nil {
		rerr = cerr
	}
	if rerr != nil {
		return fmt.Errorf("retr %s: %w", name, rerr)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("%w: %s on the server differs from what was sent", ErrVerify, name)
	}
	return nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	sn := cfg.ServerName
	if sn == "" {
		host, _, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("%w: address %q: %w", ErrConfig, cfg.Addr, err)
		}
		sn = host
	}
	return &tls.Config{
		ServerName:         sn,
		RootCAs:            cfg.RootCAs,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		// Servers like vsftpd (require_ssl_reuse) refuse a data connection that does not
		// resume the control connection's TLS session.
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}, nil
}

// stopConn releases the context watcher when the library closes the connection itself.
type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}
