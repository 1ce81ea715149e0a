package recon

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// RunInfo describes one reconciliation run for its report: what was read.
type RunInfo struct {
	AcctDate string
	FEPFile  string   // name of the FEP's file the records came from
	FEP      Header   // its header
	Sources  []string // bank settlement files and the platform journal, as given
	BankLines,
	JournalEntries int
	// BookingNote says why outcome-1 entries were listed rather than booked (the FEP's
	// platform link has no offline booking); printed under that outcome.
	BookingNote string
}

// outcomeTitle is what each outcome means and what the run did about it.
var outcomeTitle = [...]string{"",
	"bank booked, platform not: the platform books the entry",
	"bank and platform booked, card not written: left for the automatic re-write at the holder's next load",
	"bank not booked, platform booked, card written: bank fault, manual handling",
	"bank not booked, platform booked, not written: bank fault, manual handling",
	"bank and platform booked, card written: successful",
	"neither side booked (reversed before booking): nothing due",
	"FEP record the bank has no line for: manual handling",
	"approved bank line no FEP record points to: manual handling",
	"platform booking with no FEP record: manual handling",
}

// WriteRunReport writes the text report of one run: what was read, one summary line per
// outcome (all nine, so every run has the same shape), then every item that needs an action
// with its action, and the successful ones last. Amounts in yuan (fen in the items too).
// The bytes depend only on the inputs.
func WriteRunReport(w io.Writer, info RunInfo, res Result) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "quancun reconciliation run\n")
	fmt.Fprintf(b, "accounting date   %s\n", info.AcctDate)
	fmt.Fprintf(b, "FEP file          %s (%d records, %s yuan)\n", info.FEPFile, info.FEP.Count, Yuan(info.FEP.Total))
	fmt.Fprintf(b, "bank lines        %d\n", info.BankLines)
	fmt.Fprintf(b, "platform entries  %d\n", info.JournalEntries)
	for _, s := range info.Sources {
		fmt.Fprintf(b, "source            %s\n", s)
	}
	fmt.Fprintf(b, "\n%-3s %-22s %7s %14s  %s\n", "#", "outcome", "count", "amount (yuan)", "action")
	total, items := 0, 0
	for _, g := range res.Groups {
		fmt.Fprintf(b, "%-3d %-22s %7d %14s  %s\n", int(g.Outcome), g.Outcome, g.Count, Yuan(g.Amount), g.Action)
		total += g.Count
	}
	fmt.Fprintf(b, "%-3s %-22s %7d\n", "", "every load", total)
	order := []Outcome{PlatformMissing, Rewrite, BankMissing, BankMissingNoCard, UnmatchedFEP, UnmatchedBank,
		UnmatchedPlatform, Cancelled, Success}
	for _, o := range order {
		g := res.Group(o)
		if g.Count == 0 {
			continue
		}
		fmt.Fprintf(b, "\n== %d %s (%d): %s\n", int(o), o, g.Count, outcomeTitle[o])
		if o == PlatformMissing && info.BookingNote != "" {
			fmt.Fprintf(b, "   %s\n", info.BookingNote)
		}
		for _, it := range g.Items {
			items++
			ref := it.Ref
			if ref == "" {
				ref = strings.Repeat("-", 20)
			}
			key := "-"
			if it.Key != (BankKey{}) {
				key = it.Key.String()
			}
			fmt.Fprintf(b, "   %s  %s  %10d fen  %-18s  %s\n", ref, it.BankCode, it.Amount, it.Action, key)
			for _, n := range it.Notes {
				fmt.Fprintf(b, "       note: %s\n", n)
			}
		}
	}
	fmt.Fprintf(b, "\n%d items classified, each into exactly one outcome.\n", total)
	return b.Flush()
}
