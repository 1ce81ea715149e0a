package txn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// Re-write scenarios (testdata/rewrite): one pending booked load, the kiosk's fresh INIT
// and its evidence, the platform's REWRITE and CONFIRM. No bank effect may ever appear.
func TestRewriteScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/rewrite", func(t *testing.T, path string) {
		var s RewriteState
		now := base
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			now = scanAt(t, d, now)
			if d.Cmd == "reset" {
				s = RewriteState{}
				return "fresh re-write\n"
			}
			msg := rewriteMsg(t, d)
			before := s
			var effs []Effect
			s, effs = StepRewrite(s, Event{Now: now, Msg: msg})
			if before.Final() && s != before {
				t.Fatalf("final state changed:\n%+v\n%+v", before, s)
			}
			for _, e := range effs {
				switch e.(type) {
				case SendBankDebit, EnqueueReversal:
					t.Fatalf("re-write touched the bank: %+v", e)
				}
			}
			return rewriteSummary(s) + formatEffects(effs)
		})
	})
}

func rewriteMsg(t *testing.T, d *datadriven.TestData) Msg {
	num := func(key string, def int) int {
		v := def
		if d.HasArg(key) {
			d.ScanArgs(t, key, &v)
		}
		return v
	}
	switch d.Cmd {
	case "start":
		return RewriteStart{ID: "R1", Ref: "20240315000000000001", Terminal: "KIOSK002",
			CardSerial: "3300000000000001", Amount: 5000, Write: WriteStatus(arg(t, d, "write", "U")),
			Serial: num("serial", 7), MAC2: arg(t, d, "mac2", "D14DBB02"), HostTime: "20240315143000"}
	case "init":
		return KioskInit{CardSerial: arg(t, d, "card", "3300000000000001"), Serial: num("serial", 7),
			Balance: 12000, Random: "5A3C0F11", MAC1: "0B1C2D3E",
			ProveMAC2: arg(t, d, "prove-mac2", ""), ProveTAC: arg(t, d, "prove-tac", ""),
			Log: LogEvidence(arg(t, d, "log", ""))}
	case "rewrite-ok":
		return PlatformRewriteOK{MAC2: arg(t, d, "mac2", "77AA55EE"), HostTime: arg(t, d, "time", "20240316091500")}
	case "rewrite-refused":
		return PlatformRewriteRefused{Code: arg(t, d, "code", "R9")}
	}
	return loadMsg(t, d)
}

func rewriteSummary(s RewriteState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s orig=%s serial=%d mac2=%s write=%s kiosk=%s",
		orDash(s.Phase), orDash(s.Orig), s.Serial, orDash(s.MAC2), orDash(s.Write), orDash(s.Kiosk))
	if s.ConfirmAttempts > 0 {
		fmt.Fprintf(&b, " confirm#=%d", s.ConfirmAttempts)
	}
	if s.Final() {
		fmt.Fprintf(&b, "\noutcome=%s", s.Outcome)
	}
	b.WriteString("\n")
	return b.String()
}
