package reversal

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestQueueProperties drives one link's queue with random enqueues (with repeats), 0410s
// (late, duplicate, unknown), link flaps, ticks and restarts, and checks after every step:
// at most one entry in flight and it is the oldest; nothing is sent while the link is down;
// the first send of an entry uses the MTI and every later one the repeat MTI; an entry is
// done only after a 0410 for it, exactly once; no entry is ever lost (each enqueued key is
// queued, finished or manual). At the end, with the link up and the bank answering, every
// entry is finished or manual.
func TestQueueProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		k := DefaultKnobs()
		k.MTI, k.RepeatMTI = "0400", "0401"
		k.MaxAttempts = rapid.IntRange(0, 3).Draw(rt, "max attempts")
		if rapid.Bool().Draw(rt, "expiry") {
			k.Expiry = 3 * time.Minute
		}
		q := New("0103000000", k)
		now := base
		sends := map[Key]int{}
		done := map[Key]bool{}
		answered := map[Key]bool{}
		enqueued := map[Key]bool{}
		var inflight []Key // sends the bank may still answer

		step := func(m Msg) {
			var effs []Effect
			q, effs = Step(q, Event{Now: now, Msg: m})
			for _, e := range effs {
				switch e := e.(type) {
				case Send:
					if !q.Up {
						rt.Fatalf("sent %s while the link is down", e.Key)
					}
					if q.Entries[0].Key != e.Key {
						rt.Fatalf("sent %s, oldest is %s", e.Key, q.Entries[0].Key)
					}
					sends[e.Key]++
					want := k.RepeatMTI
					if sends[e.Key] == 1 {
						want = k.MTI
					}
					if e.MTI != want || e.Attempt != sends[e.Key] {
						rt.Fatalf("send %d of %s used %s (attempt %d)", sends[e.Key], e.Key, e.MTI, e.Attempt)
					}
					inflight = append(inflight, e.Key)
				case Done:
					if !answered[e.Key] {
						rt.Fatalf("done %s without a 0410", e.Key)
					}
					done[e.Key] = true
				}
			}
			n := 0
			for i, e := range q.Entries {
				if e.InFlight {
					n++
					if i != 0 {
						rt.Fatalf("entry %d in flight, not the oldest", i)
					}
				}
			}
			for key := range enqueued {
				where := 0
				if slices.ContainsFunc(q.Entries, func(e Entry) bool { return e.Key == key }) {
					where++
				}
				if slices.ContainsFunc(q.Finished, func(f Finished) bool { return f.Key == key }) {
					where++
				}
				if slices.ContainsFunc(q.Manual, func(m ManualEntry) bool { return m.Entry.Key == key }) {
					where++
				}
				if where != 1 {
					rt.Fatalf("%s is in %d places", key, where)
				}
			}
		}
		answer := func(key Key) {
			answered[key] = true
			step(Response{STAN: key.STAN, Date: key.Date, Code: []string{"00", "25", "12"}[rapid.IntRange(0, 2).Draw(rt, "code")]})
		}

		for range rapid.IntRange(1, 60).Draw(rt, "steps") {
			switch rapid.IntRange(0, 6).Draw(rt, "action") {
			case 0, 1:
				key := Key{STAN: fmt.Sprintf("%06d", rapid.IntRange(1, 5).Draw(rt, "stan")), Date: "0315"}
				enqueued[key] = true
				step(Enqueue{TxnID: "T" + key.STAN, STAN: key.STAN, Date: key.Date, Amount: 100, Reason: "98"})
			case 2:
				if len(inflight) > 0 {
					i := rapid.IntRange(0, len(inflight)-1).Draw(rt, "answer")
					answer(inflight[i]) // late or duplicate answers included
				}
			case 3:
				if q.Up {
					step(LinkDown{})
				} else {
					step(LinkUp{})
				}
			case 4, 5:
				now = now.Add(time.Duration(rapid.IntRange(0, 90).Draw(rt, "advance")) * time.Second)
				step(Tick{})
			case 6:
				step(Restarted{})
			}
		}
		// The link comes up and the bank answers every send.
		step(LinkUp{})
		for i := 0; len(q.Entries) > 0; i++ {
			if i > 200 {
				rt.Fatalf("queue does not drain: %+v", q.Entries)
			}
			if h := q.Entries[0]; h.InFlight {
				answer(h.Key)
				continue
			}
			if !q.WakeAt.IsZero() && q.WakeAt.After(now) {
				now = q.WakeAt
			}
			step(Tick{})
		}
		for key := range enqueued {
			inManual := slices.ContainsFunc(q.Manual, func(m ManualEntry) bool { return m.Entry.Key == key })
			if !done[key] && !inManual {
				rt.Fatalf("%s neither done nor manual", key)
			}
		}
	})
}
