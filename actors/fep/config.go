package fep

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/quancun/quancun/actors/banklink"
	"github.com/quancun/quancun/actors/cutover"
	"github.com/quancun/quancun/actors/terminal"
	"github.com/quancun/quancun/internal/tomlconf"
	"github.com/quancun/quancun/io/crypt"
)

// ErrConfig reports a configuration file the FEP refuses; the message names the key.
var ErrConfig = errors.New("fep: configuration")

// Config is the FEP's TOML configuration file. docs/operations.md lists every key with its
// default; testdata/fep.example.toml is a complete example.
type Config struct {
	FEP      FEPSection     `toml:"fep"`
	PSAM     PSAMSection    `toml:"psam"`
	Kiosks   []KioskEntry   `toml:"kiosks"`
	Platform PlatformConfig `toml:"platform"`
	Banks    []BankEntry    `toml:"banks"`
	Limits   LimitsSection  `toml:"limits"`
	// BusinessDay and Reconciliation: the cutover and the T+2 file (docs/operations.md,
	// docs/reconciliation.md).
	BusinessDay    cutover.Section      `toml:"business_day"`
	Reconciliation cutover.ReconSection `toml:"reconciliation"`
}

// FEPSection is [fep].
type FEPSection struct {
	Node             string   `toml:"node"`              // node name, in every log line; default "fep1"
	DataDir          string   `toml:"data_dir"`          // Badger directory; default "data/fep"
	KioskListen      string   `toml:"kiosk_listen"`      // kiosk port; default "127.0.0.1:7000"
	HeartbeatTimeout Duration `toml:"heartbeat_timeout"` // kiosk silent this long: closed; default 180s
	MasterKey        string   `toml:"master_key"`        // security-module master key, 32 hex
	MasterKeyFile    string   `toml:"master_key_file"`   // or a file holding the 32 hex digits
	KeyFile          string   `toml:"key_file"`          // optional key file (hsm.SaveKeys format) to load
	DemoTMKMaster    string   `toml:"demo_tmk_master"`   // demo only: derive TMKs of kiosks without tmk
	Merchant         string   `toml:"merchant"`          // merchant id the loads send the bank
	LogLevel         string   `toml:"log_level"`         // debug, info, warn, error; default info
}

// PSAMSection is [psam]: the key the kiosks' PSAMs MAC requests with.
type PSAMSection struct {
	MACMaster string `toml:"mac_master"` // 32 hex: the PSAM MAC master key (required)
	KeyUsage  int    `toml:"key_usage"`  // 801A P1 agreed at PSAM issuance; default 0x27 (39)
	KeyIndex  int    `toml:"key_index"`  // 801A P2; default 1
}

// KioskEntry is one [[kiosks]] table.
type KioskEntry struct {
	Terminal string `toml:"terminal"` // F41, 8 characters
	PSAM     string `toml:"psam"`     // F42, 12 hex digits (6 bytes)
	TMK      string `toml:"tmk"`      // 32 hex; may be left out when [fep] demo_tmk_master is set
}

// PlatformConfig is [platform].
type PlatformConfig struct {
	Addr              string   `toml:"addr"`               // host:port of the platform (required)
	AuthCode          string   `toml:"auth_code"`          // 20 characters (required)
	LTK               string   `toml:"ltk"`                // 32 hex: long-term key shared with the platform (required)
	HeartbeatInterval Duration `toml:"heartbeat_interval"` // default 5s
	HeartbeatTimeout  Duration `toml:"heartbeat_timeout"`  // default 3s
	RequestTimeout    Duration `toml:"request_timeout"`    // default 10s
	ReconnectMin      Duration `toml:"reconnect_min"`      // default 1s
	ReconnectMax      Duration `toml:"reconnect_max"`      // default 60s
}

// BankEntry is one [[banks]] table.
type BankEntry struct {
	Code            string   `toml:"code"`             // 10 characters, the platform's bank code (F58)
	Addr            string   `toml:"addr"`             // host:port of the bank host (required)
	Dialect         string   `toml:"dialect"`          // cups (default), cups-pos, cups-advice-x919
	ZMK             string   `toml:"zmk"`              // 32 hex: zone master key shared with the bank (required)
	Terminal        string   `toml:"terminal"`         // F41 on this link, 1..8 characters (required)
	Merchant        string   `toml:"merchant"`         // F42 on this link, up to 15 characters
	ResponseTimeout Duration `toml:"response_timeout"` // default 30s
	EchoInterval    Duration `toml:"echo_interval"`    // default 60s
	EchoTimeout     Duration `toml:"echo_timeout"`     // default 10s
	ReconnectMin    Duration `toml:"reconnect_min"`    // default 1s
	ReconnectMax    Duration `toml:"reconnect_max"`    // default 30s
	MaxInFlight     int      `toml:"max_in_flight"`    // default 256
}

// LimitsSection is [limits]: the timeouts of a load (actors/txn.Limits) and of the kiosk side.
type LimitsSection struct {
	Check        Duration `toml:"check"`         // platform CARD CHECK; default 10s
	Bank         Duration `toml:"bank"`          // bank 0210; past it the debit is reversed; default 30s
	Kiosk        Duration `toml:"kiosk"`         // kiosk's wait for MAC2; default 60s (> check + bank)
	BookFirst    Duration `toml:"book_first"`    // first BOOK re-ask; default 5s
	BookMax      Duration `toml:"book_max"`      // BOOK re-ask cap; default 60s
	Confirm      Duration `toml:"confirm"`       // kiosk CONFIRM after MAC2, else U; default 120s
	ConfirmFirst Duration `toml:"confirm_first"` // platform CONFIRM re-send; default 5s
	ConfirmMax   Duration `toml:"confirm_max"`   // its cap; default 60s
	Grace        Duration `toml:"grace"`         // finished txn actor lingers; default 30s
	KioskRequest Duration `toml:"kiosk_request"` // pending query / re-write / confirm answer; default 12s
	KioskLoad    Duration `toml:"kiosk_load"`    // safety net for a load's answer; default 70s
	Drain        Duration `toml:"drain"`         // Stop waits this long for loads in flight; default 5s
}

// Duration is a time.Duration written as "30s", "2m" in the file.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Defaults of the [fep] and [psam] sections.
const (
	DefaultNode        = "fep1"
	DefaultDataDir     = "data/fep"
	DefaultKioskListen = "127.0.0.1:7000"
	DefaultLogLevel    = "info"
	DefaultKeyUsage    = 0x27
	DefaultKeyIndex    = 1
	DefaultDrain       = 5 * time.Second
	// DemoMasterKey is used when neither master_key nor master_key_file is set. It is
	// printed in the docs and so protects nothing: for demos and tests only.
	DemoMasterKey = "404142434445464748494A4B4C4D4E4F"
)

func (c *Config) defaults() {
	f := &c.FEP
	str := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	str(&f.Node, DefaultNode)
	str(&f.DataDir, DefaultDataDir)
	str(&f.KioskListen, DefaultKioskListen)
	str(&f.LogLevel, DefaultLogLevel)
	dur := func(v *Duration, d time.Duration) {
		if v.Duration <= 0 {
			v.Duration = d
		}
	}
	dur(&f.HeartbeatTimeout, terminal.DefaultHeartbeatTimeout)
	if c.PSAM.KeyUsage == 0 {
		c.PSAM.KeyUsage = DefaultKeyUsage
	}
	if c.PSAM.KeyIndex == 0 {
		c.PSAM.KeyIndex = DefaultKeyIndex
	}
	l := &c.Limits
	dur(&l.KioskRequest, terminal.DefaultRequestTimeout)
	dur(&l.KioskLoad, terminal.DefaultLoadTimeout)
	dur(&l.Drain, DefaultDrain)
	// The txn and link timeouts stay zero here: their packages fill their own defaults.
}

// ParseConfig decodes and checks a configuration file. Unknown keys are errors (a typo
// must not silently fall back to a default), and every error names its key.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := tomlconf.Decode(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and parses the file at path.
func LoadConfig(path string) (Config, error) {
	b, err := tomlconf.Read(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func bad(key, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, a...))
}

// key16 checks a double-length 3DES key in hex: 32 digits, two different halves.
func key16(key, v string) ([]byte, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 16 {
		return nil, bad(key, "must be 32 hex digits (a double-length 3DES key)")
	}
	if bytes.Equal(b[:8], b[8:]) {
		return nil, bad(key, "halves are equal (single DES)")
	}
	return b, nil
}

func (c *Config) validate() error {
	f := c.FEP
	if err := validNode(f.Node); err != nil {
		return bad("fep.node", "%v", err)
	}
	if f.MasterKey != "" && f.MasterKeyFile != "" {
		return bad("fep.master_key", "give master_key or master_key_file, not both")
	}
	if f.MasterKey != "" {
		if _, err := key16("fep.master_key", f.MasterKey); err != nil {
			return err
		}
	}
	if f.DemoTMKMaster != "" {
		if _, err := key16("fep.demo_tmk_master", f.DemoTMKMaster); err != nil {
			return err
		}
	}
	if _, err := ParseLevel(f.LogLevel); err != nil {
		return bad("fep.log_level", "%v", err)
	}
	if len(f.Merchant) > 15 {
		return bad("fep.merchant", "at most 15 characters")
	}
	if c.PSAM.MACMaster == "" {
		return bad("psam.mac_master", "required")
	}
	if _, err := key16("psam.mac_master", c.PSAM.MACMaster); err != nil {
		return err
	}
	if c.PSAM.KeyUsage < 0 || c.PSAM.KeyUsage > 255 {
		return bad("psam.key_usage", "must be 0..255")
	}
	if c.PSAM.KeyIndex < 0 || c.PSAM.KeyIndex > 255 {
		return bad("psam.key_index", "must be 0..255")
	}
	if len(c.Kiosks) == 0 {
		return bad("kiosks", "at least one [[kiosks]] table is required")
	}
	seen, psams := map[string]bool{}, map[string]bool{}
	for i, k := range c.Kiosks {
		at := fmt.Sprintf("kiosks[%d]", i)
		if err := terminal.ValidID(k.Terminal); err != nil {
			return bad(at+".terminal", "%v", err)
		}
		if seen[k.Terminal] {
			return bad(at+".terminal", "%s registered twice", k.Terminal)
		}
		seen[k.Terminal] = true
		p, err := hex.DecodeString(k.PSAM)
		if err != nil || len(p) != 6 {
			return bad(at+".psam", "must be 12 hex digits")
		}
		if psams[strings.ToUpper(k.PSAM)] {
			return bad(at+".psam", "PSAM %s registered twice", k.PSAM)
		}
		psams[strings.ToUpper(k.PSAM)] = true
		if k.TMK == "" && f.DemoTMKMaster == "" {
			return bad(at+".tmk", "required (or set fep.demo_tmk_master)")
		}
		if k.TMK != "" {
			if _, err := key16(at+".tmk", k.TMK); err != nil {
				return err
			}
		}
	}
	p := c.Platform
	switch {
	case p.Addr == "":
		return bad("platform.addr", "required")
	case len(p.AuthCode) != 20:
		return bad("platform.auth_code", "must be 20 characters, got %d", len(p.AuthCode))
	case p.LTK == "":
		return bad("platform.ltk", "required")
	}
	for _, ch := range []byte(p.AuthCode) {
		if ch < 0x20 || ch > 0x7E {
			return bad("platform.auth_code", "must be printable ASCII")
		}
	}
	if _, err := key16("platform.ltk", p.LTK); err != nil {
		return err
	}
	if len(c.Banks) == 0 {
		return bad("banks", "at least one [[banks]] table is required")
	}
	codes := map[string]bool{}
	for i, b := range c.Banks {
		at := fmt.Sprintf("banks[%d]", i)
		switch {
		case len(b.Code) != 10:
			return bad(at+".code", "must be 10 characters, got %q", b.Code)
		case codes[b.Code]:
			return bad(at+".code", "%s configured twice", b.Code)
		case b.Addr == "":
			return bad(at+".addr", "required")
		case b.Terminal == "" || len(b.Terminal) > 8:
			return bad(at+".terminal", "must be 1 to 8 characters")
		case len(b.Merchant) > 15:
			return bad(at+".merchant", "at most 15 characters")
		case b.MaxInFlight < 0:
			return bad(at+".max_in_flight", "must not be negative")
		}
		for _, ch := range []byte(b.Code) {
			if !(ch >= '0' && ch <= '9' || ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z') {
				return bad(at+".code", "letters and digits only")
			}
		}
		codes[b.Code] = true
		if _, err := banklink.DialectByName(b.Dialect); err != nil {
			return bad(at+".dialect", "%v", err)
		}
		if b.ZMK == "" {
			return bad(at+".zmk", "required")
		}
		if _, err := key16(at+".zmk", b.ZMK); err != nil {
			return err
		}
	}
	if _, err := c.BusinessDay.Calendar(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Reconciliation.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

func validNode(n string) error {
	if n == "" || len(n) > 32 {
		return fmt.Errorf("must be 1 to 32 characters")
	}
	for _, ch := range []byte(n) {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return fmt.Errorf("%q: letters, digits, - and _ only", n)
		}
	}
	return nil
}

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (debug, info, warn, error)", s)
}

// Master returns the security module's master key: master_key, the hex in
// master_key_file, or DemoMasterKey (insecure) when neither is set; demo reports the last.
func (c *Config) Master() (key []byte, demo bool, err error) {
	switch {
	case c.FEP.MasterKey != "":
		k, err := key16("fep.master_key", c.FEP.MasterKey)
		return k, false, err
	case c.FEP.MasterKeyFile != "":
		b, err := os.ReadFile(c.FEP.MasterKeyFile)
		if err != nil {
			return nil, false, bad("fep.master_key_file", "%v", err)
		}
		k, err := key16("fep.master_key_file", strings.TrimSpace(string(b)))
		return k, false, err
	}
	k, _ := hex.DecodeString(DemoMasterKey)
	return k, true, nil
}

// TMK returns kiosk i's terminal master key: its tmk, or for a demo kiosk without one
// Div(demo_tmk_master, terminal id as 8 ASCII bytes) as a kiosk simulator would derive it.
func (c *Config) TMK(i int) ([]byte, error) {
	k := c.Kiosks[i]
	if k.TMK != "" {
		return key16(fmt.Sprintf("kiosks[%d].tmk", i), k.TMK)
	}
	m, err := key16("fep.demo_tmk_master", c.FEP.DemoTMKMaster)
	if err != nil {
		return nil, err
	}
	return crypt.Diversify(m, []byte(k.Terminal))
}
