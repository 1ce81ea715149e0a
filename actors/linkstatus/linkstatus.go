// Package linkstatus is the board where the platform session and the bank links post
// whether they are up, so a terminal can refuse a new load at once with a clear code
// instead of starting a debit that cannot complete (DESIGN section 6). It is a value the
// FEP root creates and hands to its actors, never a global.
package linkstatus

import (
	"sort"
	"sync"
	"time"
)

// Platform is the board's name for the platform session.
const Platform = "platform"

// Bank returns the board's name for the bank link of code.
func Bank(code string) string { return "bank:" + code }

// Status is one link's last report.
type Status struct {
	Link  string
	Up    bool
	Why   string
	Since time.Time
}

// Board is safe for concurrent use.
type Board struct {
	mu    sync.RWMutex
	links map[string]Status
}

// New returns an empty board: every link is down until it reports.
func New() *Board { return &Board{links: map[string]Status{}} }

// Set records a link's state; Since only moves when Up changes.
func (b *Board) Set(link string, up bool, why string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.links[link]
	if ok && old.Up == up {
		old.Why = why
		b.links[link] = old
		return
	}
	b.links[link] = Status{Link: link, Up: up, Why: why, Since: now}
}

// Up reports whether link is up; a link that never reported is down.
func (b *Board) Up(link string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.links[link].Up
}

// All returns every link's status in name order, for status pages and logs.
func (b *Board) All() []Status {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]Status, 0, len(b.links))
	for _, s := range b.links {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Link < out[j].Link })
	return out
}
