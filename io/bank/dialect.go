package bank

import (
	"fmt"

	"github.com/moov-io/iso8583"
)

// MACAlg names the MAC algorithm a bank uses over the MAB (card-and-host.md 7.3). The
// algorithm runs in the security module; the dialect only says which one to ask for.
type MACAlg int

// MAC algorithms.
const (
	// MACCUPS is the CUPS POS "ECB" MAC: XOR of the zero-padded blocks, hex-expanded, two
	// encryptions; F64 is the first 8 ASCII hex characters.
	MACCUPS MACAlg = iota + 1
	// MACX919 is ANSI X9.19 (ISO 9797-1 alg 3) with a double-length key, 8 binary bytes.
	MACX919
	// MACX99 is ANSI X9.9 single-DES CBC-MAC, 8 binary bytes.
	MACX99
)

func (a MACAlg) String() string {
	switch a {
	case MACCUPS:
		return "CUPS-ECB"
	case MACX919:
		return "X9.19"
	case MACX99:
		return "X9.9"
	}
	return fmt.Sprintf("MACAlg(%d)", int(a))
}

// KeyLayout is the shape of the 0810 F62 key block: each working key encrypted under the
// terminal master key (or ZMK), each followed by its check value.
// E(PIK) | KCV | E(MAK) | KCV [| E(TDK) | KCV].
type KeyLayout struct {
	KeyLen int  // 8 single-length, 16 double-length
	KCVLen int  // usually 4, some banks 3
	TDK    bool // a third block: the track data key
}

// Len is the F62 length in bytes.
func (l KeyLayout) Len() int {
	n := 2 * (l.KeyLen + l.KCVLen)
	if l.TDK {
		n += l.KeyLen + l.KCVLen
	}
	return n
}

// Dialect is one bank's flavour of the CUPS POS profile. Values, not code: adding a bank is
// adding a Dialect. The zero value is invalid; start from DefaultDialect.
type Dialect struct {
	Name   string
	Spec   *iso8583.MessageSpec // field table; CUPSSpec unless the bank differs
	TPDU   TPDU                 // of our requests; responses swap it
	Header Header

	// Network management, POS style: MTI and F60.3 code. Host style (F70) is not supported.
	SignOnMTI, SignOnCode   string // "0800", "003" (001 single-length, 004 with TDK)
	EchoMTI, EchoCode       string // "0820", "301"
	SignOffMTI, SignOffCode string // "0820", "002"

	// Reversal: the first send and every repeat (0400/0401, or 0420/0421 as advices).
	ReversalMTI, RepeatMTI string

	MAC  MACAlg    // over MTI..last field before F64, for 0200/0210/0400/0410
	Keys KeyLayout // of the 0810 F62
}

// DefaultDialect is the CUPS POS profile of card-and-host.md 7: TPDU 60 0003 0000, header
// 60 31 00 00 00 00, sign-on 0800/003 with double-length PIK and MAK (no TDK), echo and
// sign-off 0820, reversal 0400 repeated as 0401, CUPS ECB MAC.
func DefaultDialect() Dialect {
	return Dialect{
		Name:        "cups-pos",
		Spec:        CUPSSpec,
		TPDU:        NewTPDU(0x0003, 0x0000),
		Header:      Header{0x60, 0x31, 0x00, 0x00, 0x00, 0x00},
		SignOnMTI:   "0800",
		SignOnCode:  "003",
		EchoMTI:     "0820",
		EchoCode:    "301",
		SignOffMTI:  "0820",
		SignOffCode: "002",
		ReversalMTI: "0400",
		RepeatMTI:   "0401",
		MAC:         MACCUPS,
		Keys:        KeyLayout{KeyLen: 16, KCVLen: 4},
	}
}

// Validate reports a dialect the codec cannot use.
func (d *Dialect) Validate() error {
	bad := func(what string) error { return fmt.Errorf("%w %q: %s", ErrDialect, d.Name, what) }
	if d.Spec == nil {
		return bad("no spec")
	}
	for _, m := range []string{d.SignOnMTI, d.EchoMTI, d.SignOffMTI, d.ReversalMTI, d.RepeatMTI} {
		if !isMTI(m) || m[2]&1 != 0 {
			return bad("request MTI " + m)
		}
	}
	for _, c := range []string{d.SignOnCode, d.EchoCode, d.SignOffCode} {
		if len(c) != 3 || !digits(c) {
			return bad("network management code " + c)
		}
	}
	if d.SignOnMTI == d.EchoMTI && d.SignOnCode == d.EchoCode ||
		d.SignOnMTI == d.SignOffMTI && d.SignOnCode == d.SignOffCode ||
		d.EchoMTI == d.SignOffMTI && d.EchoCode == d.SignOffCode {
		return bad("two network messages with the same MTI and code")
	}
	if d.MAC < MACCUPS || d.MAC > MACX99 {
		return bad("MAC algorithm")
	}
	if (d.Keys.KeyLen != 8 && d.Keys.KeyLen != 16) || d.Keys.KCVLen < 0 || d.Keys.KCVLen > 8 {
		return bad("key layout")
	}
	return nil
}

func isMTI(m string) bool { return len(m) == 4 && digits(m) }

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// responseMTI is the answer to a request MTI: function digit +1, origin 0 (0401 -> 0410).
func responseMTI(m string) string {
	return m[:2] + string(m[2]|1) + "0"
}
