package linkstatus

import (
	"testing"
	"time"
)

func TestBoard(t *testing.T) {
	b := New()
	if b.Up(Platform) {
		t.Fatal("a link that never reported must be down")
	}
	t0 := time.Unix(100, 0)
	b.Set(Platform, true, "signed in", t0)
	b.Set(Platform, true, "heartbeat ok", t0.Add(time.Second))
	b.Set(Bank("0000000001"), false, "connect refused", t0)
	all := b.All()
	if len(all) != 2 || all[0].Link != "bank:0000000001" || all[1].Link != Platform {
		t.Fatalf("All = %+v", all)
	}
	if !b.Up(Platform) || !all[1].Since.Equal(t0) || all[1].Why != "heartbeat ok" {
		t.Fatalf("platform = %+v", all[1])
	}
	b.Set(Platform, false, "heartbeat lost", t0.Add(2*time.Second))
	if b.Up(Platform) || !b.All()[1].Since.Equal(t0.Add(2*time.Second)) {
		t.Fatal("down transition not recorded")
	}
}
