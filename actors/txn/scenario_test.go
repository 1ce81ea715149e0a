package txn

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// The scenario files under testdata/load and testdata/rewrite are the specification a
// reviewer reads: each block is one event, and the expected output is the state after it
// and the effects it asked for, in order. Regenerate with
//
//	go test ./actors/txn -run Scenarios -rewrite
//
// and review every changed line by hand.

// base is the scenario clock's zero; at=<duration> on a command sets Now to base+duration
// and the clock stays there until a later at= moves it.
var base = time.Date(2024, 3, 15, 14, 30, 0, 0, time.UTC)

func TestLoadScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/load", func(t *testing.T, path string) {
		var s State
		now := base
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			now = scanAt(t, d, now)
			if d.Cmd == "reset" {
				s = State{}
				return "fresh load\n"
			}
			msg := loadMsg(t, d)
			before := s
			var effs []Effect
			s, effs = Step(s, Event{Now: now, Msg: msg})
			if before.Final() && s != before {
				t.Fatalf("final state changed:\n%+v\n%+v", before, s)
			}
			return summary(s) + formatEffects(effs)
		})
	})
}

func scanAt(t *testing.T, d *datadriven.TestData, now time.Time) time.Time {
	if d.HasArg("at") {
		var at string
		d.ScanArgs(t, "at", &at)
		dur, err := time.ParseDuration(at)
		if err != nil {
			t.Fatalf("%s: at=%s: %v", d.Pos, at, err)
		}
		return base.Add(dur)
	}
	return now
}

func arg(t *testing.T, d *datadriven.TestData, key, def string) string {
	if !d.HasArg(key) {
		return def
	}
	var v string
	d.ScanArgs(t, key, &v)
	return v
}

func loadMsg(t *testing.T, d *datadriven.TestData) Msg {
	switch d.Cmd {
	case "load":
		var amount int64 = 5000
		if d.HasArg("amount") {
			d.ScanArgs(t, "amount", &amount)
		}
		return KioskLoadRequest{ID: "L1", Terminal: "KIOSK001", KioskTrace: "000123",
			CardSerial: "3300000000000001", Amount: amount, BankCode: "0103000000",
			MaskedPAN: "622848******1234", STAN: "000045", BankDate: "0315"}
	case "check-ok":
		return PlatformCheckOK{Ref: arg(t, d, "ref", "20240315000000000001")}
	case "check-refused":
		return PlatformCheckRefused{Code: arg(t, d, "code", "P1")}
	case "platform-error":
		return PlatformError{Why: arg(t, d, "why", "link down")}
	case "bank":
		return BankResponse{Code: arg(t, d, "code", "00"), RRN: "240315000045", Auth: "A12345",
			SettleDate: "0315", MACOK: arg(t, d, "mac", "ok") == "ok", Malformed: d.HasArg("malformed")}
	case "book-ok":
		return BookOK{MAC2: arg(t, d, "mac2", "D14DBB02"), HostTime: arg(t, d, "time", "20240315143000")}
	case "book-refused":
		return BookRefused{Code: arg(t, d, "code", "B1")}
	case "book-error":
		return BookError{Why: arg(t, d, "why", "no answer")}
	case "confirm", "kiosk-confirm":
		return KioskConfirm{Status: WriteStatus(arg(t, d, "status", "S")), TAC: arg(t, d, "tac", "")}
	case "confirm-ack":
		return PlatformConfirmAck{}
	case "confirm-refused":
		return PlatformConfirmRefused{Code: arg(t, d, "code", "T1")}
	case "reversal-done":
		return ReversalDone{Code: arg(t, d, "code", "00")}
	case "timer":
		return Timer{Kind: TimerKind(arg(t, d, "kind", ""))}
	case "restart":
		return Restarted{}
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return nil
}

func orDash[T ~string](v T) string {
	if v == "" {
		return "-"
	}
	return string(v)
}

func summary(s State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s txn=%s write=%s rev=%s", orDash(s.Phase), orDash(s.Txn), orDash(s.Write), orDash(s.Reversal))
	if s.RevWhy != "" {
		fmt.Fprintf(&b, "(%s", s.RevWhy)
		if s.RevCode != "" {
			fmt.Fprintf(&b, "->%s", s.RevCode)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " kiosk=%s", orDash(s.Kiosk))
	if s.BookAttempts > 0 {
		fmt.Fprintf(&b, " book#=%d", s.BookAttempts)
	}
	if s.ConfirmAttempts > 0 {
		fmt.Fprintf(&b, " confirm#=%d", s.ConfirmAttempts)
	}
	if s.Final() {
		r := s.Reconciliation()
		file := "not-listed"
		if r.Listed {
			file = string(r.Write) + "/" + string(r.Txn)
		}
		fmt.Fprintf(&b, "\noutcome=%s file=%s", s.Outcome, file)
	}
	b.WriteString("\n")
	return b.String()
}

func rel(at time.Time) string { return "+" + at.Sub(base).String() }

func formatEffects(effs []Effect) string {
	var b strings.Builder
	for _, e := range effs {
		b.WriteString("> " + formatEffect(e) + "\n")
	}
	return b.String()
}

func formatEffect(e Effect) string {
	switch e := e.(type) {
	case SendPlatformCheck:
		return "platform CARD CHECK"
	case SendBankDebit:
		return fmt.Sprintf("bank 0200 bank=%s stan=%s amount=%d", e.Bank, e.STAN, e.Amount)
	case EnqueueReversal:
		return fmt.Sprintf("enqueue reversal bank=%s stan=%s date=%s amount=%d reason=%s", e.Bank, e.STAN, e.Date, e.Amount, e.Reason)
	case SendPlatformBook:
		return "platform BOOK ref=" + e.Ref
	case SendPlatformConfirm:
		return fmt.Sprintf("platform CONFIRM ref=%s status=%s tac=%s", e.Ref, e.Status, orDash(e.TAC))
	case SendPlatformRewrite:
		return fmt.Sprintf("platform REWRITE ref=%s serial=%d", e.Ref, e.Serial)
	case AskKioskInit:
		return fmt.Sprintf("kiosk: INIT FOR LOAD ref=%s amount=%d", e.Ref, e.Amount)
	case ReplyKiosk:
		s := fmt.Sprintf("kiosk: %s code=%s", e.Result, orDash(e.Code))
		if e.MAC2 != "" {
			s += fmt.Sprintf(" mac2=%s time=%s", e.MAC2, e.HostTime)
		}
		return s
	case SetTimer:
		return fmt.Sprintf("set timer %s at %s", e.Kind, rel(e.At))
	case CancelTimer:
		return fmt.Sprintf("cancel timer %s", e.Kind)
	case Done:
		return "done: " + string(e.Outcome)
	case Note:
		return "note: " + e.Text
	}
	return fmt.Sprintf("%T %+v", e, e)
}
