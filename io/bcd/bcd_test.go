package bcd

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/prefix"
)

func digits(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0' + byte(r.IntN(10))
	}
	return b
}

// pairs lists each of our encoders with the stock one it must equal byte for byte.
var pairs = []struct {
	name        string
	ours, stock encoding.Encoder
}{
	{"BCD", BCD, encoding.BCD},
	{"LBCD", LBCD, encoding.LBCD},
}

// TestSameAsStock is the property: for random digit strings of every length 0..40, our
// encoders produce the stock bytes, and decoding those bytes gives the same digits and read
// count through both.
func TestSameAsStock(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range pairs {
		for n := 0; n <= 40; n++ {
			for range 50 {
				src := digits(r, n)
				want, err := p.stock.Encode(append([]byte(nil), src...))
				if err != nil {
					t.Fatal(err)
				}
				got, err := p.ours.Encode(src)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s Encode(%s) = %X, %v; stock %X", p.name, src, got, err, want)
				}
				// Decode with trailing bytes after the value, as inside a message.
				in := append(append([]byte(nil), want...), 0x12, 0x34)
				sd, sr, err := p.stock.Decode(in, n)
				if err != nil {
					t.Fatal(err)
				}
				od, or, err := p.ours.Decode(in, n)
				if err != nil || !bytes.Equal(od, sd) || or != sr || !bytes.Equal(od, src) {
					t.Fatalf("%s Decode(%X, %d) = %q, %d, %v; stock %q, %d", p.name, in, n, od, or, err, sd, sr)
				}
			}
		}
	}
}

func TestKnownBytes(t *testing.T) {
	cases := []struct {
		enc  encoding.Encoder
		in   string
		want string
	}{
		{LBCD, "021", "0210"}, // F22 as CUPS 7.2 shows it
		{BCD, "021", "0021"},  // stock right alignment
		{LBCD, "6222021234567890123", "62220212345678901230"},
		{LBCD, "22000001000", "220000010000"}, // F60 of the V6 0200
		{Track, "6222021234567890123D2812220123456789", "6222021234567890123D2812220123456789"},
		{Track, "6222021234567890123=281222012345678", "6222021234567890123D2812220123456780"},
		{BCD, "", ""},
	}
	for _, c := range cases {
		got, err := c.enc.Encode([]byte(c.in))
		if err != nil || hex.EncodeToString(got) != stringsToLower(c.want) {
			t.Errorf("Encode(%q) = %X, %v; want %s", c.in, got, err, c.want)
		}
	}
	d, n, err := Track.Decode([]byte{0x12, 0xD3, 0x40}, 5)
	if err != nil || string(d) != "12D34" || n != 3 {
		t.Errorf("Track.Decode = %q, %d, %v", d, n, err)
	}
}

func stringsToLower(s string) string { return string(bytes.ToLower([]byte(s))) }

func TestRejects(t *testing.T) {
	for _, e := range []encoding.Encoder{BCD, LBCD, Track} {
		if _, err := e.Encode([]byte("12a4")); !errors.Is(err, ErrNotDigit) {
			t.Errorf("Encode non-digit: %v", err)
		}
		if _, _, err := e.Decode([]byte{0x12, 0xA4}, 4); !errors.Is(err, ErrNotDigit) {
			t.Errorf("Decode nibble A: %v", err)
		}
		if _, _, err := e.Decode([]byte{0x12}, 3); !errors.Is(err, ErrShort) {
			t.Errorf("Decode short: %v", err)
		}
		if _, _, err := e.Decode([]byte{0x12}, -1); !errors.Is(err, ErrLength) {
			t.Errorf("Decode negative: %v", err)
		}
		// The stock decoder turns a trailing F of an even length into a NUL byte; we refuse.
		if _, _, err := e.Decode([]byte{0x12, 0x3F}, 4); !errors.Is(err, ErrNotDigit) {
			t.Errorf("Decode even with filler: %v", err)
		}
	}
	if _, err := BCD.Encode([]byte("12D4")); !errors.Is(err, ErrNotDigit) {
		t.Errorf("BCD accepts the track separator: %v", err)
	}
	// Left-aligned odd: pad nibble F accepted (stock does too), B refused.
	if d, _, err := LBCD.Decode([]byte{0x12, 0x3F}, 3); err != nil || string(d) != "123" {
		t.Errorf("LBCD F filler: %q %v", d, err)
	}
	if _, _, err := LBCD.Decode([]byte{0x12, 0x3B}, 3); !errors.Is(err, ErrNotDigit) {
		t.Errorf("LBCD B filler: %v", err)
	}
	// Right-aligned odd: pad nibble must be a digit (stock likewise).
	if _, _, err := BCD.Decode([]byte{0xF1, 0x23}, 3); !errors.Is(err, ErrNotDigit) {
		t.Errorf("BCD F pad: %v", err)
	}
}

func TestPrefixSameAsStock(t *testing.T) {
	for _, c := range []struct {
		name        string
		ours, stock prefix.Prefixer
		max         int
	}{
		{"LL", Prefix.LL, prefix.BCD.LL, 99},
		{"LLL", Prefix.LLL, prefix.BCD.LLL, 999},
		{"L", Prefix.L, prefix.BCD.L, 9},
		{"LLLL", Prefix.LLLL, prefix.BCD.LLLL, 9999},
	} {
		if c.ours.Inspect() != c.stock.Inspect() {
			t.Errorf("Inspect %s != %s", c.ours.Inspect(), c.stock.Inspect())
		}
		for n := 0; n <= c.max+1; n++ {
			want, werr := c.stock.EncodeLength(c.max+5, n)
			got, gerr := c.ours.EncodeLength(c.max+5, n)
			if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("%s EncodeLength(%d) = %X, %v; stock %X, %v", c.name, n, got, gerr, want, werr)
			}
			if werr != nil {
				continue
			}
			sl, sr, _ := c.stock.DecodeLength(c.max, want)
			ol, or, err := c.ours.DecodeLength(c.max, want)
			if err != nil || ol != sl || or != sr || ol != n {
				t.Fatalf("%s DecodeLength(%X) = %d, %d, %v; stock %d, %d", c.name, want, ol, or, err, sl, sr)
			}
		}
		if _, err := c.ours.EncodeLength(3, 4); !errors.Is(err, ErrLength) {
			t.Errorf("%s over max: %v", c.name, err)
		}
	}
	if l, r, err := Prefix.LLL.DecodeLength(999, []byte{0x00, 0x11}); l != 11 || r != 2 || err != nil {
		t.Errorf("LLL 0011 = %d %d %v", l, r, err)
	}
	if _, _, err := Prefix.LL.DecodeLength(50, []byte{0x51}); !errors.Is(err, ErrLength) {
		t.Errorf("LL over max: %v", err)
	}
	if _, _, err := Prefix.LL.DecodeLength(99, []byte{0x1A}); !errors.Is(err, ErrNotDigit) {
		t.Errorf("LL bad nibble: %v", err)
	}
	if _, _, err := Prefix.LLL.DecodeLength(999, []byte{0x01}); !errors.Is(err, ErrShort) {
		t.Errorf("LLL short: %v", err)
	}
	if _, err := Prefix.Fixed.EncodeLength(6, 5); !errors.Is(err, ErrLength) {
		t.Errorf("Fixed wrong length: %v", err)
	}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FuzzDecode checks that Decode never panics and agrees with the stock decoder wherever the
// stock one returns real digits.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x02, 0x10}, 3, true)
	f.Add([]byte{0x00, 0x21}, 3, false)
	f.Add([]byte{0x12, 0x3F}, 4, true)
	f.Add([]byte{}, 0, false)
	f.Fuzz(func(t *testing.T, data []byte, length int, left bool) {
		if length > 4*len(data)+4 {
			length %= 4*len(data) + 4
		}
		var ours, stock encoding.Encoder = BCD, encoding.BCD
		if left {
			ours, stock = LBCD, encoding.LBCD
		}
		od, or, oerr := ours.Decode(data, length)
		sd, sr, serr := stock.Decode(data, length)
		if oerr == nil {
			if len(od) != length || !isDigits(od) {
				t.Fatalf("Decode(%X, %d) = %q", data, length, od)
			}
			if serr != nil || !bytes.Equal(od, sd) || or != sr {
				t.Fatalf("Decode(%X, %d) = %q, %d; stock %q, %d, %v", data, length, od, or, sd, sr, serr)
			}
		} else if serr == nil && isDigits(sd) && len(sd) == length {
			t.Fatalf("Decode(%X, %d): %v; stock gave %q", data, length, oerr, sd)
		}
		// Track accepts a superset of LBCD: whatever LBCD decodes, Track decodes the same.
		if td, _, terr := Track.Decode(data, length); left && oerr == nil && (terr != nil || !bytes.Equal(td, od)) {
			t.Fatalf("Track.Decode(%X, %d) = %q, %v; LBCD %q", data, length, td, terr, od)
		}
	})
}

// FuzzDecodeLength checks that the prefixers never panic and agree with the stock ones.
func FuzzDecodeLength(f *testing.F) {
	f.Add([]byte{0x00, 0x11}, true)
	f.Add([]byte{0x19}, false)
	f.Fuzz(func(t *testing.T, data []byte, lll bool) {
		ours, stock, max := Prefix.LL, prefix.BCD.LL, 99
		if lll {
			ours, stock, max = Prefix.LLL, prefix.BCD.LLL, 999
		}
		ol, or, oerr := ours.DecodeLength(max, data)
		sl, sr, serr := stock.DecodeLength(max, data)
		if (oerr == nil) != (serr == nil) || ol != sl || or != sr {
			t.Fatalf("DecodeLength(%X) = %d, %d, %v; stock %d, %d, %v", data, ol, or, oerr, sl, sr, serr)
		}
	})
}

var sink []byte

func benchEncode(b *testing.B, e encoding.Encoder) {
	src := []byte("6222021234567890123")
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = e.Encode(src)
	}
}

func benchDecode(b *testing.B, e encoding.Encoder) {
	src, _ := e.Encode([]byte("6222021234567890123"))
	b.ReportAllocs()
	for b.Loop() {
		sink, _, _ = e.Decode(src, 19)
	}
}

func BenchmarkEncodeStock(b *testing.B) { benchEncode(b, encoding.BCD) }
func BenchmarkEncodeOurs(b *testing.B)  { benchEncode(b, BCD) }
func BenchmarkDecodeStock(b *testing.B) { benchDecode(b, encoding.BCD) }
func BenchmarkDecodeOurs(b *testing.B)  { benchDecode(b, BCD) }
