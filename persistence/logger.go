package persistence

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// badgerLogger adapts Badger's printf-style logger to slog. Badger is chatty at Info
// (every replay, compaction and flush), so only levels at or above min pass.
type badgerLogger struct {
	log *slog.Logger
	min slog.Leveler
}

func (l badgerLogger) logf(level slog.Level, format string, args ...any) {
	if level < l.min.Level() {
		return
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (l badgerLogger) Errorf(f string, a ...any)   { l.logf(slog.LevelError, f, a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.logf(slog.LevelWarn, f, a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.logf(slog.LevelInfo, f, a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.logf(slog.LevelDebug, f, a...) }
