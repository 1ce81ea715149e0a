package bank

import "fmt"

// Key matches a bank response to its request (DESIGN 7): message class, terminal id, STAN,
// and the local date when the message carries one (F13).
//
//   - Class is the request MTI with the response and repeat digits cleared: 0200 and 0210 are
//     class 0200; 0400, 0401 and 0410 are class 0400. A reversal carries the original debit's
//     STAN, so without the class a late 0210 would match the pending 0400.
//   - STAN is always the 6 digits of the wire ("000123"), from a typed message too: a key made
//     from "123" on one side and "000123" on the other never matches (REAL-PARTS).
//   - Terminal is F41 without its space padding.
//   - Date is F13 (MMDD). Our requests carry none, responses do: Slot, the key without the
//     date, is what a table of in-flight requests is indexed by; Matches then also requires
//     equal dates when both sides have one, which is what drops a stale duplicate from another
//     day with a wrapped STAN.
type Key struct {
	Class    string
	Terminal string
	STAN     string
	Date     string
}

// Slot is the key without the date: the index of an in-flight request.
func (k Key) Slot() Key { k.Date = ""; return k }

// Matches reports whether a response with key k answers a request with key req.
func (k Key) Matches(req Key) bool {
	return k.Slot() == req.Slot() && (k.Date == "" || req.Date == "" || k.Date == req.Date)
}

func (k Key) String() string {
	return fmt.Sprintf("%s/%s/%s/%s", k.Class, k.Terminal, k.STAN, k.Date)
}

// class clears the response bit of the function digit and the origin digit.
func class(mti string) string {
	if !isMTI(mti) {
		return mti
	}
	return mti[:2] + string(mti[2]&^1) + "0"
}

// KeyOf is the key of a decoded message.
func KeyOf(f *Fields) Key {
	return Key{Class: class(f.MTI), Terminal: trimID(f.Get(41)), STAN: f.Get(11), Date: f.Get(13)}
}

// KeyOfMessage is the key of a typed message as it will be on the wire in dialect d.
func KeyOfMessage(d *Dialect, m Message) Key {
	k := Key{Class: class(m.mti(d))}
	set := func(stan uint32, t Terminal, date string) {
		k.STAN, k.Terminal, k.Date = fmt.Sprintf("%06d", stan), trimID(t.ID), date
	}
	switch m := m.(type) {
	case *SignOn:
		set(m.STAN, m.Terminal, "")
	case *SignOnResponse:
		set(m.STAN, m.Terminal, m.LocalDate)
	case *Echo:
		set(m.STAN, m.Terminal, "")
	case *SignOff:
		set(m.STAN, m.Terminal, "")
	case *EchoResponse:
		set(m.STAN, m.Terminal, m.LocalDate)
	case *SignOffResponse:
		set(m.STAN, m.Terminal, m.LocalDate)
	case *Debit:
		set(m.STAN, m.Terminal, "")
	case *DebitResponse:
		set(m.STAN, m.Terminal, m.LocalDate)
	case *Reversal:
		set(m.STAN, m.Terminal, "")
	case *ReversalResponse:
		set(m.STAN, m.Terminal, m.LocalDate)
	}
	return k
}
