package persistence

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, parts := range [][]string{
		{}, {""}, {"txn", Uint(42)}, {"a\x00b", "\x00", "\x01\xff", ""},
		{"idx", "day", "20260127", Uint(7)},
	} {
		k := Key(parts...)
		got, err := SplitKey(k)
		if err != nil {
			t.Fatalf("SplitKey(Key(%q)): %v", parts, err)
		}
		if !slices.Equal(got, parts) {
			t.Fatalf("SplitKey(Key(%q)) = %q", parts, got)
		}
	}
}

func TestSplitKeyRejects(t *testing.T) {
	for _, k := range []string{"a", "a\x00", "a\x00\x02", "a\x00\x01b", "\x00\x00"} {
		if _, err := SplitKey([]byte(k)); !errors.Is(err, ErrBadKey) {
			t.Errorf("SplitKey(%q): err = %v, want ErrBadKey", k, err)
		}
	}
}

func TestKeyPrefixAndOrder(t *testing.T) {
	if !bytes.HasPrefix(Key("idx", "day", "20260127", "x"), Key("idx", "day", "20260127")) {
		t.Fatal("Key(a,b) is not a prefix of Key(a,b,c)")
	}
	if bytes.HasPrefix(Key("idx", "day", "20260127"), Key("idx", "day", "2026")) {
		t.Fatal("a partial part matched as a prefix")
	}
	if Uint(9) >= Uint(10) || Uint(0) != strings.Repeat("0", 20) || Uint(^uint64(0)) != "18446744073709551615" {
		t.Fatalf("Uint order/format wrong: %s %s", Uint(9), Uint(10))
	}
	sorted := [][]string{{"a"}, {"a", ""}, {"a", "b"}, {"a\x00"}, {"a\x00", "b"}, {"a\x01"}, {"b"}}
	for i := 1; i < len(sorted); i++ {
		if bytes.Compare(Key(sorted[i-1]...), Key(sorted[i]...)) >= 0 {
			t.Fatalf("Key(%q) does not sort before Key(%q)", sorted[i-1], sorted[i])
		}
	}
}

// FuzzSplitKey: arbitrary bytes never panic, and whatever decodes re-encodes to itself.
func FuzzSplitKey(f *testing.F) {
	f.Add([]byte("txn\x00\x0100000000000000000042\x00\x01"))
	f.Add([]byte("a\x00\xffb\x00\x01"))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, k []byte) {
		parts, err := SplitKey(k)
		if err != nil {
			return
		}
		if re := Key(parts...); !bytes.Equal(re, k) {
			t.Fatalf("SplitKey(%q) = %q re-encodes to %q", k, parts, re)
		}
	})
}

// FuzzKeyOrder: key byte order equals the order of the part lists.
func FuzzKeyOrder(f *testing.F) {
	f.Add("a", "b", "a\x00", "")
	f.Add("x", "\x01", "x", "\x00")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		x, y := []string{a, b}, []string{c, d}
		if got, want := bytes.Compare(Key(x...), Key(y...)), slices.Compare(x, y); got != want {
			t.Fatalf("compare Key(%q), Key(%q) = %d, parts compare %d", x, y, got, want)
		}
		if p, err := SplitKey(Key(x...)); err != nil || !slices.Equal(p, x) {
			t.Fatalf("round trip of %q: %q, %v", x, p, err)
		}
	})
}
