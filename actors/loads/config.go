package loads

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/persistence"
)

// Config is the [loads] section of the FEP configuration.
type Config struct {
	// Limits are the timeouts of a load; zero fields take txn.DefaultLimits. They are copied
	// into each load's state when it starts.
	Limits txn.Limits `toml:"limits"`
	// Merchant is the merchant id (F42) sent to the bank.
	Merchant string `toml:"merchant"`
	// Grace is how long a finished transaction actor stays alive to answer late duplicates
	// from memory before it stops (later ones are answered from the store). Zero: 30s.
	Grace time.Duration `toml:"grace"`
}

// Deps are what the FEP root hands the supervisor.
type Deps struct {
	Store *persistence.Store
	// STAN is the STAN counter per bank code, shared with that bank link.
	STAN map[string]*persistence.Counter
	// Platform is the platform session actor.
	Platform *actor.PID
	// Banks are the bank link actors by bank code.
	Banks map[string]*actor.PID
	// Terminal returns the terminal actor a LoadReply or KioskConfirmReply goes to (nil: gone).
	Terminal func(terminalID string) *actor.PID
	Status   *linkstatus.Board
	Logger   *slog.Logger
	// Now is the clock the core sees as Event.Now. Nil: time.Now.
	Now func() time.Time
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Terminal == nil {
		d.Terminal = func(string) *actor.PID { return nil }
	}
	return d
}

func (c Config) grace() time.Duration {
	if c.Grace <= 0 {
		return 30 * time.Second
	}
	return c.Grace
}

// StatsRequest asks the supervisor for its Stats (answered to the sender).
type StatsRequest struct{}

// Stats is the supervisor's view: Live transaction actors, how many unfinished
// transactions the start-up recovery found, and how long it took until every one of them
// had stepped Restarted durably and performed its effects (zero while still recovering).
type Stats struct {
	Live         int
	Recovered    int
	RecoveryTook time.Duration
}

// Kiosk codes the shell chooses (the core chooses the rest, see docs/transaction-states.md).
const (
	// CodeSystem: the FEP could not make the load durable (store failure) or read it.
	CodeSystem = "96"
	// CodeNoRoute: no bank link (or STAN counter) for the bank code.
	CodeNoRoute = "92"
	// CodeConfirmLate: a kiosk confirm the load no longer takes (it had already moved on,
	// e.g. its confirm deadline made it U); the kiosk may stop resending it.
	CodeConfirmLate = "94"
	// CodePlatformDown: a forwarded (re-write) confirm got no platform answer.
	CodePlatformDown = "91"
)
