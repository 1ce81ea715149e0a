package terminal

import (
	"time"

	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/io/bank"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
	"github.com/quancun/quancun/io/platform"
)

// envOf is the envelope of any kiosk request.
func envOf(r kiosk.Request) *kiosk.Envelope {
	if e := kiosk.EnvelopeOf(r); e != nil {
		return e
	}
	return &kiosk.Envelope{}
}

// replyEnv is the envelope of the response to a request with envelope e: NIIs swapped,
// F11/F41/F42 echoed, the FEP's clock, batch as given.
func replyEnv(e *kiosk.Envelope, now time.Time, batch uint32) kiosk.Envelope {
	return kiosk.Envelope{Header: e.Header.Reply(), Trace: e.Trace, Date: now.Format("20060102"),
		Time: now.Format("150405"), Terminal: e.Terminal, PSAM: e.PSAM, Batch: batch}
}

// answer is the response of the request's kind with only the code set (plus what the
// table makes mandatory: amount, reference, card).
func answer(r kiosk.Request, e kiosk.Envelope, code kiosk.Code) kiosk.Response {
	if code == kiosk.MACError || code == kiosk.SignInAgain {
		e.Header.Require = 3
	}
	rep := kiosk.Reply{Result: code}
	switch m := r.(type) {
	case *kiosk.SignIn:
		return &kiosk.SignInResponse{Envelope: e, Reply: rep}
	case *kiosk.SignOut:
		return &kiosk.SignOutResponse{Envelope: e, Reply: rep}
	case *kiosk.Heartbeat:
		return &kiosk.HeartbeatResponse{Envelope: e, Reply: rep}
	case *kiosk.Load:
		return &kiosk.LoadResponse{Envelope: e, Reply: rep, Amount: m.Amount}
	case *kiosk.Confirm:
		return &kiosk.ConfirmResponse{Envelope: e, Reply: rep, Reference: m.Reference}
	case *kiosk.PendingQuery:
		return &kiosk.PendingResponse{Envelope: e, Reply: rep, Card: m.Card}
	case *kiosk.Rewrite:
		return &kiosk.RewriteResponse{Envelope: e, Reply: rep, Amount: m.Amount, Reference: m.Reference}
	case *kiosk.Resolve:
		return &kiosk.ResolveResponse{Envelope: e, Reply: rep, Reference: m.Reference}
	}
	return &kiosk.HeartbeatResponse{Envelope: e, Reply: rep}
}

// unsigned reports whether a response with code may (and, from this package, will) go
// without F64: the FEP may hold no key the kiosk can check.
func unsigned(code kiosk.Code) bool {
	info, ok := code.Info()
	return ok && info.Unsigned
}

// makSigner MACs responses under the kiosk's MAK (X9.19, 8 bytes).
type makSigner struct {
	hsm  Security
	name string
}

func (s makSigner) ResponseMAC(_ string, mab []byte) ([8]byte, error) {
	var out [8]byte
	m, err := s.hsm.MAC(s.name, hsm.MACX919, mab)
	copy(out[:], m)
	return out, err
}

// known reports whether c is a code of the kiosk table.
func known(c string) bool {
	_, ok := kiosk.Code(c).Info()
	return ok
}

// loadCode turns the gist of a load's answer (txn.KioskResult + the deciding party's code)
// into the kiosk's F39.
func loadCode(result, code string) kiosk.Code {
	switch txn.KioskResult(result) {
	case txn.KioskApproved:
		return kiosk.Approved
	case txn.KioskDeclined:
		return bankCode(code)
	case txn.KioskRefused:
		return platformCode(code)
	case txn.KioskPending:
		return kiosk.PlatformDown // debited, booking being resolved by the FEP
	case txn.KioskFailed:
		// The core and the loads shell name their own failure codes; translate those whose
		// meaning differs from the kiosk table's (txn: 91 = platform down; loads: 92 = no
		// bank route).
		switch code {
		case txn.CodePlatformDown:
			return kiosk.PlatformDown
		case loads.CodeNoRoute:
			return kiosk.BankUnavailable
		case "98", "A0":
			return kiosk.BankTimeout // the debit, if any, is being reversed
		case "96":
			return kiosk.SystemError
		}
		if known(code) {
			return kiosk.Code(code)
		}
		return kiosk.SystemError
	}
	return kiosk.SystemError
}

// bankCode maps a bank's F39 of a declined debit to the kiosk's: the codes the kiosk table
// shares with the bank's pass through; passing conditions at the bank are 91; anything
// else is a plain decline.
func bankCode(code string) kiosk.Code {
	switch kiosk.Code(code) {
	case kiosk.BankDeclined, kiosk.InvalidAmount, kiosk.InvalidBankCard, kiosk.InsufficientFunds,
		kiosk.CardExpired, kiosk.WrongPIN, kiosk.OverAmountLimit, kiosk.PINTriesExceeded:
		return kiosk.Code(code)
	}
	if a := bank.Lookup(code).Action; a == bank.Retry || a == bank.ReSignOn {
		return kiosk.BankUnavailable
	}
	return kiosk.BankDeclined
}

// platformCode maps a platform refusal to the kiosk's code with the platform's own table;
// a code that is already a kiosk code (the platform session may have mapped it) passes.
func platformCode(code string) kiosk.Code {
	if info, ok := platform.Code(code).Info(); ok {
		return kiosk.Code(info.Kiosk)
	}
	if known(code) {
		return kiosk.Code(code)
	}
	return kiosk.PlatformDown
}
