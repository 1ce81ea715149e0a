package platformlink

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/platform"
	"github.com/quancun/quancun/persistence"
)

// ErrConfig reports a Config or Deps the session cannot run with.
var ErrConfig = errors.New("platformlink: bad configuration")

// Config is the platform session, as the FEP's configuration file gives it ([platform]).
// Zero values take the defaults of Defaults; docs/platform-link.md lists every key.
type Config struct {
	Addr      string `toml:"addr"`        // host:port of the platform
	AuthCode  string `toml:"auth_code"`   // 20 characters, assigned by the platform
	SignInKey string `toml:"sign_in_key"` // security-module name of the long-term key (a KEK)

	HeartbeatInterval time.Duration `toml:"heartbeat_interval"` // heartbeat an idle session this often
	HeartbeatTimeout  time.Duration `toml:"heartbeat_timeout"`  // no answer by then: down, reconnect
	RequestTimeout    time.Duration `toml:"request_timeout"`    // per request, sign-in and sign-out
	ReconnectMin      time.Duration `toml:"reconnect_min"`      // first back-off after a failure
	ReconnectMax      time.Duration `toml:"reconnect_max"`      // back-off doubles up to this
	MaxInFlight       int           `toml:"max_in_flight"`      // requests awaiting their answer
}

// Defaults of Config (docs/protocols/platform.md section 7).
const (
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultHeartbeatTimeout  = 3 * time.Second
	DefaultRequestTimeout    = 10 * time.Second
	DefaultReconnectMin      = time.Second
	DefaultReconnectMax      = 60 * time.Second
	DefaultMaxInFlight       = 256
)

// dialTimeout bounds one TCP connect (platform.md section 7: 5 s).
const dialTimeout = 5 * time.Second

// Defaults fills zero values.
func (c *Config) Defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.ReconnectMin, DefaultReconnectMin)
	def(&c.ReconnectMax, DefaultReconnectMax)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
}

// Validate reports what is missing or malformed; call it after Defaults.
func (c *Config) Validate() error {
	bad := func(what string, a ...any) error {
		return fmt.Errorf("%w: platform: "+what, append([]any{ErrConfig}, a...)...)
	}
	switch {
	case c.Addr == "":
		return bad("addr is empty")
	case len(c.AuthCode) != 20:
		return bad("auth_code must be 20 characters, got %d", len(c.AuthCode))
	case c.SignInKey == "":
		return bad("sign_in_key is empty")
	}
	for _, b := range []byte(c.AuthCode) {
		if b < 0x20 || b > 0x7E {
			return bad("auth_code must be printable ASCII")
		}
	}
	return nil
}

// Deps are what the FEP root hands the platform session.
type Deps struct {
	HSM    *hsm.Soft          // holds the long-term key, the sign-in MAC key and the dynamic key
	Store  *persistence.Store // the session record (SessionKey)
	Status *linkstatus.Board  // where the session posts up/down as linkstatus.Platform
	Logger *slog.Logger       // nil: slog.Default()
	Now    func() time.Time   // nil: time.Now
}

func (d *Deps) check() error {
	switch {
	case d.HSM == nil:
		return fmt.Errorf("%w: no security module", ErrConfig)
	case d.Store == nil:
		return fmt.Errorf("%w: no store", ErrConfig)
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

// Check validates what Props would be given, including that the security module holds the
// long-term key (usage kek) and the sign-in MAC key (usage mac), so the FEP root can refuse
// to start.
func Check(cfg Config, deps Deps) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := deps.check(); err != nil {
		return err
	}
	for _, k := range []struct {
		name  string
		usage hsm.Usage
	}{{cfg.SignInKey, hsm.UsageKEK}, {SignInMACKeyName(cfg.SignInKey), hsm.UsageMAC}} {
		info, err := deps.HSM.Info(k.name)
		if err != nil {
			return fmt.Errorf("%w: platform key: %w", ErrConfig, err)
		}
		if info.Usage != k.usage {
			return fmt.Errorf("%w: platform key %s is %s, need %s", ErrConfig, k.name, info.Usage, k.usage)
		}
	}
	return nil
}

// SignInMACKeyName is the security-module name of the sign-in MAC key K_S =
// Div(LTK, "QCSIGNIN") (platform.md 3.1) that goes with the long-term key ltkName. The
// module cannot derive a MAC key from a KEK, so K_S is loaded next to the LTK at the key
// ceremony (InstallKeys) and travels with it in the key file.
func SignInMACKeyName(ltkName string) string { return ltkName + ".signin" }

// DynamicKeyName is the security-module name under which each sign-in's dynamic key is
// imported (usage mac, unwrapped under the long-term key ltkName and checked by its KCV).
func DynamicKeyName(ltkName string) string { return ltkName + ".dk" }

// InstallKeys loads a clear long-term key into the module (key ceremony, demo, tests):
// the LTK as a KEK under ltkName and K_S as a MAC key under SignInMACKeyName(ltkName).
// Only key check values come back; the caller should wipe ltk.
func InstallKeys(h *hsm.Soft, ltkName string, ltk []byte) (ltkInfo, signInInfo hsm.KeyInfo, err error) {
	ks, err := platform.SignInKey(ltk)
	if err != nil {
		return ltkInfo, signInInfo, fmt.Errorf("platformlink: derive sign-in key: %w", err)
	}
	defer clear(ks)
	if ltkInfo, err = h.ImportClear(ltkName, hsm.UsageKEK, ltk); err != nil {
		return ltkInfo, signInInfo, fmt.Errorf("platformlink: load long-term key: %w", err)
	}
	if signInInfo, err = h.ImportClear(SignInMACKeyName(ltkName), hsm.UsageMAC, ks); err != nil {
		return ltkInfo, signInInfo, fmt.Errorf("platformlink: load sign-in key: %w", err)
	}
	return ltkInfo, signInInfo, nil
}

// hsmMAC is the io/platform MACer over a named X9.19 key in the security module.
type hsmMAC struct {
	h    *hsm.Soft
	name string
}

func (k hsmMAC) MAC(data []byte) ([8]byte, error) {
	var out [8]byte
	m, err := k.h.MAC(k.name, hsm.MACX919, data)
	if err != nil {
		return out, err
	}
	copy(out[:], m)
	return out, nil
}
