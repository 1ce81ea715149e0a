package bank

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/moov-io/iso8583/field"
)

// TestDump prints every message of allMessages as docs/protocols/bank.md shows it: the whole
// frame, then each field's bytes. Run with -v to regenerate the examples; it also checks that
// the per-field bytes add up to the frame, so the dump cannot drift from the codec.
func TestDump(t *testing.T) {
	d := DefaultDialect()
	for _, m := range allMessages(t) {
		p := packAny(t, &d, m)
		fr := mustDecode(t, &d, p)
		var b strings.Builder
		fmt.Fprintf(&b, "%T %s\n", m, fr.Fields.MTI)
		full, _ := hex.DecodeString(withLen(t, p))
		fmt.Fprintf(&b, "frame %X\n", full)
		fmt.Fprintf(&b, "  LEN    %X\n  TPDU   %X\n  HEADER %X\n  MTI    %X\n  BITMAP %X\n",
			full[:2], p[:5], p[5:11], p[11:13], p[13:21])
		rebuilt := append([]byte(nil), p[:21]...)
		for _, id := range fr.Fields.IDs() {
			fl := field.NewInstanceOf(d.Spec.Fields[id])
			if err := fl.SetBytes(fr.Fields.Bytes(id)); err != nil {
				t.Fatal(err)
			}
			raw, err := fl.Pack()
			if err != nil {
				t.Fatal(err)
			}
			rebuilt = append(rebuilt, raw...)
			v := fr.Fields.Get(id)
			if _, ok := fl.(*field.Binary); ok {
				v = fmt.Sprintf("(%d bytes)", len(fr.Fields.Bytes(id)))
			}
			fmt.Fprintf(&b, "  F%-5d %X  %s\n", id, raw, v)
		}
		if string(rebuilt) != string(p) {
			t.Fatalf("%T: fields do not add up to the frame", m)
		}
		t.Log("\n" + b.String())
	}
}
