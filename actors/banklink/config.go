package banklink

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/reversal"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/persistence"
)

// ErrConfig reports a Config or Deps the link cannot run with.
var ErrConfig = errors.New("banklink: bad configuration")

// Config is one bank link, as the FEP's configuration file gives it ([[bank]] tables).
// Zero values take the defaults of Defaults; docs/bank-link.md lists every key.
type Config struct {
	BankCode string `toml:"bank_code"` // 10 characters; names the link "bank:<code>"
	Addr     string `toml:"addr"`      // host:port of the bank host
	Dialect  string `toml:"dialect"`   // "cups" (= "cups-pos", default) or "cups-advice-x919"
	Terminal string `toml:"terminal"`  // F41 the FEP uses on this link (ans8)
	Merchant string `toml:"merchant"`  // F42 the FEP uses on this link (ans15)
	ZMKKey   string `toml:"zmk_key"`   // security-module name of the ZMK shared with the bank

	ResponseTimeout time.Duration `toml:"response_timeout"` // 0810 wait; in-flight 0200s expire at twice this
	EchoInterval    time.Duration `toml:"echo_interval"`    // echo an idle link this often
	EchoTimeout     time.Duration `toml:"echo_timeout"`     // no 0830 by then: link down
	ReconnectMin    time.Duration `toml:"reconnect_min"`    // first back-off after a failure
	ReconnectMax    time.Duration `toml:"reconnect_max"`    // back-off doubles up to this
	MaxInFlight     int           `toml:"max_in_flight"`    // 0200s awaiting their 0210

	// Reversal is the store-and-forward queue's knobs (reversal.DefaultKnobs for zero
	// values). MTI and RepeatMTI always come from the dialect.
	Reversal reversal.Knobs `toml:"reversal"`
}

// Defaults of Config.
const (
	DefaultDialect         = "cups"
	DefaultResponseTimeout = 30 * time.Second
	DefaultEchoInterval    = 60 * time.Second
	DefaultEchoTimeout     = 10 * time.Second
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = 30 * time.Second
	DefaultMaxInFlight     = 256
)

// Defaults fills zero values.
func (c *Config) Defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Dialect == "" {
		c.Dialect = DefaultDialect
	}
	def(&c.ResponseTimeout, DefaultResponseTimeout)
	def(&c.EchoInterval, DefaultEchoInterval)
	def(&c.EchoTimeout, DefaultEchoTimeout)
	def(&c.ReconnectMin, DefaultReconnectMin)
	def(&c.ReconnectMax, DefaultReconnectMax)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
}

// Validate reports what is missing; call it after Defaults.
func (c *Config) Validate() error {
	bad := func(what string) error { return fmt.Errorf("%w: bank %q: %s", ErrConfig, c.BankCode, what) }
	switch {
	case c.BankCode == "":
		return bad("bank_code is empty")
	case c.Addr == "":
		return bad("addr is empty")
	case c.Terminal == "" || len(c.Terminal) > 8:
		return bad("terminal must be 1 to 8 characters")
	case len(c.Merchant) > 15:
		return bad("merchant must be at most 15 characters")
	case c.ZMKKey == "":
		return bad("zmk_key is empty")
	}
	if _, err := DialectByName(c.Dialect); err != nil {
		return fmt.Errorf("%w: bank %q: %w", ErrConfig, c.BankCode, err)
	}
	return nil
}

// Dialect names, the same as bench/simbank's so both sides of a test agree.
const (
	DialectCUPS        = "cups-pos"
	DialectAdviceX919  = "cups-advice-x919"
	dialectCUPSAliased = "cups"
)

// DialectByName returns the io/bank dialect of a config name: "cups" or "cups-pos" is
// bank.DefaultDialect; "cups-advice-x919" takes reversals as advices (0420/0421, answered
// 0430) and MACs with ANSI X9.19, everything else as cups-pos.
func DialectByName(name string) (bank.Dialect, error) {
	d := bank.DefaultDialect()
	switch name {
	case "", dialectCUPSAliased, DialectCUPS:
	case DialectAdviceX919:
		d.Name, d.ReversalMTI, d.RepeatMTI, d.MAC = DialectAdviceX919, "0420", "0421", bank.MACX919
	default:
		return bank.Dialect{}, fmt.Errorf("unknown dialect %q (want %s, %s or %s)", name,
			dialectCUPSAliased, DialectCUPS, DialectAdviceX919)
	}
	if err := d.Validate(); err != nil {
		return bank.Dialect{}, err
	}
	return d, nil
}

// Deps are what the FEP root hands every bank link.
type Deps struct {
	HSM    hsm.Module           // working-key import, PIN translation, MACs
	Store  *persistence.Store   // the reversal queue
	STAN   *persistence.Counter // shared with the loads: one STAN space per link terminal
	Status *linkstatus.Board    // where the link posts up/down as linkstatus.Bank(code)
	Loads  *actor.PID           // receives messages.ReversalDone
	Logger *slog.Logger         // nil: slog.Default()
	Now    func() time.Time     // nil: time.Now
}

func (d *Deps) check() error {
	switch {
	case d.HSM == nil:
		return fmt.Errorf("%w: no security module", ErrConfig)
	case d.Store == nil:
		return fmt.Errorf("%w: no store", ErrConfig)
	case d.STAN == nil:
		return fmt.Errorf("%w: no STAN counter", ErrConfig)
	case d.Status == nil:
		return fmt.Errorf("%w: no link status board", ErrConfig)
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return nil
}

// Names of the working keys the link imports into the security module at sign-on.
func zpkName(code string) string { return "bank/" + code + "/zpk" }
func makName(code string) string { return "bank/" + code + "/mak" }

// ZPKName is the security-module name of a bank's PIN working key (PIK/ZPK).
func ZPKName(code string) string { return zpkName(code) }

// MAKName is the security-module name of a bank's MAC working key.
func MAKName(code string) string { return makName(code) }

// hsmMAC maps the dialect's MAC algorithm to the security module's.
func hsmMAC(a bank.MACAlg) (hsm.MACAlg, error) {
	switch a {
	case bank.MACCUPS:
		return hsm.MACCUPS, nil
	case bank.MACX919:
		return hsm.MACX919, nil
	case bank.MACX99:
		return hsm.MACX99, nil
	}
	return 0, fmt.Errorf("%w: MAC algorithm %v", ErrConfig, a)
}

// maskPAN keeps the first 6 and last 4 digits (DESIGN 6).
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
