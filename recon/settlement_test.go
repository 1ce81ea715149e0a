package recon

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func sline(stan string, typ byte, resp string, amt int64) SettlementLine {
	return SettlementLine{BankCode: "BANK000001", Terminal: "KIOSK001", STAN: stan, RRN: "000000" + stan,
		LocalTime: "20101201144035", PAN: "6222021234567890123", Amount: amt, Resp: resp, Type: typ, SettleDate: "20101202"}
}

const exampleSettlement = "3|7000\n" +
	"BANK000001|KIOSK001|000001|000000000001|20101201144035|6222021234567890123|5000|00|D|20101202\n" +
	"BANK000001|KIOSK001|000002|000000000002|20101201144035|6222021234567890123|1000|00|D|20101202\n" +
	"BANK000001|KIOSK001|000002|000000000002|20101201144035|6222021234567890123|1000|00|R|20101202\n"

func TestSettlementExample(t *testing.T) {
	in := []SettlementLine{sline("000002", 'R', "00", 1000), sline("000001", 'D', "00", 5000), sline("000002", 'D', "00", 1000)}
	var b bytes.Buffer
	if err := WriteSettlement(&b, in); err != nil {
		t.Fatal(err)
	}
	if b.String() != exampleSettlement {
		t.Fatalf("got\n%s", b.String())
	}
	got, err := ParseSettlement(&b)
	if err != nil {
		t.Fatal(err)
	}
	SortSettlement(in)
	for i := range in {
		if got[i] != in[i] {
			t.Fatalf("line %d: %+v != %+v", i, got[i], in[i])
		}
	}
	if got[1].Key() != got[2].Key() || got[0].Key() == got[1].Key() {
		t.Fatal("debit and its reversal must share a key; two debits must not")
	}
}

func TestSettlementErrors(t *testing.T) {
	row := "BANK000001|KIOSK001|000001|000000000001|20101201144035|6222021234567890123|5000|00|D|20101202"
	cases := []struct {
		name, in string
		want     error
		line     string
	}{
		{"empty", "", ErrSyntax, ""},
		{"total", "1|5\n" + row + "\n", ErrMismatch, "line 1"},
		{"count", "0|5000\n" + row + "\n", ErrMismatch, "line 1"},
		{"fields", "1|5000\n" + row + "|\n", ErrSyntax, "line 2"},
		{"stan", "1|5000\n" + strings.Replace(row, "|000001|", "|00001|", 1) + "\n", ErrInvalid, "line 2"},
		{"type", "1|5000\n" + strings.Replace(row, "|D|", "|X|", 1) + "\n", ErrInvalid, "line 2"},
		{"resp", "1|5000\n" + strings.Replace(row, "|00|", "|0|", 1) + "\n", ErrInvalid, "line 2"},
		{"terminal", "1|5000\n" + strings.Replace(row, "KIOSK001", "KIOSK01", 1) + "\n", ErrInvalid, "line 2"},
		{"dup", "2|10000\n" + row + "\n" + row + "\n", ErrDuplicate, "line 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSettlement(strings.NewReader(c.in))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.line) {
				t.Fatalf("err %v, want %v at %q", err, c.want, c.line)
			}
		})
	}
	if err := WriteSettlement(&bytes.Buffer{}, []SettlementLine{sline("000001", 'D', "00", 1), sline("000001", 'D', "05", 1)}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate debit: %v", err)
	}
}

func FuzzParseSettlement(f *testing.F) {
	f.Add([]byte(exampleSettlement))
	f.Add([]byte("0|0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseSettlement(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteSettlement(&b, lines); err != nil {
			t.Fatalf("parsed file does not write back: %v", err)
		}
		again, err := ParseSettlement(&b)
		if err != nil || len(again) != len(lines) {
			t.Fatalf("re-parse: %v", err)
		}
		SortSettlement(lines)
		for i := range lines {
			if again[i] != lines[i] {
				t.Fatalf("line %d changed", i)
			}
		}
	})
}
