package simkiosk

import (
	"fmt"
	"strings"
)

// Step is where a load is interrupted on purpose: the card pulled from the slot, or the
// kiosk crashing. Each one produces a different write status and a different re-write at
// the card's next load, which is what the tests, the demo and the bench need to exercise.
type Step int

const (
	// PullNone runs the load to its end.
	PullNone Step = iota
	// PullBeforeInit pulls the card after the pending loads are handled, before INITIALIZE
	// FOR LOAD: no LOAD REQUEST is sent.
	PullBeforeInit
	// PullBeforeCredit pulls the card after an approved LOAD RESPONSE and before CREDIT FOR
	// LOAD: the kiosk knows the credit was never sent and confirms F; the card is unchanged.
	PullBeforeCredit
	// PullAfterCommit pulls the card after it has executed CREDIT FOR LOAD but before its
	// answer reaches the kiosk: the money IS on the card, the kiosk sees ErrCardRemoved and
	// confirms U.
	PullAfterCommit
	// CrashAfterCredit: the credit is on the card and the kiosk dies before CONFIRM. Nothing
	// more is sent; the FEP's confirm timeout makes the load U.
	CrashAfterCredit
	// CrashBeforeCredit: the kiosk dies right after an approved LOAD RESPONSE. Nothing is
	// written and nothing more is sent; the FEP's confirm timeout makes the load U, and the
	// card's unchanged serial makes it a plain re-write.
	CrashBeforeCredit
)

var stepNames = [...]string{
	PullNone:          "none",
	PullBeforeInit:    "before-init",
	PullBeforeCredit:  "before-credit",
	PullAfterCommit:   "after-commit",
	CrashAfterCredit:  "no-confirm",
	CrashBeforeCredit: "no-credit",
}

// Steps lists every step in order.
func Steps() []Step {
	return []Step{PullNone, PullBeforeInit, PullBeforeCredit, PullAfterCommit, CrashAfterCredit, CrashBeforeCredit}
}

// String is the step's name in scripts and on the command line.
func (s Step) String() string {
	if s >= 0 && int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// needsPuller reports whether the step takes the card away, which only a slot that can be
// pulled (card.InProcessReader) allows.
func (s Step) needsPuller() bool {
	return s == PullBeforeInit || s == PullBeforeCredit || s == PullAfterCommit
}

// ParseStep reads a step name; "" is PullNone.
func ParseStep(name string) (Step, error) {
	n := strings.TrimSpace(strings.ToLower(name))
	if n == "" {
		return PullNone, nil
	}
	for i, s := range stepNames {
		if s == n {
			return Step(i), nil
		}
	}
	return 0, fmt.Errorf("unknown pull step %q (want one of %s)", name, strings.Join(stepNames[:], ", "))
}

// MarshalText and UnmarshalText let a Step be a TOML string.
func (s Step) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a step name.
func (s *Step) UnmarshalText(b []byte) error {
	v, err := ParseStep(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
