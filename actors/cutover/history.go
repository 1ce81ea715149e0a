package cutover

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quancun/quancun/persistence"
)

// Reader is the part of the store the history is read from.
type Reader interface {
	Scan(prefix []byte, fn func(key, value []byte) error) error
	Get(key []byte) ([]byte, error)
}

// Day is one business date of the FEP and the instant it opened: when the cutover actor
// moved to it, or, for a date opened while the FEP was down, the instant the rule opens it.
type Day struct {
	Date     string    `json:"date"`
	OpenedAt time.Time `json:"opened_at"`
}

// DayKey holds the Day of one date; the history is every DayKey, in date order. The current
// business date is the last one.
func DayKey(date string) []byte { return persistence.Key("bizday", date) }

// SentKey marks the reconciliation file of an accounting date as uploaded (value: Sent).
func SentKey(date string) []byte { return persistence.Key("recon", "sent", date) }

// Sent is what was uploaded for an accounting date: enough to tell a later re-upload apart.
type Sent struct {
	Date  string    `json:"date"`
	Name  string    `json:"name"`
	Bytes int       `json:"bytes"`
	SHA   string    `json:"sha256"`
	At    time.Time `json:"at"`
	Tries int       `json:"tries"`
}

// LoadHistory reads every business date the FEP has opened, oldest first.
func LoadHistory(s Reader) ([]Day, error) {
	var days []Day
	err := s.Scan(persistence.Key("bizday"), func(_, v []byte) error {
		var d Day
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("cutover: business day record: %w", err)
		}
		days = append(days, d)
		return nil
	})
	if err != nil && !errors.Is(err, persistence.ErrStop) {
		return nil, err
	}
	slices.SortFunc(days, func(a, b Day) int { return a.OpenedAt.Compare(b.OpenedAt) })
	return days, nil
}

// IsSent reports whether the file of date was uploaded.
func IsSent(s Reader, date string) (bool, error) {
	_, err := s.Get(SentKey(date))
	if errors.Is(err, persistence.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Resolver answers "what was the FEP's business date at instant t" from the history, and
// from the calendar's rule for instants the history does not cover (before the first
// recorded day: a store older than the business day, or a load the FEP took in the moment
// before its cutover actor recorded the first day).
type Resolver struct {
	cal  Calendar
	days []Day // by OpenedAt
}

// NewResolver reads the history once; a resolver is for one job (the file of one date).
func NewResolver(s Reader, cal Calendar) (Resolver, error) {
	days, err := LoadHistory(s)
	if err != nil {
		return Resolver{}, err
	}
	return Resolver{cal: cal, days: days}, nil
}

// DateAt is the business date at t: the day opened last at or before t. Each cutover
// records the instant the FEP really moved, so a load taken while a cutover was still
// signing out belongs to the old date, as the FEP saw it then.
func (r Resolver) DateAt(t time.Time) string {
	i, _ := slices.BinarySearchFunc(r.days, t, func(d Day, t time.Time) int {
		if d.OpenedAt.After(t) {
			return 1
		}
		return -1
	})
	if i == 0 {
		return r.cal.DateAt(t)
	}
	return r.days[i-1].Date
}
