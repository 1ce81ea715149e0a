package bank

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/prefix"

	"github.com/quancun/quancun/io/bcd"
)

// fixedMAC is a MACer for fuzzing and benchmarks: constant, so the codec is what is measured.
var fixedMAC = MACFunc(func([]byte) ([]byte, error) { return []byte("00000000"), nil })

func seeds(f *testing.F) {
	for _, d := range testDialects() {
		for _, m := range allMessages(f) {
			f.Add(packAny(f, &d, m))
		}
	}
	f.Add(unhex(f, v6Debit)[2:])
	f.Add(unhex(f, v6Reversal)[2:])
	f.Add(unhex(f, v6SignOn)[2:])
}

// FuzzDecode feeds the generic decoder anything. It must not panic, and whatever it accepts
// must pack again and decode to the same message (so a typed value never holds what the wire
// cannot carry).
func FuzzDecode(f *testing.F) {
	seeds(f)
	d := DefaultDialect()
	f.Fuzz(func(t *testing.T, payload []byte) {
		fr, err := d.Decode(payload)
		if err != nil {
			return
		}
		var p []byte
		if fr.Msg.macRequired() {
			p, err = d.PackMACed(fr.Msg, fixedMAC)
		} else {
			p, err = d.Pack(fr.Msg)
		}
		if err != nil {
			t.Fatalf("decoded %T does not pack: %v", fr.Msg, err)
		}
		again, err := d.Decode(p)
		if err != nil || !reflect.DeepEqual(again.Msg, fr.Msg) {
			t.Fatalf("%T: re-decode %v\n got %+v\nwant %+v", fr.Msg, err, again, fr.Msg)
		}
		_ = KeyOf(fr.Fields)
		_ = fr.VerifyMAC(Recompute(fixedMAC))
	})
}

// FuzzUnpack unpacks anything into each message type in turn (the FEP unpacks a frame into
// the type it expects on that exchange): no panics, and an accepted value re-packs.
func FuzzUnpack(f *testing.F) {
	seeds(f)
	d := DefaultDialect()
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, proto := range allMessages(t) {
			m := reflect.New(reflect.TypeOf(proto).Elem()).Interface().(Message)
			if _, err := d.Unpack(payload, m); err != nil {
				continue
			}
			if _, err := d.PackMACed(m, fixedMAC); err != nil {
				t.Fatalf("unpacked %T does not pack: %v", m, err)
			}
		}
	})
}

// FuzzDecodeFields is the frame splitter alone, over the stock-codec spec too: both specs
// must accept the same payloads with the same values wherever the stock one yields digits.
func FuzzDecodeFields(f *testing.F) {
	seeds(f)
	ours := DefaultDialect()
	stock := DefaultDialect()
	stock.Spec = stockSpec
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, errA := ours.DecodeFields(payload)
		b, errB := stock.DecodeFields(payload)
		if errA == nil && errB != nil {
			t.Fatalf("ours accepts, stock refuses: %v", errB)
		}
		if errA == nil {
			for _, id := range a.Fields.IDs() {
				if !bytes.Equal(a.Fields.Bytes(id), b.Fields.Bytes(id)) {
					t.Fatalf("field %d: %q vs stock %q", id, a.Fields.Bytes(id), b.Fields.Bytes(id))
				}
			}
		}
	})
}

// stockSpec is the same field table with the library's own BCD codecs (track fields keep
// io/bcd's: the library has no BCD codec for the 'D' separator).
var stockSpec = NewSpec("CUPS POS stock BCD", encoding.LBCD, bcd.Track, prefix.BCD)

func benchDialects() map[string]Dialect {
	ours := DefaultDialect()
	stock := DefaultDialect()
	stock.Spec = stockSpec
	return map[string]Dialect{"ours": ours, "stock": stock}
}

func BenchmarkPackDebit(b *testing.B) {
	for _, name := range []string{"ours", "stock"} {
		d := benchDialects()[name]
		msg := v6DebitMsg(b)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.PackMACed(msg, fixedMAC); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnpackDebitResponse(b *testing.B) {
	for _, name := range []string{"ours", "stock"} {
		d := benchDialects()[name]
		var resp *DebitResponse
		for _, m := range allMessages(b) {
			if r, ok := m.(*DebitResponse); ok {
				resp = r
			}
		}
		p, err := d.PackMACed(resp, fixedMAC)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var m DebitResponse
			for b.Loop() {
				if _, err := d.Unpack(p, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
