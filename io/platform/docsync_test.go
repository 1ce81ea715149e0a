package platform

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const docPath = "../../docs/protocols/platform.md"

var kindNames = map[kind]string{kDigits: "digits", kText: "text", kUTF8: "UTF-8", kBin: "binary",
	kUint: "uint BE", kTime: "BCD time", kStatus: "letter", kRecord: "record"}

// tables renders the tag dictionary, the message table and the code table as
// docs/protocols/platform.md carries them.
func tables() string {
	var b strings.Builder
	b.WriteString("| tag | name | type | length | content |\n|---|---|---|---|---|\n")
	for _, t := range tagTable {
		l := fmt.Sprint(t.Min)
		if t.Max != t.Min {
			l = fmt.Sprintf("%d..%d", t.Min, t.Max)
		}
		fmt.Fprintf(&b, "| %02X | %s | %s | %s | %s |\n", byte(t.Tag), t.Name, kindNames[t.Kind], l, t.Desc)
	}
	b.WriteString("\n| type | message | body tags (M mandatory, C conditional, O optional, R repeated) |\n|---|---|---|\n")
	for _, s := range schemaTable {
		var parts []string
		for _, r := range s.Rules {
			ts, _ := r.Tag.spec()
			parts = append(parts, fmt.Sprintf("%02X %s (%c)", byte(r.Tag), ts.Name, r.P))
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(&b, "| %02X | %s | %s |\n", byte(s.Type), s.Name, strings.Join(parts, ", "))
	}
	b.WriteString("\n| code | meaning | FEP action | kiosk code | may be unsigned |\n|---|---|---|---|---|\n")
	for _, c := range Codes() {
		u := ""
		if c.Unsigned {
			u = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Code, c.Meaning, c.FEPAction, c.Kiosk, u)
	}
	return b.String()
}

// TestDocInSync fails when docs/protocols/platform.md no longer shows the tables and frames
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
