package simplatform

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/quancun/quancun/internal/tomlconf"
)

// ErrConfig marks a configuration the platform refuses to start with.
var ErrConfig = errors.New("simplatform: bad config")

// Config is the platform's TOML file (docs/sim-platform.md). Zero values take the defaults
// of SetDefaults; LoadConfig also resolves a relative data_dir against the file's directory.
type Config struct {
	Listen      string        `toml:"listen"`       // FEP link; default DefaultListen
	DataDir     string        `toml:"data_dir"`     // required: journal.jsonl and the FTP upload dir
	AuthCodes   []string      `toml:"auth_codes"`   // 20 characters each; default [DefaultAuthCode]
	LTK         string        `toml:"ltk"`          // long-term key, 32 hex digits, shared with the FEP
	MDLK        string        `toml:"mdlk"`         // card master load key, 32 hex digits
	MTK         string        `toml:"mtk"`          // card master TAC key, 32 hex digits
	GroupFactor string        `toml:"group_factor"` // optional 16 hex digits: two-level diversification (spec 3.1)
	Ceiling     int64         `toml:"ceiling"`      // fen; old balance + amount must not exceed it
	MaxAmount   int64         `toml:"max_amount"`   // fen; single-load limit
	Blocked     []string      `toml:"blocked"`      // card app serials, 16 hex digits
	CheckTTL    time.Duration `toml:"check_ttl"`    // an unbooked reference expires after this
	SignInSkew  time.Duration `toml:"signin_skew"`  // SIGN-IN header time tolerance
	Latency     time.Duration `toml:"latency"`      // added before every answer
	FTP         FTPConfig     `toml:"ftp"`
	Outage      Outage        `toml:"outage"`
}

// FTPConfig is the embedded FTP server that receives the FEP's reconciliation files.
type FTPConfig struct {
	Listen    string `toml:"listen"`     // default DefaultFTPListen; "off" disables the server
	User      string `toml:"user"`       // default DefaultFTPUser
	Password  string `toml:"password"`   // default DefaultFTPPassword
	UploadDir string `toml:"upload_dir"` // default "upload", relative to data_dir
}

// Outage makes the platform misbehave for a while, so tests and the bench can watch the FEP
// cope: "refuse" answers every request but SIGN-IN with 96 (signed, nothing changed),
// "ignore" reads requests and never answers them. The window starts After the server starts
// and lasts For; For 0 with a mode set means until the process ends.
type Outage struct {
	Mode  string        `toml:"mode"` // "", "refuse" or "ignore"
	After time.Duration `toml:"after"`
	For   time.Duration `toml:"for"`
}

// Outage modes.
const (
	OutageNone   = ""
	OutageRefuse = "refuse"
	OutageIgnore = "ignore"
)

// Defaults. The keys are the public demo values (platform.md 3.2 and spec 9.2): a platform
// started with them is only good for simulators, and `quancun sim card --init` makes cards
// under the same masters.
const (
	DefaultListen      = "127.0.0.1:9400"
	DefaultAuthCode    = "QC0769LOADFEP0000001"
	DefaultLTK         = "404142434445464748494A4B4C4D4E4F"
	DefaultMDLK        = "11111111111111112222222222222222"
	DefaultMTK         = "33333333333333334444444444444444"
	DefaultCeiling     = 100000 // 1000 yuan
	DefaultMaxAmount   = 100000
	DefaultCheckTTL    = 24 * time.Hour
	DefaultSignInSkew  = 300 * time.Second
	DefaultFTPListen   = "127.0.0.1:2121"
	DefaultFTPUser     = "quancun"
	DefaultFTPPassword = "quancun"
	DefaultUploadDir   = "upload"
	// FTPOff as ftp.listen disables the FTP server.
	FTPOff = "off"
)

// LoadConfig reads and parses a config file; a relative data_dir is taken relative to the
// file, so a config works from any working directory.
func LoadConfig(path string) (Config, error) {
	b, err := tomlconf.Read(path)
	if err != nil {
		return Config{}, fmt.Errorf("simplatform: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c.DataDir = tomlconf.Beside(path, c.DataDir)
	return c, nil
}

// ParseConfig decodes a TOML config, refuses unknown keys (a typo must not silently unblock
// a card or turn an outage off), fills the defaults and validates.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := tomlconf.Decode(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// SetDefaults fills every zero field that has a default.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Listen, DefaultListen)
	def(&c.LTK, DefaultLTK)
	def(&c.MDLK, DefaultMDLK)
	def(&c.MTK, DefaultMTK)
	def(&c.FTP.Listen, DefaultFTPListen)
	def(&c.FTP.User, DefaultFTPUser)
	def(&c.FTP.Password, DefaultFTPPassword)
	def(&c.FTP.UploadDir, DefaultUploadDir)
	if len(c.AuthCodes) == 0 {
		c.AuthCodes = []string{DefaultAuthCode}
	}
	if c.Ceiling == 0 {
		c.Ceiling = DefaultCeiling
	}
	if c.MaxAmount == 0 {
		c.MaxAmount = DefaultMaxAmount
	}
	if c.CheckTTL == 0 {
		c.CheckTTL = DefaultCheckTTL
	}
	if c.SignInSkew == 0 {
		c.SignInSkew = DefaultSignInSkew
	}
}

// Validate reports the first problem; every message names the key.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	if c.DataDir == "" {
		return bad("data_dir is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen %q: %v", c.Listen, err)
	}
	for _, a := range c.AuthCodes {
		if len(a) != 20 || !printable(a) {
			return bad("auth_codes: %q: want 20 printable ASCII characters", a)
		}
	}
	for name, k := range map[string]string{"ltk": c.LTK, "mdlk": c.MDLK, "mtk": c.MTK} {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) != 16 {
			return bad("%s: want 32 hex digits", name)
		}
		if bytes.Equal(b[:8], b[8:]) {
			return bad("%s: halves are equal (single DES)", name)
		}
	}
	if c.GroupFactor != "" {
		if b, err := hex.DecodeString(c.GroupFactor); err != nil || len(b) != 8 {
			return bad("group_factor %q: want 16 hex digits", c.GroupFactor)
		}
	}
	if c.Ceiling < 0 || c.Ceiling > 0xFFFFFFFF {
		return bad("ceiling %d: want 1..%d fen", c.Ceiling, uint32(0xFFFFFFFF))
	}
	if c.MaxAmount < 0 || c.MaxAmount > 0xFFFFFFFF {
		return bad("max_amount %d: want 1..%d fen", c.MaxAmount, uint32(0xFFFFFFFF))
	}
	for _, s := range c.Blocked {
		if b, err := hex.DecodeString(s); err != nil || len(b) != 8 {
			return bad("blocked: %q: want 16 hex digits", s)
		}
	}
	if c.CheckTTL < time.Minute {
		return bad("check_ttl %v: want at least 1m", c.CheckTTL)
	}
	if c.SignInSkew < time.Second {
		return bad("signin_skew %v: want at least 1s", c.SignInSkew)
	}
	if c.Latency < 0 || c.Latency > time.Hour {
		return bad("latency %v: want 0..1h", c.Latency)
	}
	if c.FTP.Listen != FTPOff {
		if _, _, err := net.SplitHostPort(c.FTP.Listen); err != nil {
			return bad("ftp.listen %q: %v", c.FTP.Listen, err)
		}
	}
	if filepath.IsAbs(c.FTP.UploadDir) || strings.Contains(c.FTP.UploadDir, "..") {
		return bad("ftp.upload_dir %q: want a path inside data_dir", c.FTP.UploadDir)
	}
	switch c.Outage.Mode {
	case OutageNone, OutageRefuse, OutageIgnore:
	default:
		return bad("outage.mode %q: want \"\", %q or %q", c.Outage.Mode, OutageRefuse, OutageIgnore)
	}
	if c.Outage.After < 0 || c.Outage.For < 0 {
		return bad("outage.after/for: negative duration")
	}
	return nil
}

// blockedSet is Blocked in upper-case hex, for lookups by the request's app serial.
func (c *Config) blockedSet() map[string]bool {
	m := make(map[string]bool, len(c.Blocked))
	for _, s := range c.Blocked {
		m[strings.ToUpper(s)] = true
	}
	return m
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s) // validated
	return b
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}
