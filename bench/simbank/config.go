package simbank

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quancun/quancun/internal/tomlconf"
	"github.com/quancun/quancun/io/bank"
)

// ErrConfig marks a configuration the bank refuses to start with.
var ErrConfig = errors.New("simbank: bad config")

// Config is the bank's TOML file (docs/sim-bank.md). Zero values take the defaults of
// ParseConfig; LoadConfig also resolves a relative data_dir against the file's directory.
type Config struct {
	Listen      string          `toml:"listen"`        // default DefaultListen
	DataDir     string          `toml:"data_dir"`      // required: journal and settlement files
	BankCode    string          `toml:"bank_code"`     // 10 letters or digits, as the platform assigns it
	Dialect     string          `toml:"dialect"`       // DialectNames; default "cups-pos"
	ZMK         string          `toml:"zmk"`           // 32 hex digits, shared with the FEP
	AcquirerID  string          `toml:"acquirer_id"`   // F32 of our answers; default "01020000"
	SettleDate  string          `toml:"settle_date"`   // "today" (default), "tomorrow" or a fixed MMDD
	MaxPINTries int             `toml:"max_pin_tries"` // wrong PINs before 75; default 3
	MatchWindow time.Duration   `toml:"match_window"`  // how long a terminal+STAN stays matchable; default 168h
	Faults      Faults          `toml:"faults"`
	Accounts    []AccountConfig `toml:"accounts"`
}

// Faults are the bank's deliberate misbehaviours, for the bench and the demo. Rates are
// probabilities in [0,1] drawn per message from a generator seeded with Seed (0 = from the
// clock), so a run with a fixed seed misbehaves the same way each time.
type Faults struct {
	Latency time.Duration `toml:"latency"` // added to every answer
	Jitter  time.Duration `toml:"jitter"`  // plus uniform [0, jitter)
	// DropRate: a 0200 is processed (the debit is made) but its 0210 is never sent: the
	// lost-answer case that the FEP's timeout and reversal exist for.
	DropRate float64 `toml:"drop_rate"`
	// DuplicateRate: a 0210 or 0410 is sent twice.
	DuplicateRate float64 `toml:"duplicate_rate"`
	// LateRate: a 0200 is processed and answered after LateDelay (default 40s, beyond the
	// FEP's default 30s timeout), so the 0210 arrives after the reversal started.
	LateRate  float64       `toml:"late_rate"`
	LateDelay time.Duration `toml:"late_delay"`
	// ReversalDropRate: a reversal is processed but its answer lost, so the FEP repeats it.
	ReversalDropRate float64 `toml:"reversal_drop_rate"`
	// TimeoutPANs: every 0200 for these cards is processed and never answered, reversals
	// for them are answered normally: a deterministic bank timeout for the demo.
	TimeoutPANs []string `toml:"timeout_pans"`
	Seed        int64    `toml:"seed"`
}

// AccountConfig is one bank account as configured. Balance is the opening balance: once
// the journal knows the account, the journal's balance wins and a changed Balance here is
// ignored (money moves only by messages). Blocked and BlockCode do apply on every start.
type AccountConfig struct {
	PAN       string `toml:"pan"`
	PIN       string `toml:"pin"`     // "" = no PIN check
	Balance   int64  `toml:"balance"` // fen
	Blocked   bool   `toml:"blocked"`
	BlockCode string `toml:"block_code"` // F39 for a blocked account; default "41"
}

// Defaults.
const (
	DefaultListen      = "127.0.0.1:9300"
	DefaultAcquirerID  = "01020000"
	DefaultMaxPINTries = 3
	DefaultMatchWindow = 7 * 24 * time.Hour
	DefaultLateDelay   = 40 * time.Second
	DefaultBlockCode   = "41"
)

// DialectNames are the dialects the simulator speaks, by config name.
var dialectNames = []string{"cups-pos", "cups-advice-x919"}

// DialectByName returns a dialect the simulator speaks: "cups-pos" (or "cups") is
// bank.DefaultDialect; "cups-advice-x919" takes reversals as advices (0420/0421, answered
// 0430) and MACs with ANSI X9.19, everything else as cups-pos. actors/banklink.DialectByName
// knows the same names, so both sides of a test agree.
func DialectByName(name string) (bank.Dialect, error) {
	d := bank.DefaultDialect()
	switch name {
	case "", "cups", "cups-pos": // "cups" as actors/banklink spells the default
	case "cups-advice-x919":
		d.Name, d.ReversalMTI, d.RepeatMTI, d.MAC = name, "0420", "0421", bank.MACX919
	default:
		return bank.Dialect{}, fmt.Errorf("%w: dialect %q: want one of %s", ErrConfig, name, strings.Join(dialectNames, ", "))
	}
	return d, nil
}

// LoadConfig reads and parses a config file; a relative data_dir is taken relative to the
// file, so a config works from any working directory.
func LoadConfig(path string) (Config, error) {
	b, err := tomlconf.Read(path)
	if err != nil {
		return Config{}, fmt.Errorf("simbank: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c.DataDir = tomlconf.Beside(path, c.DataDir)
	return c, nil
}

// ParseConfig decodes a TOML config, refuses unknown keys (a typo must not silently turn a
// fault off), fills the defaults and validates.
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
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Dialect == "" {
		c.Dialect = "cups-pos"
	}
	if c.AcquirerID == "" {
		c.AcquirerID = DefaultAcquirerID
	}
	if c.SettleDate == "" {
		c.SettleDate = "today"
	}
	if c.MaxPINTries == 0 {
		c.MaxPINTries = DefaultMaxPINTries
	}
	if c.MatchWindow == 0 {
		c.MatchWindow = DefaultMatchWindow
	}
	if c.Faults.LateDelay == 0 {
		c.Faults.LateDelay = DefaultLateDelay
	}
	for i := range c.Accounts {
		if c.Accounts[i].BlockCode == "" {
			c.Accounts[i].BlockCode = DefaultBlockCode
		}
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
	if len(c.BankCode) != 10 || !alnum(c.BankCode) {
		return bad("bank_code %q: want exactly 10 letters or digits", c.BankCode)
	}
	if _, err := DialectByName(c.Dialect); err != nil {
		return err
	}
	if _, err := c.zmk(); err != nil {
		return err
	}
	if len(c.AcquirerID) > 11 || !isDigits(c.AcquirerID) {
		return bad("acquirer_id %q: want up to 11 digits", c.AcquirerID)
	}
	if _, err := parseSettleRule(c.SettleDate); err != nil {
		return err
	}
	if c.MaxPINTries < 1 || c.MaxPINTries > 99 {
		return bad("max_pin_tries %d: want 1..99", c.MaxPINTries)
	}
	if c.MatchWindow < time.Minute {
		return bad("match_window %v: want at least 1m", c.MatchWindow)
	}
	f := c.Faults
	for _, r := range []struct {
		name string
		v    float64
	}{{"drop_rate", f.DropRate}, {"duplicate_rate", f.DuplicateRate}, {"late_rate", f.LateRate}, {"reversal_drop_rate", f.ReversalDropRate}} {
		if !(r.v >= 0 && r.v <= 1) { // also refuses NaN
			return bad("faults.%s %v: want 0..1", r.name, r.v)
		}
	}
	if f.Latency < 0 || f.Jitter < 0 || f.LateDelay < 0 {
		return bad("faults: durations must not be negative")
	}
	for _, p := range f.TimeoutPANs {
		if !validPAN(p) {
			return bad("faults.timeout_pans: %q is not 12..19 digits", p)
		}
	}
	seen := make(map[string]bool, len(c.Accounts))
	for i, a := range c.Accounts {
		switch {
		case !validPAN(a.PAN):
			return bad("accounts[%d].pan: want 12..19 digits", i)
		case seen[a.PAN]:
			return bad("accounts[%d]: pan %s listed twice", i, maskPAN(a.PAN))
		case a.PIN != "" && (len(a.PIN) < 4 || len(a.PIN) > 12 || !isDigits(a.PIN)):
			return bad("accounts[%d].pin: want 4..12 digits or empty", i)
		case a.Balance < 0 || a.Balance > maxAmount:
			return bad("accounts[%d].balance %d: want 0..%d fen", i, a.Balance, int64(maxAmount))
		case len(a.BlockCode) != 2 || !printable(a.BlockCode):
			return bad("accounts[%d].block_code %q: want 2 characters", i, a.BlockCode)
		}
		seen[a.PAN] = true
	}
	return nil
}

// maxAmount is what F4 (n12) can carry.
const maxAmount = 999999999999

// zmk decodes the ZMK; its halves must differ, or it would be single DES in disguise.
func (c *Config) zmk() ([]byte, error) {
	k, err := hex.DecodeString(c.ZMK)
	if err != nil || len(k) != 16 {
		return nil, fmt.Errorf("%w: zmk: want 32 hex digits", ErrConfig)
	}
	if bytes.Equal(k[:8], k[8:]) {
		return nil, fmt.Errorf("%w: zmk: halves are equal (single DES)", ErrConfig)
	}
	return k, nil
}

func validPAN(p string) bool { return len(p) >= 12 && len(p) <= 19 && isDigits(p) }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// printable is ASCII without control characters and without the file separator '|'.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == '|' {
			return false
		}
	}
	return true
}

// maskPAN keeps the first 6 and last 4 digits.
func maskPAN(p string) string {
	if len(p) < 11 {
		return "****"
	}
	b := []byte(p)
	for i := 6; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}

// settleRule turns the receipt time into the accounting date the bank settles on.
type settleRule struct {
	offsetDays int    // "today" 0, "tomorrow" 1
	fixed      string // MMDD, when set
}

func parseSettleRule(s string) (settleRule, error) {
	switch s {
	case "today":
		return settleRule{}, nil
	case "tomorrow":
		return settleRule{offsetDays: 1}, nil
	}
	if len(s) == 4 && isDigits(s) {
		if _, err := time.Parse("0102", s); err == nil || s == "0229" {
			return settleRule{fixed: s}, nil
		}
	}
	return settleRule{}, fmt.Errorf("%w: settle_date %q: want \"today\", \"tomorrow\" or MMDD", ErrConfig, s)
}

// date is the accounting date (YYYYMMDD) for a message received at t. A fixed MMDD takes
// t's year, or the next year when that would put it more than half a year in the past
// (a December receipt settling on 0102).
func (r settleRule) date(t time.Time) string {
	if r.fixed == "" {
		return t.AddDate(0, 0, r.offsetDays).Format("20060102")
	}
	y := t.Year()
	d, err := time.ParseInLocation("20060102", fmt.Sprintf("%04d%s", y, r.fixed), t.Location())
	if err != nil { // 0229 of a non-leap year: the day after 0228
		d, _ = time.ParseInLocation("20060102", fmt.Sprintf("%04d0301", y), t.Location())
	}
	if t.Sub(d) > 183*24*time.Hour {
		d = d.AddDate(1, 0, 0)
	}
	return d.Format("20060102")
}
