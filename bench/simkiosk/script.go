package simkiosk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrScript reports a script the kiosk refuses to run.
var ErrScript = errors.New("simkiosk: bad script")

// MaxScriptSteps bounds a script, so a runaway file cannot queue loads for days.
const MaxScriptSteps = 100000

// maxScriptBytes bounds what ParseScript reads.
const maxScriptBytes = 4 << 20

// Script is a scripted run: loads in order, each with what it must produce
// (docs/sim-kiosk.md "Scripts").
type Script struct {
	Defaults ScriptDefaults `toml:"defaults"`
	Steps    []ScriptStep   `toml:"step"`
}

// ScriptDefaults fill the fields a step leaves empty.
type ScriptDefaults struct {
	BankCode string `toml:"bank_code"`
	PAN      string `toml:"pan"`
	PIN      string `toml:"pin"`
}

// ScriptStep is one load of a script.
type ScriptStep struct {
	Card     string `toml:"card"`      // card file name, relative to the cards directory
	Amount   int64  `toml:"amount"`    // fen
	BankCode string `toml:"bank_code"` // 10 characters
	PAN      string `toml:"pan"`       // bank card number
	PIN      string `toml:"pin"`       // digits, or "none" for a load without PIN
	Pull     Step   `toml:"pull"`      // none, before-init, before-credit, after-commit, no-confirm, no-credit
	// Expect is the LOAD RESPONSE code the step must get ("00", "55", ...), "none" when no
	// LOAD REQUEST may be sent or answered (pull before INIT), "" for no check.
	Expect string `toml:"expect"`
	// ExpectWrite is the write status the kiosk must report: S, F, U, "none" (no CONFIRM
	// sent), "" for no check.
	ExpectWrite string `toml:"expect_write"`
}

// Params turns the step into Load's parameters for the card in slot.
func (s ScriptStep) Params(slot *CardSlot) LoadParams {
	pin := s.PIN
	if pin == "none" {
		pin = ""
	}
	return LoadParams{Card: slot.Reader, Amount: s.Amount, BankCode: s.BankCode, PAN: s.PAN, PIN: pin, PullAt: s.Pull}
}

// LoadScript reads and parses a script file.
func LoadScript(path string) (Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Script{}, fmt.Errorf("simkiosk: script: %w", err)
	}
	s, err := ParseScript(b)
	if err != nil {
		return Script{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScript decodes a TOML script, fills each step from [defaults] and checks every field,
// so a mistake shows before the first load, not in the middle of a run. Unknown keys are
// errors: a misspelt "expect" would otherwise silently check nothing.
func ParseScript(b []byte) (Script, error) {
	if len(b) > maxScriptBytes {
		return Script{}, fmt.Errorf("%w: %d bytes, at most %d", ErrScript, len(b), maxScriptBytes)
	}
	var s Script
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&s)
	if err != nil {
		return Script{}, fmt.Errorf("%w: %w", ErrScript, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Script{}, fmt.Errorf("%w: unknown keys %s", ErrScript, strings.Join(keys, ", "))
	}
	if len(s.Steps) == 0 {
		return Script{}, fmt.Errorf("%w: no [[step]]", ErrScript)
	}
	if len(s.Steps) > MaxScriptSteps {
		return Script{}, fmt.Errorf("%w: %d steps, at most %d", ErrScript, len(s.Steps), MaxScriptSteps)
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		if st.BankCode == "" {
			st.BankCode = s.Defaults.BankCode
		}
		if st.PAN == "" {
			st.PAN = s.Defaults.PAN
		}
		if st.PIN == "" {
			st.PIN = s.Defaults.PIN
		}
		if st.PIN == "" {
			st.PIN = "none"
		}
		if err := st.validate(); err != nil {
			return Script{}, fmt.Errorf("%w: step %d: %w", ErrScript, i+1, err)
		}
	}
	return s, nil
}

func (s ScriptStep) validate() error {
	switch {
	case s.Card == "":
		return errors.New("card is required")
	case s.Amount <= 0 || s.Amount > 0xFFFFFFFF:
		return fmt.Errorf("amount %d fen: want 1..%d", s.Amount, uint32(0xFFFFFFFF))
	case len(s.BankCode) != 10 || !printable(s.BankCode):
		return fmt.Errorf("bank_code %q: want 10 characters", s.BankCode)
	case len(s.PAN) < 12 || len(s.PAN) > 19 || !digits(s.PAN):
		return errors.New("pan: want 12 to 19 digits") // the PAN itself is not repeated
	case s.PIN != "none" && (len(s.PIN) < 4 || len(s.PIN) > 12 || !digits(s.PIN)):
		return errors.New(`pin: want 4 to 12 digits or "none"`)
	case s.Pull < PullNone || s.Pull > CrashBeforeCredit:
		return fmt.Errorf("pull %v", s.Pull)
	}
	switch s.Expect {
	case "", "none":
	default:
		if len(s.Expect) != 2 || !printable(s.Expect) {
			return fmt.Errorf(`expect %q: want a 2-character response code, "none" or nothing`, s.Expect)
		}
	}
	switch s.ExpectWrite {
	case "", "none", "S", "F", "U":
	default:
		return fmt.Errorf(`expect_write %q: want S, F, U, "none" or nothing`, s.ExpectWrite)
	}
	return nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// check compares a result with the step's expectations; "" means it matched.
func (s ScriptStep) check(r Result, err error) string {
	var bad []string
	switch s.Expect {
	case "":
	case "none":
		if r.Code != "" {
			bad = append(bad, fmt.Sprintf("code %s, expected no answer", r.Code))
		}
	default:
		if string(r.Code) != s.Expect {
			bad = append(bad, fmt.Sprintf("code %s, expected %s", orDash(string(r.Code)), s.Expect))
		}
	}
	switch s.ExpectWrite {
	case "":
	case "none":
		if r.Write != 0 {
			bad = append(bad, fmt.Sprintf("write %c, expected none", r.Write))
		}
	default:
		if r.Write == 0 || string(rune(r.Write)) != s.ExpectWrite {
			w := "-"
			if r.Write != 0 {
				w = string(rune(r.Write))
			}
			bad = append(bad, fmt.Sprintf("write %s, expected %s", w, s.ExpectWrite))
		}
	}
	if err != nil { // the planned interruptions return no error: any error is a failure
		bad = append(bad, "error: "+err.Error())
	}
	return strings.Join(bad, "; ")
}
