package loads

import (
	"github.com/quancun/quancun/actors/txn"
	"github.com/quancun/quancun/messages"
)

// The mapping from the answers of the other actors to core events. It only translates:
// which answer means what for the money is decided by txn.Step.

func checkEvent(m messages.PlatformCheckResult) txn.Msg {
	switch {
	case m.Err != "":
		return txn.PlatformError{Why: m.Err}
	case m.Refused != "":
		return txn.PlatformCheckRefused{Code: m.Refused}
	case m.Ref == "":
		return txn.PlatformError{Why: "card check answered without a reference"}
	default:
		return txn.PlatformCheckOK{Ref: m.Ref}
	}
}

// bankEvent maps a matched 0210. ok is false for NotSent: the bytes never left, so there is
// no answer to give the core; the load keeps waiting for its bank deadline, which reverses
// (the bank answers the 0400 with 25). Deciding "not debited" here instead would make the
// shell, not the core, rule on money on the bank link's word.
func bankEvent(m messages.BankDebitResult) (txn.Msg, bool) {
	if m.NotSent {
		return nil, false
	}
	return txn.BankResponse{Code: m.Code, RRN: m.RRN, Auth: m.AuthCode, SettleDate: m.SettleDate,
		MACOK: m.MACOK, Malformed: m.Malformed}, true
}

func bookEvent(m messages.PlatformBookResult) txn.Msg {
	switch {
	case m.Err != "":
		return txn.BookError{Why: m.Err}
	case m.Refused != "":
		return txn.BookRefused{Code: m.Refused}
	default:
		return txn.BookOK{MAC2: hex4(m.MAC2), HostTime: m.HostTime}
	}
}

func confirmEvent(m messages.PlatformConfirmResult) txn.Msg {
	switch {
	case m.Err != "":
		return txn.PlatformError{Why: m.Err}
	case m.Refused != "":
		return txn.PlatformConfirmRefused{Code: m.Refused}
	default:
		return txn.PlatformConfirmAck{}
	}
}

func kioskConfirmEvent(m messages.KioskConfirm) txn.KioskConfirm {
	return txn.KioskConfirm{Status: txn.WriteStatus(string(rune(m.Status))), TAC: hex4(m.TAC)}
}

// confirmCode answers a kiosk CONFIRM from the durable state: 00 when the state holds that
// write status, CodeConfirmLate when the load had moved on without it.
func confirmCode(s txn.State, status byte) string {
	if s.Write != txn.WriteNone && string(s.Write) == string(rune(status)) {
		return "00"
	}
	return CodeConfirmLate
}

// value accepts a message sent as a pointer as if it were sent as a value, so senders may
// use either.
func value(m any) any {
	switch p := m.(type) {
	case *messages.StartLoad:
		return *p
	case *messages.KioskConfirm:
		return *p
	case *messages.ReversalDone:
		return *p
	case *messages.ReversalQueued:
		return *p
	case *messages.PlatformCheckResult:
		return *p
	case *messages.PlatformBookResult:
		return *p
	case *messages.PlatformConfirmResult:
		return *p
	case *messages.BankDebitResult:
		return *p
	case *StatsRequest:
		return *p
	}
	return m
}
