package simbank

import (
	"fmt"

	"github.com/quancun/quancun/io/bank"
)

// Response codes the bank decides with (docs/sim-bank.md has the full table).
const (
	codeApproved      = "00"
	codeBadAmount     = "13"
	codeUnknownCard   = "14"
	codeNoOriginal    = "25"
	codeNoFunds       = "51"
	codeBadPIN        = "55"
	codeAmountDiffers = "64"
	codePINTries      = "75"
	codeDuplicate     = "94"
	codeSystem        = "96"
	codeNotSignedOn   = "97"
	codePINFormat     = "99"
	codeBadMAC        = "A0"
)

// debit decides a 0200. Order: keys and MAC; a repeat of a decided 0200 (same terminal and
// STAN within the match window) gets the first answer again; a 0200 whose reversal came
// first is declined; then the account: known, not blocked, PIN, amount, funds. The decision
// is journaled (fsynced) before the answer leaves.
func (s *Server) debit(c *conn, fr *bank.Frame, m *bank.Debit) []out {
	sess := s.sessionFor(c, m.Terminal.ID)
	now := s.now()
	bare := func(code string) []out { // answered, not journaled: nothing was decided
		r := m.Response(code)
		r.LocalTime, r.LocalDate, r.AcquirerID, r.RRN = now.Format("150405"), now.Format("0102"), s.cfg.AcquirerID, "000000000000"
		c.log.Info("bank: 0200", "msg", m, "code", code)
		return s.pack0210(c, sess, &r, false, m.PAN)
	}
	if sess == nil {
		return bare(codeNotSignedOn)
	}
	if err := fr.VerifyMAC(bank.Recompute(s.macer(sess))); err != nil {
		c.log.Warn("bank: 0200 MAC does not verify", "msg", m, "err", err)
		return bare(codeBadMAC)
	}

	terminal, stan := trimSpace(m.Terminal.ID), fmt.Sprintf("%06d", m.STAN)
	s.mu.Lock()
	if prev := s.led.bySlot[slot(terminal, stan)]; prev != nil && now.Sub(prev.Received) < s.cfg.MatchWindow {
		s.mu.Unlock()
		if prev.PAN != m.PAN || prev.Amount != m.Amount {
			c.log.Warn("bank: 0200 reuses a terminal+STAN with other data", "msg", m, "first", prev.Key)
			return bare(codeDuplicate)
		}
		c.log.Info("bank: 0200 repeated, first answer again", "msg", m, "key", prev.Key, "code", prev.Code)
		return s.answerDebit(c, sess, m, prev)
	}
	d := &Debit{Terminal: terminal, STAN: stan, PAN: m.PAN, Amount: m.Amount, Received: now,
		LocalDate: now.Format("0102"), LocalTime: now.Format("150405"), SettleDate: s.rule.date(now)}
	d.Key = bank.Key{Class: "0200", Terminal: terminal, STAN: stan, Date: d.LocalDate}.String()
	d.Code = s.decide(sess, m, d)
	seq := s.led.Seq + 1
	d.RRN = fmt.Sprintf("%012d", seq)
	if d.Approved() {
		d.AuthCode = fmt.Sprintf("%06d", seq%1000000)
	}
	err := s.j.append(s.led, &record{Type: "debit", At: now, Debit: d})
	s.mu.Unlock()
	if err != nil {
		c.log.Error("bank: journal", "err", err)
		return bare(codeSystem)
	}
	c.log.Info("bank: 0200", "msg", m, "code", d.Code, "rrn", d.RRN)
	return s.answerDebit(c, sess, m, d)
}

// decide runs the account checks and returns F39; it changes nothing but d.PINTries, since
// the money moves only when the journal append applies the record. The caller holds s.mu.
func (s *Server) decide(sess *session, m *bank.Debit, d *Debit) string {
	if rv := s.led.revSlot[slot(d.Terminal, d.STAN)]; rv != nil && d.Received.Sub(rv.Received) < s.cfg.MatchWindow {
		// The reversal overtook its request: the FEP has given up on this debit, so taking
		// the money now could never be undone.
		return codeDuplicate
	}
	acc := s.led.Accounts[m.PAN]
	if acc == nil {
		return codeUnknownCard
	}
	d.PINTries = acc.PINTries
	switch {
	case acc.Blocked:
		return acc.BlockCode
	case m.Amount <= 0:
		return codeBadAmount
	}
	if pin := s.pins[m.PAN]; pin != "" {
		if acc.PINTries >= s.cfg.MaxPINTries {
			return codePINTries
		}
		if len(m.PINBlock) == 0 {
			return codeBadPIN
		}
		ok, err := s.hsm.PINMatches(sess.pik, m.PAN, m.PINBlock, pin)
		if err != nil {
			return codePINFormat
		}
		if !ok {
			d.PINTries++
			if d.PINTries >= s.cfg.MaxPINTries {
				return codePINTries
			}
			return codeBadPIN
		}
		d.PINTries = 0
	}
	if acc.Balance < m.Amount {
		return codeNoFunds
	}
	return codeApproved
}

// answerDebit builds the 0210 of a decided debit and applies the answer faults.
func (s *Server) answerDebit(c *conn, sess *session, m *bank.Debit, d *Debit) []out {
	r := m.Response(d.Code)
	r.LocalTime, r.LocalDate, r.AcquirerID, r.RRN = d.LocalTime, d.LocalDate, s.cfg.AcquirerID, d.RRN
	if d.Approved() {
		r.AuthCode, r.SettleDate = d.AuthCode, d.SettleDate[4:]
	}
	return s.pack0210(c, sess, &r, true, m.PAN)
}

// pack0210 MACs a 0210 and decides its faults: latency always; drop, late and duplicate
// only for decided debits (faulty=true).
func (s *Server) pack0210(c *conn, sess *session, r *bank.DebitResponse, faulty bool, pan string) []out {
	p, err := s.dialect.PackMACed(r, s.macer(sess))
	if err != nil {
		c.log.Error("bank: pack 0210", "err", err)
		return nil
	}
	delay := s.latency()
	if !faulty {
		return []out{{payload: p, delay: delay}}
	}
	f := s.cfg.Faults
	s.mu.Lock()
	drop := s.noReply[pan] || s.chance(f.DropRate)
	late := !drop && s.chance(f.LateRate)
	dup := !drop && s.chance(f.DuplicateRate)
	s.mu.Unlock()
	switch {
	case drop:
		c.log.Info("bank: fault: 0210 not sent", "stan", r.STAN, "terminal", r.Terminal.ID)
		return nil
	case late:
		c.log.Info("bank: fault: 0210 late", "stan", r.STAN, "terminal", r.Terminal.ID, "after", f.LateDelay)
		delay = f.LateDelay
	}
	o := []out{{payload: p, delay: delay}}
	if dup {
		c.log.Info("bank: fault: 0210 sent twice", "stan", r.STAN, "terminal", r.Terminal.ID)
		o = append(o, out{payload: p, delay: delay})
	}
	return o
}

// reversal decides a 0400/0401 (0420/0421). The first reversal of a terminal+STAN is
// journaled with its outcome and every repeat gets the same answer: an approved debit is
// credited back once (00); a declined one needs nothing (00); a different amount is 64; an
// unknown original is 25 and is remembered, so the original arriving late is declined.
func (s *Server) reversal(c *conn, fr *bank.Frame, m *bank.Reversal) []out {
	sess := s.sessionFor(c, m.Terminal.ID)
	now := s.now()
	bare := func(code string) []out {
		r := m.Response(code)
		r.LocalTime, r.LocalDate, r.AcquirerID, r.RRN = now.Format("150405"), now.Format("0102"), s.cfg.AcquirerID, "000000000000"
		c.log.Info("bank: reversal", "msg", m, "code", code)
		return s.pack0410(c, sess, &r)
	}
	if sess == nil {
		return bare(codeNotSignedOn)
	}
	if err := fr.VerifyMAC(bank.Recompute(s.macer(sess))); err != nil {
		c.log.Warn("bank: reversal MAC does not verify", "msg", m, "err", err)
		return bare(codeBadMAC)
	}
	terminal, stan := trimSpace(m.Terminal.ID), fmt.Sprintf("%06d", m.STAN)
	sl := slot(terminal, stan)
	s.mu.Lock()
	if prev := s.led.revSlot[sl]; prev != nil && now.Sub(prev.Received) < s.cfg.MatchWindow {
		s.mu.Unlock()
		c.log.Info("bank: reversal repeated, first answer again", "msg", m, "code", prev.Code)
		return s.answerReversal(c, sess, m, prev)
	}
	v := &Reversal{Terminal: terminal, STAN: stan, PAN: m.PAN, Amount: m.Amount, MTI: fr.Fields.MTI,
		Reason: m.Reason, Received: now, LocalDate: now.Format("0102"), LocalTime: now.Format("150405"),
		SettleDate: s.rule.date(now)}
	v.Key = bank.Key{Class: "0400", Terminal: terminal, STAN: stan, Date: v.LocalDate}.String()
	v.RRN = fmt.Sprintf("%012d", s.led.Seq+1)
	orig := s.led.bySlot[sl]
	if orig != nil && now.Sub(orig.Received) >= s.cfg.MatchWindow {
		orig = nil
	}
	switch {
	case orig == nil:
		v.Code = codeNoOriginal
	case orig.Amount != m.Amount:
		v.Original, v.Code = orig.Key, codeAmountDiffers
	default:
		v.Original, v.Code = orig.Key, codeApproved
		v.Credited = orig.Approved() && !orig.Reversed
	}
	err := s.j.append(s.led, &record{Type: "reversal", At: now, Reversal: v})
	s.mu.Unlock()
	if err != nil {
		c.log.Error("bank: journal", "err", err)
		return bare(codeSystem)
	}
	c.log.Info("bank: reversal", "msg", m, "code", v.Code, "original", v.Original, "credited", v.Credited)
	return s.answerReversal(c, sess, m, v)
}

func (s *Server) answerReversal(c *conn, sess *session, m *bank.Reversal, v *Reversal) []out {
	r := m.Response(v.Code)
	r.LocalTime, r.LocalDate, r.AcquirerID, r.RRN = v.LocalTime, v.LocalDate, s.cfg.AcquirerID, v.RRN
	if v.Credited {
		r.SettleDate = v.SettleDate[4:]
	}
	o := s.pack0410(c, sess, &r)
	if len(o) == 0 {
		return nil
	}
	f := s.cfg.Faults
	s.mu.Lock()
	drop := s.chance(f.ReversalDropRate)
	dup := !drop && s.chance(f.DuplicateRate)
	s.mu.Unlock()
	if drop {
		c.log.Info("bank: fault: reversal answer not sent", "stan", r.STAN, "terminal", r.Terminal.ID)
		return nil
	}
	if dup {
		c.log.Info("bank: fault: reversal answer sent twice", "stan", r.STAN, "terminal", r.Terminal.ID)
		o = append(o, o[0])
	}
	return o
}

func (s *Server) pack0410(c *conn, sess *session, r *bank.ReversalResponse) []out {
	p, err := s.dialect.PackMACed(r, s.macer(sess))
	if err != nil {
		c.log.Error("bank: pack reversal answer", "err", err)
		return nil
	}
	return []out{{payload: p, delay: s.latency()}}
}
