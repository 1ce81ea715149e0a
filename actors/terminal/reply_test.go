package terminal

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/quancun/quancun/io/kiosk"
)

func TestLoadCodeMapping(t *testing.T) {
	cases := []struct {
		result, code string
		want         kiosk.Code
	}{
		{"approved", "00", kiosk.Approved},
		{"declined", "55", kiosk.WrongPIN},
		{"declined", "51", kiosk.InsufficientFunds},
		{"declined", "41", kiosk.BankDeclined}, // lost card: a plain decline
		{"declined", "96", kiosk.BankUnavailable},
		{"declined", "A0", kiosk.BankUnavailable},
		{"refused", "01", kiosk.CardBlocked}, // platform's own code
		{"refused", "11", kiosk.PendingFirst},
		{"refused", "C2", kiosk.OverCeiling}, // already a kiosk code
		{"refused", "zz", kiosk.PlatformDown},
		{"failed", "91", kiosk.PlatformDown},    // txn: platform check failed
		{"failed", "92", kiosk.BankUnavailable}, // loads: no route to the bank
		{"failed", "98", kiosk.BankTimeout},
		{"failed", "A0", kiosk.BankTimeout},
		{"failed", "96", kiosk.SystemError},
		{"pending", "", kiosk.PlatformDown},
		{"whatever", "00", kiosk.SystemError},
	}
	for _, c := range cases {
		if got := loadCode(c.result, c.code); got != c.want {
			t.Errorf("%s/%s: got %s, want %s", c.result, c.code, got, c.want)
		}
	}
}

// The operations guide shows every kiosk code with the kiosk's screen texts.
func TestOperationsDocHasEveryCode(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kiosk.Codes() {
		row := fmt.Sprintf("| %s | %s | %s | %s |", c.Code, c.English, c.Chinese, c.Operator)
		if !strings.Contains(string(b), row) {
			t.Errorf("docs/operations.md lacks the row %s", row)
		}
	}
}
