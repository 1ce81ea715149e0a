package platformlink

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/quancun/quancun/io/platform"
	"github.com/quancun/quancun/messages"
)

// The mapping between the actors' messages and the wire. It only translates: which code
// means what for the money is the transaction core's business. Codes 01..11 are the
// platform's definitive refusals (Refused); A0/A1/A4 lead to a re-sign-in and one retry in
// the session; everything else (96, 30, A2, A3, unknown codes, MAC failures, timeouts,
// lost connections) leaves the outcome open (Err).

// cst is China time, the zone of every date and time on the link.
var cst = time.FixedZone("CST", 8*3600)

// normalize turns a pointer request into its value, so senders may use either.
func normalize(m any) any {
	switch p := m.(type) {
	case *messages.PlatformCheck:
		return *p
	case *messages.PlatformBook:
		return *p
	case *messages.PlatformConfirm:
		return *p
	case *messages.PlatformPendingQuery:
		return *p
	case *messages.PlatformRewrite:
		return *p
	case *messages.PlatformResolve:
		return *p
	}
	return m
}

// reqIDOf is the requester's ID of a (normalized) request.
func reqIDOf(req any) string {
	switch r := req.(type) {
	case messages.PlatformCheck:
		return r.ReqID
	case messages.PlatformBook:
		return r.ReqID
	case messages.PlatformConfirm:
		return r.ReqID
	case messages.PlatformPendingQuery:
		return r.ReqID
	case messages.PlatformRewrite:
		return r.ReqID
	case messages.PlatformResolve:
		return r.ReqID
	}
	return ""
}

// refOf is the reference number a request is about ("" for a card check or pending query).
func refOf(req any) string {
	switch r := req.(type) {
	case messages.PlatformBook:
		return r.Ref
	case messages.PlatformConfirm:
		return r.Ref
	case messages.PlatformRewrite:
		return r.Ref
	case messages.PlatformResolve:
		return r.Ref
	}
	return ""
}

func cardInit(c messages.CardInit, amount int64) (platform.CardInit, error) {
	if amount <= 0 || amount > 0xFFFFFFFF {
		return platform.CardInit{}, fmt.Errorf("amount %d fen out of range", amount)
	}
	out := platform.CardInit{AppSerial: c.AppSerial, KeyIndex: c.KeyIndex, OldBalance: c.OldBalance,
		Serial: c.Serial, KeyVersion: c.KeyVersion, AlgID: c.AlgID, Random: c.Random, MAC1: c.MAC1,
		Amount: uint32(amount), TermID: c.TermID}
	if c.CityCode != "" {
		b, err := hex.DecodeString(c.CityCode)
		if err != nil || len(b) != 2 {
			return platform.CardInit{}, fmt.Errorf("city code %q is not 4 hex digits", c.CityCode)
		}
		copy(out.City[:], b)
	}
	return out, nil
}

// wireOf builds the wire message of a request. now gives the dates the messages do not
// carry (the kiosk date of a card check, the year of a bank settlement date).
func wireOf(req any, now time.Time) (platform.Message, error) {
	today := now.In(cst).Format("20060102")
	switch r := req.(type) {
	case messages.PlatformCheck:
		card, err := cardInit(r.Card, r.Amount)
		if err != nil {
			return nil, err
		}
		return &platform.CardCheck{Card: card, BankCode: r.BankCode,
			Kiosk: platform.KioskRef{Terminal: r.Terminal, Trace: r.KioskTrace, Date: today}}, nil
	case messages.PlatformBook:
		if r.Amount <= 0 || r.Amount > 0xFFFFFFFF {
			return nil, fmt.Errorf("amount %d fen out of range", r.Amount)
		}
		return &platform.Book{Reference: r.Ref, Amount: uint32(r.Amount), BankRRN: r.RRN,
			BankAuth: r.AuthCode, SettleDate: settleDate(r.SettleDate, now)}, nil
	case messages.PlatformConfirm:
		return &platform.Confirm{Reference: r.Ref, Status: platform.WriteStatus(r.Status), TAC: r.TAC}, nil
	case messages.PlatformPendingQuery:
		return &platform.PendingQuery{AppSerial: r.AppSerial}, nil
	case messages.PlatformRewrite:
		card, err := cardInit(r.Card, r.Amount)
		if err != nil {
			return nil, err
		}
		return &platform.Rewrite{Reference: r.Ref, Card: card,
			Kiosk: platform.KioskRef{Terminal: r.Terminal, Trace: r.KioskTrace, Date: today}}, nil
	case messages.PlatformResolve:
		method := r.Method
		if method == 0 {
			method = platform.NoProof
			if r.HasMAC {
				method = platform.ByProve
			}
		}
		return &platform.Resolve{Reference: r.Ref, AppSerial: r.AppSerial, Observed: r.Serial,
			Method: method, MAC2: r.MAC2, TAC: r.TAC, Record: r.Record}, nil
	}
	return nil, fmt.Errorf("unknown request %T", req)
}

// settleDate completes the bank's MMDD (F15) with the year that puts it nearest to now;
// a full YYYYMMDD passes through. An empty date becomes today's: BOOK requires one, and
// the settlement date is the bank's record, not a money field of the load.
func settleDate(s string, now time.Time) string {
	now = now.In(cst)
	switch len(s) {
	case 8:
		return s
	case 0:
		return now.Format("20060102")
	case 4:
		best, bestGap := s, time.Duration(-1)
		for y := now.Year() - 1; y <= now.Year()+1; y++ {
			d, err := time.ParseInLocation("20060102", fmt.Sprintf("%04d%s", y, s), cst)
			if err != nil {
				continue
			}
			gap := d.Sub(now).Abs()
			if bestGap < 0 || gap < bestGap {
				best, bestGap = d.Format("20060102"), gap
			}
		}
		return best
	}
	return s // the codec refuses it; the requester gets Err
}

// definitive reports whether a result code is the platform's definitive refusal.
func definitive(c platform.Code) bool {
	info, ok := c.Info()
	return ok && c != platform.OK && !info.Unsigned && c != platform.SystemError
}

// staleKey reports the codes that mean "sign in again, then resend".
func staleKey(c platform.Code) bool {
	return c == platform.MACError || c == platform.StaleKey || c == platform.NotSignedIn
}

func codeText(c platform.Code) string {
	if info, ok := c.Info(); ok {
		return fmt.Sprintf("platform answered %s (%s)", c, info.Meaning)
	}
	return fmt.Sprintf("platform answered %s (unknown code, taken as 96)", c)
}

// failure is the Err answer of a request.
func failure(req any, why string) any {
	switch r := req.(type) {
	case messages.PlatformCheck:
		return messages.PlatformCheckResult{ReqID: r.ReqID, Err: why}
	case messages.PlatformBook:
		return messages.PlatformBookResult{ReqID: r.ReqID, Ref: r.Ref, Err: why}
	case messages.PlatformConfirm:
		return messages.PlatformConfirmResult{ReqID: r.ReqID, Ref: r.Ref, Err: why}
	case messages.PlatformPendingQuery:
		return messages.PlatformPendingResult{ReqID: r.ReqID, Err: why}
	case messages.PlatformRewrite:
		return messages.PlatformRewriteResult{ReqID: r.ReqID, Ref: r.Ref, Err: why}
	case messages.PlatformResolve:
		return messages.PlatformResolveResult{ReqID: r.ReqID, Ref: r.Ref, Err: why}
	}
	return nil
}

// answerOf is the answer of a request from a verified response. A response that does not
// fit its request (wrong type or reference) is an error: the caller answers Err.
func answerOf(req any, h platform.Header, m platform.Message) (any, error) {
	if h.Result != platform.OK {
		why := codeText(h.Result)
		if !definitive(h.Result) {
			return failure(req, why), nil
		}
		refused := string(h.Result)
		switch r := req.(type) {
		case messages.PlatformCheck:
			return messages.PlatformCheckResult{ReqID: r.ReqID, Batch: h.Batch, Refused: refused}, nil
		case messages.PlatformBook:
			return messages.PlatformBookResult{ReqID: r.ReqID, Ref: r.Ref, Refused: refused}, nil
		case messages.PlatformConfirm:
			return messages.PlatformConfirmResult{ReqID: r.ReqID, Ref: r.Ref, Refused: refused}, nil
		case messages.PlatformRewrite:
			return messages.PlatformRewriteResult{ReqID: r.ReqID, Ref: r.Ref, Refused: refused}, nil
		case messages.PlatformResolve:
			return messages.PlatformResolveResult{ReqID: r.ReqID, Ref: r.Ref, Refused: refused}, nil
		}
		return failure(req, why), nil // a pending query has no refusal
	}
	sameRef := func(got string) error {
		if want := refOf(req); got != want {
			return fmt.Errorf("answer for reference %s, asked about %s", got, want)
		}
		return nil
	}
	switch r := req.(type) {
	case messages.PlatformCheck:
		if a, ok := m.(*platform.CardCheckResponse); ok {
			return messages.PlatformCheckResult{ReqID: r.ReqID, Ref: a.Reference, Batch: h.Batch}, nil
		}
	case messages.PlatformBook:
		if a, ok := m.(*platform.BookResponse); ok {
			if err := sameRef(a.Reference); err != nil {
				return nil, err
			}
			return messages.PlatformBookResult{ReqID: r.ReqID, Ref: a.Reference, MAC2: a.Issued.MAC2,
				HostTime: a.Issued.HostTime.String()}, nil
		}
	case messages.PlatformConfirm:
		if a, ok := m.(*platform.ConfirmResponse); ok {
			if err := sameRef(a.Reference); err != nil {
				return nil, err
			}
			return messages.PlatformConfirmResult{ReqID: r.ReqID, Ref: a.Reference}, nil
		}
	case messages.PlatformPendingQuery:
		if a, ok := m.(*platform.PendingResponse); ok {
			if a.AppSerial != r.AppSerial {
				return nil, fmt.Errorf("answer for card %X, asked about %X", a.AppSerial, r.AppSerial)
			}
			out := messages.PlatformPendingResult{ReqID: r.ReqID}
			for _, p := range a.Loads {
				out.Loads = append(out.Loads, messages.PendingLoad{Ref: p.Reference, Amount: int64(p.Amount),
					Serial: p.Serial, OldBalance: p.OldBalance, TermID: p.TermID, HostTime: p.HostTime.String(),
					MAC2: p.MAC2, Write: byte(p.Status)})
			}
			return out, nil
		}
	case messages.PlatformRewrite:
		if a, ok := m.(*platform.RewriteResponse); ok {
			if err := sameRef(a.Reference); err != nil {
				return nil, err
			}
			return messages.PlatformRewriteResult{ReqID: r.ReqID, Ref: a.Reference, MAC2: a.Issued.MAC2,
				HostTime: a.Issued.HostTime.String()}, nil
		}
	case messages.PlatformResolve:
		if a, ok := m.(*platform.ResolveResponse); ok {
			if err := sameRef(a.Reference); err != nil {
				return nil, err
			}
			return messages.PlatformResolveResult{ReqID: r.ReqID, Ref: a.Reference,
				Applied: a.Outcome == platform.Applied}, nil
		}
	}
	return nil, fmt.Errorf("answer %s does not fit request %T", h.Type, req)
}
