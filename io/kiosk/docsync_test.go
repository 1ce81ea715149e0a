package kiosk

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

const docPath = "../../docs/protocols/kiosk.md"

// tables renders the message table, the private field layouts and the code table as the
// markdown docs/protocols/kiosk.md carries, so the page is checked against the code.
func tables() string {
	var b strings.Builder
	ids := []int{}
	for _, k := range kindTable {
		for _, id := range append(slices.Clone(k.Mandatory), k.Conditional...) {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	b.WriteString("| message | MTI | F3 | 60.3 |")
	for _, id := range ids {
		fmt.Fprintf(&b, " %d |", id)
	}
	b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(ids)) + "\n")
	for _, k := range kindTable {
		net := k.Net
		if net == "" {
			net = "000"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |", k.Name, k.MTI, k.Proc, net)
		for _, id := range ids {
			switch {
			case slices.Contains(k.Mandatory, id) && (id != fMAC || k.Request):
				b.WriteString(" M |")
			case slices.Contains(k.Mandatory, id), slices.Contains(k.Conditional, id):
				b.WriteString(" C |")
			default:
				b.WriteString("  |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	layoutTable(&b, "F45 card identity", cardIDLayout)
	layoutTable(&b, "F46 U-resolution evidence", evidenceLayout)
	layoutTable(&b, "F47 write result", writeLayout)
	layoutTable(&b, "F57 INITIALIZE FOR LOAD result", initLayout)
	layoutTable(&b, "F59 credit data", creditLayout)
	layoutTable(&b, "F61 entry (after the 1-byte count)", pendingLayout)
	layoutTable(&b, "F62 working keys", keysLayout)
	b.WriteString("| code | operator meaning | 中文 (kiosk screen) | English (kiosk screen) | may be unsigned |\n|---|---|---|---|---|\n")
	for _, c := range Codes() {
		u := ""
		if c.Unsigned {
			u = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Code, c.Operator, c.Chinese, c.English, u)
	}
	return b.String()
}

func layoutTable[T any](b *strings.Builder, title string, l layout[T]) {
	fmt.Fprintf(b, "%s, %d bytes:\n\n| offset | length | name | content |\n|---|---|---|---|\n", title, l.size())
	off := 0
	for _, p := range l {
		fmt.Fprintf(b, "| %d | %d | %s | %s |\n", off, p.Len, p.Name, p.Desc)
		off += p.Len
	}
	b.WriteString("\n")
}

// TestDocInSync fails when docs/protocols/kiosk.md no longer shows the tables and frames
// this package produces. -update rewrites testdata/tables.md, the block to paste.
func TestDocInSync(t *testing.T) {
	tb := tables()
	if *update {
		if err := os.WriteFile("testdata/tables.md", []byte(tb), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(tb, "\n") {
		if !strings.Contains(string(doc), line) {
			t.Fatalf("%s lacks table line %q", docPath, line)
		}
	}
	dumps, err := os.ReadFile("testdata/dumps.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(dumps), "\n") {
		if strings.HasPrefix(line, "frame ") && !strings.Contains(string(doc), line) {
			t.Fatalf("%s lacks dump %q", docPath, line)
		}
	}
}
