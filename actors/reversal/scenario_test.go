package reversal

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// Scenario files under testdata/: each block is one event; the expected output is the
// queue after it and the effects, in order. Regenerate with -rewrite and review by hand.

var base = time.Date(2024, 3, 15, 14, 30, 0, 0, time.UTC)

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		q := New("0103000000", DefaultKnobs())
		now := base
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			str := func(key, def string) string {
				if !d.HasArg(key) {
					return def
				}
				var v string
				d.ScanArgs(t, key, &v)
				return v
			}
			dur := func(key string, def time.Duration) time.Duration {
				if !d.HasArg(key) {
					return def
				}
				v, err := time.ParseDuration(str(key, ""))
				if err != nil {
					t.Fatalf("%s: %s: %v", d.Pos, key, err)
				}
				return v
			}
			now = base.Add(dur("at", now.Sub(base)))
			var msg Msg
			switch d.Cmd {
			case "knobs":
				k := DefaultKnobs()
				k.InitialDelay = dur("initial", k.InitialDelay)
				k.Interval = dur("interval", k.Interval)
				k.MaxInterval = dur("max-interval", k.MaxInterval)
				k.WaitForResponse = dur("wait", k.WaitForResponse)
				k.Expiry = dur("expiry", k.Expiry)
				if d.HasArg("max-attempts") {
					d.ScanArgs(t, "max-attempts", &k.MaxAttempts)
				}
				k.MTI, k.RepeatMTI = str("mti", k.MTI), str("repeat", k.RepeatMTI)
				q = New(q.Bank, k)
				return fmt.Sprintf("%+v\n", q.Knobs)
			case "enqueue":
				msg = Enqueue{TxnID: str("txn", "L1"), STAN: str("stan", "000045"), Date: "0315",
					Amount: 5000, Reason: str("reason", "98")}
			case "response":
				msg = Response{STAN: str("stan", "000045"), Date: "0315", Code: str("code", "00")}
			case "link-up":
				msg = LinkUp{}
			case "link-down":
				msg = LinkDown{}
			case "tick":
				msg = Tick{}
			case "restart":
				msg = Restarted{}
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			var effs []Effect
			q, effs = Step(q, Event{Now: now, Msg: msg})
			return summary(q) + formatEffects(effs)
		})
	})
}

func rel(at time.Time) string { return "+" + at.Sub(base).String() }

func summary(q Queue) string {
	var b strings.Builder
	link := "down"
	if q.Up {
		link = "up"
	}
	fmt.Fprintf(&b, "link %s; queued %d, manual %d, finished %d\n", link, len(q.Entries), len(q.Manual), len(q.Finished))
	for _, e := range q.Entries {
		fmt.Fprintf(&b, "  %s %s reason=%s attempts=%d", e.TxnID, e.Key, e.Reason, e.Attempts)
		if e.InFlight {
			fmt.Fprintf(&b, " in flight since %s\n", rel(e.SentAt))
		} else {
			fmt.Fprintf(&b, " next %s\n", rel(e.NextAt))
		}
	}
	for _, m := range q.Manual {
		fmt.Fprintf(&b, "  manual %s %s: %s\n", m.Entry.TxnID, m.Entry.Key, m.Why)
	}
	return b.String()
}

func formatEffects(effs []Effect) string {
	var b strings.Builder
	for _, e := range effs {
		switch e := e.(type) {
		case Send:
			fmt.Fprintf(&b, "> send %s %s %s reason=%s attempt=%d\n", e.MTI, e.TxnID, e.Key, e.Reason, e.Attempt)
		case Done:
			fmt.Fprintf(&b, "> done %s %s code=%s\n", e.TxnID, e.Key, e.Code)
		case Manual:
			fmt.Fprintf(&b, "> MANUAL %s %s: %s\n", e.TxnID, e.Key, e.Why)
		case SetTimer:
			fmt.Fprintf(&b, "> set timer at %s\n", rel(e.At))
		case Note:
			fmt.Fprintf(&b, "> note: %s\n", e.Text)
		default:
			fmt.Fprintf(&b, "> %T %+v\n", e, e)
		}
	}
	return b.String()
}
