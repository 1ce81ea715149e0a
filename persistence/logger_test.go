package persistence

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestBadgerLoggerPassesWarningsOnly(t *testing.T) {
	var buf bytes.Buffer
	l := badgerLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), min: slog.LevelWarn}
	l.Infof("replaying file id %d\n", 1)
	l.Debugf("noise")
	l.Warningf("value log %s\n", "truncated")
	l.Errorf("compaction failed")
	out := buf.String()
	if strings.Contains(out, "replaying") || strings.Contains(out, "noise") {
		t.Fatalf("Info/Debug passed: %s", out)
	}
	if !strings.Contains(out, `level=WARN msg="value log truncated" component=badger`) || !strings.Contains(out, "level=ERROR") {
		t.Fatalf("warning/error missing: %s", out)
	}
}

func TestCommitAsyncAcknowledgesDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 100)
	for i := range 100 {
		s.CommitAsync([]Op{{Key: Key("a", Uint(uint64(i))), Value: []byte("v")}}, func(err error) { got <- err })
	}
	for range 100 {
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	n := 0
	_ = s.Scan(Key("a"), func(k, v []byte) error { n++; return nil })
	if n != 100 {
		t.Fatalf("%d of 100 async commits after reopen", n)
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatalf("empty commit: %v", err)
	}
}
