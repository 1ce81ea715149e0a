package apdu

import (
	"errors"
	"fmt"
)

// Status words of the load scheme (spec section 5). Meanings marked COS-specific in the spec
// are the ones our virtual card uses; a real card's manual wins.
const (
	SW9000 uint16 = 0x9000 // success
	SW6282 uint16 = 0x6282 // end of file before Le bytes (data returned)
	SW63C0 uint16 = 0x63C0 // PIN wrong, no tries left; 63Cx = x tries left
	SW6581 uint16 = 0x6581 // memory failure (persistent write failed, nothing applied)
	SW6700 uint16 = 0x6700 // wrong length
	SW6901 uint16 = 0x6901 // command not allowed (invalid state)
	SW6981 uint16 = 0x6981 // command incompatible with file structure
	SW6982 uint16 = 0x6982 // security status not satisfied
	SW6983 uint16 = 0x6983 // key or PIN blocked
	SW6984 uint16 = 0x6984 // random number invalid
	SW6985 uint16 = 0x6985 // conditions of use not satisfied
	SW6988 uint16 = 0x6988 // secure messaging MAC incorrect
	SW6A80 uint16 = 0x6A80 // incorrect data
	SW6A81 uint16 = 0x6A81 // function not supported
	SW6A82 uint16 = 0x6A82 // file not found
	SW6A83 uint16 = 0x6A83 // record not found
	SW6A86 uint16 = 0x6A86 // incorrect P1/P2
	SW6A88 uint16 = 0x6A88 // referenced key not found
	SW6B00 uint16 = 0x6B00 // offset out of range
	SW6C00 uint16 = 0x6C00 // wrong Le; 6Cxx = correct length xx
	SW6D00 uint16 = 0x6D00 // INS not supported
	SW6E00 uint16 = 0x6E00 // CLA not supported
	SW6F00 uint16 = 0x6F00 // no precise diagnosis
	SW6100 uint16 = 0x6100 // 61xx = xx response bytes available (T=0 GET RESPONSE)
	SW9302 uint16 = 0x9302 // MAC invalid
	SW9303 uint16 = 0x9303 // application permanently locked
	SW9401 uint16 = 0x9401 // insufficient balance
	SW9402 uint16 = 0x9402 // counter at maximum
	SW9403 uint16 = 0x9403 // key index not supported
	SW9406 uint16 = 0x9406 // required MAC not available
)

// Meaning describes a status word in a few words, for errors and logs.
func Meaning(sw uint16) string {
	switch sw {
	case SW9000:
		return "success"
	case SW6282:
		return "end of file before Le bytes"
	case SW6581:
		return "memory failure"
	case SW6700:
		return "wrong length"
	case SW6901:
		return "command not allowed"
	case SW6981:
		return "command incompatible with file structure"
	case SW6982:
		return "security status not satisfied"
	case SW6983:
		return "key or PIN blocked"
	case SW6984:
		return "random number invalid"
	case SW6985:
		return "conditions of use not satisfied"
	case SW6988:
		return "secure messaging MAC incorrect"
	case SW6A80:
		return "incorrect data"
	case SW6A81:
		return "function not supported"
	case SW6A82:
		return "file not found"
	case SW6A83:
		return "record not found"
	case SW6A86:
		return "incorrect P1/P2"
	case SW6A88:
		return "referenced key not found"
	case SW6B00:
		return "offset out of range"
	case SW6D00:
		return "INS not supported"
	case SW6E00:
		return "CLA not supported"
	case SW6F00:
		return "no precise diagnosis"
	case SW9302:
		return "MAC invalid"
	case SW9303:
		return "application locked"
	case SW9401:
		return "insufficient balance"
	case SW9402:
		return "counter at maximum"
	case SW9403:
		return "key index not supported"
	case SW9406:
		return "required MAC not available"
	}
	switch sw & 0xFF00 {
	case 0x6100:
		return fmt.Sprintf("%d response bytes available", sw&0xFF)
	case 0x6C00:
		return fmt.Sprintf("wrong Le, correct length %d", sw&0xFF)
	}
	if sw&0xFFF0 == SW63C0 {
		return fmt.Sprintf("PIN wrong, %d tries left", sw&0x0F)
	}
	return "unknown status"
}

// StatusError is a card's refusal of a command: the command's name and the status word it
// answered. Callers branch on SW with errors.As, or on a sentinel the client wraps alongside.
type StatusError struct {
	SW  uint16
	Cmd string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %04X %s", e.Cmd, e.SW, Meaning(e.SW))
}

// Is makes errors.Is(err, &StatusError{SW: x}) match any command that failed with x.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.SW == e.SW && (t.Cmd == "" || t.Cmd == e.Cmd)
}

// SWOf returns the status word carried by err, if err wraps a *StatusError.
func SWOf(err error) (uint16, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.SW, true
	}
	return 0, false
}
