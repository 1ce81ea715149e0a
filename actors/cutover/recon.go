package cutover

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/quancun/quancun/io/ftpup"
)

// ReconSection is the [reconciliation] table of the FEP configuration: how the file of each
// accounting date is rendered and where it is uploaded.
type ReconSection struct {
	FTPAddr  string `toml:"ftp_addr"` // host:port of the platform's FTP server; "" = no upload
	User     string `toml:"user"`     // "" = anonymous
	Password string `toml:"password"`
	Dir      string `toml:"dir"` // remote directory; "" = the login directory
	TLS      bool   `toml:"tls"` // explicit TLS (AUTH TLS)
	// CAFile holds the PEM certificates the server's is verified against ("" = system pool).
	CAFile     string `toml:"ca_file"`
	ServerName string `toml:"server_name"` // "" = the host of ftp_addr
	// MaskPAN writes card numbers masked 6+4. The platform needs them in full; a masked
	// file is for people (and is what the FEP keeps when the policy forbids full PANs).
	MaskPAN bool `toml:"mask_pan"`
	// OutDir keeps a local copy of every scheduled file ("" = none).
	OutDir string `toml:"out_dir"`
	// Delay is the N of T+N: the file of T is produced when business date T+N opens.
	// Default 2.
	Delay int `toml:"delay_days"`
}

// Validate checks the section; every error names its key.
func (r ReconSection) Validate() error {
	if r.FTPAddr != "" {
		if _, _, err := net.SplitHostPort(r.FTPAddr); err != nil {
			return fmt.Errorf("%w: reconciliation.ftp_addr %q: %v", ErrConfig, r.FTPAddr, err)
		}
	}
	if r.Delay < 0 || r.Delay > 30 {
		return fmt.Errorf("%w: reconciliation.delay_days %d: want 0..30", ErrConfig, r.Delay)
	}
	if r.CAFile != "" && !r.TLS {
		return fmt.Errorf("%w: reconciliation.ca_file is set but tls is off", ErrConfig)
	}
	return nil
}

// DelayDays is Delay with its default.
func (r ReconSection) DelayDays() int {
	if r.Delay == 0 {
		return DefaultDelay
	}
	return r.Delay
}

// FTP is the upload configuration; ok is false when no server is configured.
func (r ReconSection) FTP() (cfg ftpup.Config, ok bool, err error) {
	if r.FTPAddr == "" {
		return ftpup.Config{}, false, nil
	}
	cfg = ftpup.Config{Addr: r.FTPAddr, User: r.User, Password: r.Password, Dir: r.Dir, TLS: r.TLS,
		ServerName: r.ServerName}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return ftpup.Config{}, false, fmt.Errorf("%w: reconciliation.ca_file: %v", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ftpup.Config{}, false, fmt.Errorf("%w: reconciliation.ca_file %s: no PEM certificate", ErrConfig, r.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, true, nil
}
