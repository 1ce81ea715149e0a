package txn

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestRewriteNeverDoubleLoads hides the truth (was the interrupted credit applied?) in a
// card, lets the kiosk report only what a card would show (fresh INIT serial, GET
// TRANSACTION PROVE when the card was not used since, the load log unless rotated out),
// and drives the re-write with duplicates, timers and restarts. It checks that a card that
// holds the load is never given a second MAC2 (a double load), that a card that does not
// hold it is never declared applied, and that the bank is never touched.
func TestRewriteNeverDoubleLoads(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		orig := WriteStatus(rapid.SampledFrom([]WriteStatus{WriteU, WriteU, WriteF}).Draw(rt, "orig"))
		applied := orig == WriteU && rapid.Bool().Draw(rt, "applied")
		others := rapid.IntRange(0, 3).Draw(rt, "other loads since")
		const S, ours = 7, "D14DBB02"

		in := KioskInit{CardSerial: "3300000000000001", Random: "5A3C0F11", MAC1: "0B1C2D3E"}
		switch {
		case applied:
			in.Serial = S + 1 + others
		case others == 0:
			in.Serial = S
		default:
			in.Serial = S + others // serial S was used by another load
		}
		atS := "0C0FFEE0" // MAC2 the card accepted at serial S
		if applied {
			atS = ours
		}
		if in.Serial == S+1 && rapid.Bool().Draw(rt, "805A works") {
			in.ProveMAC2, in.ProveTAC = atS, "27840D33"
		}
		if in.Serial > S && !rapid.Bool().Draw(rt, "log rotated") {
			in.Log = LogOther
			if applied {
				in.Log = LogOurs
			}
		}

		now := base
		var s RewriteState
		var seen []Msg
		step := func(m Msg) {
			prev := s
			var effs []Effect
			s, effs = StepRewrite(s, Event{Now: now, Msg: m})
			if prev.Final() && s != prev {
				rt.Fatalf("final state changed by %T", m)
			}
			for _, e := range effs {
				switch e := e.(type) {
				case SendBankDebit, EnqueueReversal:
					rt.Fatalf("re-write touched the bank: %+v", e)
				case SendPlatformRewrite:
					if applied {
						rt.Fatalf("second MAC2 asked for a card that holds the load (%s)", s.Decision)
					}
				}
			}
			seen = append(seen, m)
		}
		step(RewriteStart{ID: "R1", Ref: "20240315000000000001", CardSerial: in.CardSerial, Amount: 5000,
			Write: orig, Serial: S, MAC2: ours, HostTime: "20240315143000"})
		script := []Msg{in, PlatformRewriteOK{MAC2: "77AA55EE", HostTime: "20240316091500"},
			KioskConfirm{Status: WriteS, TAC: "1A2B3C4D"}, PlatformConfirmAck{}}
		for _, m := range script {
			for range rapid.IntRange(0, 2).Draw(rt, "noise") {
				switch rapid.IntRange(0, 2).Draw(rt, "noise kind") {
				case 0:
					step(seen[rapid.IntRange(0, len(seen)-1).Draw(rt, "dup")])
				case 1:
					now = now.Add(time.Duration(rapid.IntRange(0, 150).Draw(rt, "advance")) * time.Second)
					kinds := []TimerKind{TimerInit, TimerRewrite, TimerConfirm, TimerConfirmRetry}
					step(Timer{Kind: kinds[rapid.IntRange(0, len(kinds)-1).Draw(rt, "timer")]})
				case 2:
					step(Restarted{})
				}
			}
			step(m)
		}
		for i := 0; !s.Final(); i++ { // the platform acks every confirm from here on
			if i > 20 {
				rt.Fatalf("re-write not final: %+v", s)
			}
			now = now.Add(5 * time.Minute)
			for _, k := range []TimerKind{TimerInit, TimerRewrite, TimerConfirmRetry} {
				step(Timer{Kind: k})
			}
			step(Timer{Kind: TimerConfirm})
			step(PlatformConfirmAck{})
		}
		if s.Outcome == RewriteWasApplied && !applied {
			rt.Fatalf("declared applied, card does not hold it (%s)", s.Decision)
		}
		if applied && s.Outcome != RewriteWasApplied && s.Outcome != RewriteManual && s.Outcome != RewriteStillPending {
			rt.Fatalf("card holds the load, outcome %s", s.Outcome)
		}
	})
}
