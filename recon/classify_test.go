package recon

import (
	"fmt"
	"testing"
)

// day builds one accounting day with every outcome: each case is one load (FEP record, its
// bank lines, its journal entry) plus the unmatched lines of each side.
type dayCase struct {
	name     string
	txn      byte   // FEP txn status
	write    byte   // FEP write status
	debit    string // bank debit response, "" = no debit line
	reversal string // bank reversal response, "" = no reversal line
	booked   bool   // platform booked
	pwrite   byte   // platform write status
	noKey    bool   // FEP recorded no bank key
	want     Outcome
}

var dayCases = []dayCase{
	{name: "bank booked, platform lost the book", txn: 'S', write: 'U', debit: "00", booked: false, want: PlatformMissing},
	{name: "write failed", txn: 'S', write: 'F', debit: "00", booked: true, pwrite: 'F', want: Rewrite},
	{name: "card pulled", txn: 'S', write: 'U', debit: "00", booked: true, pwrite: 'U', want: Rewrite},
	{name: "no confirm at platform", txn: 'S', write: 'U', debit: "00", booked: true, pwrite: WriteNone, want: Rewrite},
	{name: "bank reversed after book, card written", txn: 'S', write: 'S', debit: "00", reversal: "00", booked: true, pwrite: 'S', want: BankMissing},
	{name: "bank lost debit, card written", txn: 'S', write: 'S', debit: "96", booked: true, pwrite: 'S', want: BankMissing},
	{name: "bank reversed after book, not written", txn: 'S', write: 'F', debit: "00", reversal: "00", booked: true, pwrite: 'F', want: BankMissingNoCard},
	{name: "success", txn: 'S', write: 'S', debit: "00", booked: true, pwrite: 'S', want: Success},
	{name: "reversal refused keeps debit booked", txn: 'S', write: 'S', debit: "00", reversal: "12", booked: true, pwrite: 'S', want: Success},
	{name: "timed out and reversed", txn: 'C', write: 'F', debit: "00", reversal: "00", want: Cancelled},
	{name: "reversal of a debit the bank never got", txn: 'C', write: 'F', reversal: "25", want: Cancelled},
	{name: "bank never saw it", txn: 'S', write: 'S', booked: true, pwrite: 'S', want: UnmatchedFEP},
	{name: "no bank key", txn: 'S', write: 'S', booked: true, pwrite: 'S', noKey: true, want: UnmatchedFEP},
}

func buildDay(t *testing.T) ([]Record, map[string]BankKey, []SettlementLine, []JournalEntry) {
	var (
		fep      []Record
		keys     = map[string]BankKey{}
		bank     []SettlementLine
		platform []JournalEntry
	)
	for i, c := range dayCases {
		ref := fmt.Sprintf("201012010000000%05d", i+1)
		stan := fmt.Sprintf("%06d", i+1)
		amt := int64(100 * (i + 1))
		fep = append(fep, Record{Ref: ref, Batch: 1, PAN: "6222021234567890123", BankCode: "BANK000001",
			AcctDate: "20101201", Amount: amt, Timestamp: "20101201144035", Write: c.write, Txn: c.txn})
		l := sline(stan, 'D', c.debit, amt)
		if !c.noKey {
			keys[ref] = l.Key()
		}
		if c.debit != "" {
			bank = append(bank, l)
		}
		if c.reversal != "" {
			r := sline(stan, 'R', c.reversal, amt)
			bank = append(bank, r)
		}
		platform = append(platform, JournalEntry{Ref: ref, CardSerial: "0001", Amount: amt, Booked: c.booked,
			Write: c.pwrite, BankCode: "BANK000001", AcctDate: "20101201"})
	}
	// Unmatched bank: an approved debit nobody at the FEP knows; a declined one is ignored.
	bank = append(bank, sline("900001", 'D', "00", 7777), sline("900002", 'D', "51", 8888))
	// Unmatched platform: booked with no FEP record; an unbooked one (declined load) is ignored.
	platform = append(platform,
		JournalEntry{Ref: "20101201999999999991", Amount: 6666, Booked: true, Write: 'S', BankCode: "BANK000001"},
		JournalEntry{Ref: "20101201999999999992", Amount: 5555, Booked: false})
	if err := WriteSettlement(&discard{}, bank); err != nil {
		t.Fatalf("the test's bank lines must be a valid settlement file: %v", err)
	}
	return fep, keys, bank, platform
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestClassifyDay(t *testing.T) {
	fep, keys, bank, platform := buildDay(t)
	res := Classify(fep, keys, bank, platform)

	got := map[string]Outcome{}
	total := 0
	for _, g := range res.Groups {
		var sum int64
		for _, it := range g.Items {
			if it.Outcome != g.Outcome || it.Action != ActionFor(g.Outcome) {
				t.Errorf("item %+v in group %v", it, g.Outcome)
			}
			if _, dup := got[it.Ref+it.Key.String()]; dup {
				t.Errorf("item %s/%s in two groups", it.Ref, it.Key)
			}
			got[it.Ref+it.Key.String()] = g.Outcome
			sum += it.Amount
		}
		if g.Count != len(g.Items) || g.Amount != sum {
			t.Errorf("group %v totals %d/%d, items %d/%d", g.Outcome, g.Count, g.Amount, len(g.Items), sum)
		}
		total += g.Count
	}
	for i, c := range dayCases {
		ref := fep[i].Ref
		var o Outcome
		for _, g := range res.Groups {
			for _, it := range g.Items {
				if it.Ref == ref {
					o = it.Outcome
				}
			}
		}
		if o != c.want {
			t.Errorf("%s: outcome %v, want %v", c.name, o, c.want)
		}
	}
	if ub := res.Group(UnmatchedBank); ub.Count != 1 || ub.Amount != 7777 || ub.Items[0].Action != Manual {
		t.Errorf("unmatched bank: %+v", ub)
	}
	if up := res.Group(UnmatchedPlatform); up.Count != 1 || up.Amount != 6666 {
		t.Errorf("unmatched platform: %+v", up)
	}
	if want := len(dayCases) + 2; total != want {
		t.Errorf("%d items, want %d (every load exactly once)", total, want)
	}
	// Every one of the five outcomes and both unmatched kinds occur in the day.
	for o := PlatformMissing; o <= UnmatchedPlatform; o++ {
		if res.Group(o).Count == 0 {
			t.Errorf("outcome %v missing from the test day", o)
		}
	}
	if a := res.Group(PlatformMissing).Action; a != BookOnPlatform {
		t.Errorf("outcome 1 action %v", a)
	}
	if a := res.Group(Rewrite).Action; a != LeaveForRewrite {
		t.Errorf("outcome 2 action %v", a)
	}
	if res.Group(BankMissing).Action != Manual || res.Group(BankMissingNoCard).Action != Manual || res.Group(Success).Action != None {
		t.Error("outcome 3/4 must be manual, 5 none")
	}
	// The FEP said S for a load the bank reversed: the outcome follows the bank, with a note.
	bm := res.Group(BankMissing).Items[0]
	if len(bm.Notes) == 0 {
		t.Errorf("bank-missing item without a note on the FEP's disagreement: %+v", bm)
	}
}

// Classify must not depend on input order.
func TestClassifyOrderIndependent(t *testing.T) {
	fep, keys, bank, platform := buildDay(t)
	a := Classify(fep, keys, bank, platform)
	rf := append([]Record(nil), fep...)
	rb := append([]SettlementLine(nil), bank...)
	for i, j := 0, len(rf)-1; i < j; i, j = i+1, j-1 {
		rf[i], rf[j] = rf[j], rf[i]
	}
	for i, j := 0, len(rb)-1; i < j; i, j = i+1, j-1 {
		rb[i], rb[j] = rb[j], rb[i]
	}
	b := Classify(rf, keys, rb, platform)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("order changed the result:\n%v\n%v", a, b)
	}
}
