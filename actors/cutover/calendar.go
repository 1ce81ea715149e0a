// Package cutover is the FEP's business day (seed 3.3, 5; DESIGN 6, 8): at the configured
// cutover time it signs the platform session out and in again (a new batch), advances the
// persisted business date, and once the business date T+2 opens it produces the
// reconciliation file of accounting date T and uploads it, retrying until it is there.
//
// The calendar and the history are plain values and functions; the actor only sequences
// them. Time is an input (Deps.Now and the Tick message), so tests never wait for 23:00.
// It must never decide what goes into the file (recon/fepstore does) nor block its mailbox
// on the network (the upload runs beside the actor and reports back).
package cutover

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // Asia/Shanghai must resolve on a machine without /usr/share/zoneinfo
)

// ErrConfig marks a bad [business_day] or [reconciliation] value; the message names the key.
var ErrConfig = errors.New("cutover: configuration")

// Defaults of [business_day].
const (
	DefaultCutover  = "23:00"
	DefaultTimeZone = "Asia/Shanghai"
	// DefaultDelay is the T+2 of the seed: the file of T is produced when T+2 opens.
	DefaultDelay = 2
)

// Section is the [business_day] table of the FEP configuration.
type Section struct {
	// Cutover is the wall-clock time HH:MM at which one business day ends and the next
	// begins. From 12:00 on it opens the *next* date (23:00 on the 27th opens the 28th);
	// before 12:00 it closes the previous one (02:00 on the 28th closes the 27th).
	Cutover  string `toml:"cutover"`
	TimeZone string `toml:"time_zone"` // IANA zone of Cutover and of file timestamps
}

// Calendar returns the section's calendar, with defaults for empty keys.
func (s Section) Calendar() (Calendar, error) {
	if s.Cutover == "" {
		s.Cutover = DefaultCutover
	}
	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	zone, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return Calendar{}, fmt.Errorf("%w: business_day.time_zone %q: %v", ErrConfig, s.TimeZone, err)
	}
	t, err := time.Parse("15:04", s.Cutover)
	if err != nil || len(s.Cutover) != 5 {
		return Calendar{}, fmt.Errorf("%w: business_day.cutover %q: want HH:MM (24-hour)", ErrConfig, s.Cutover)
	}
	return Calendar{At: time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, Zone: zone}, nil
}

// Calendar is the business-day rule: the cutover time of day in a zone.
type Calendar struct {
	At   time.Duration // since local midnight
	Zone *time.Location
}

// shift moves an instant so that its local calendar date is its business date.
func (c Calendar) shift() time.Duration {
	if c.At >= 12*time.Hour {
		return 24*time.Hour - c.At
	}
	return -c.At
}

// DateAt is the business date (YYYYMMDD) the rule gives instant t. The FEP's own business
// date (History) can lag it by the moments a cutover takes; the rule is what the FEP moves to.
func (c Calendar) DateAt(t time.Time) string {
	return t.In(c.Zone).Add(c.shift()).Format("20060102")
}

// Opening is the instant the business date opens by the rule (the cutover that starts it).
func (c Calendar) Opening(date string) (time.Time, error) {
	d, err := time.ParseInLocation("20060102", date, c.Zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("cutover: date %q: want YYYYMMDD", date)
	}
	return d.Add(-c.shift()), nil
}

// Next is the first cutover after t.
func (c Calendar) Next(t time.Time) time.Time {
	next, _ := c.Opening(AddDays(c.DateAt(t), 1))
	return next
}

// AddDays moves a YYYYMMDD date by n calendar days ("" for a malformed date).
func AddDays(date string, n int) string {
	d, err := time.Parse("20060102", date)
	if err != nil {
		return ""
	}
	return d.AddDate(0, 0, n).Format("20060102")
}
