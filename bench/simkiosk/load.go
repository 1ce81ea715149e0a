package simkiosk

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quancun/quancun/io/apdu"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/kiosk"
)

// ErrCardRefused reports a card that refused a command the load needs (INITIALIZE FOR LOAD
// over the card's ceiling, a locked application, ...): nothing was sent to the FEP for it.
var ErrCardRefused = errors.New("simkiosk: card refused")

// Puller is a card slot whose card can be taken away at an exact point and put back:
// card.InProcessReader. A PC/SC reader is not one: there a person pulls the card.
type Puller interface {
	Pull()
	PullAfter(n int)
	Insert()
	Present() bool
}

// LoadParams is one load as the card holder asks for it.
type LoadParams struct {
	Card     card.Reader // the card slot: card.NewInProcessReader(vcard) or a PC/SC reader
	Amount   int64       // fen
	BankCode string      // F58, 10 characters
	PAN      string      // bank card number
	PIN      string      // "" = no PIN entered
	PullAt   Step        // deliberate interruption; PullNone for a normal load
}

// RewriteResult is what the kiosk did about one pending load of the card (DESIGN section 5)
// before the new load.
type RewriteResult struct {
	Reference   string
	Amount      int64
	Listed      kiosk.WriteStatus    // F or U, as the PENDING RESPONSE listed it
	Evidence    kiosk.EvidenceMethod // P, L or N when a U RESOLUTION was sent, else 0
	ResolveCode kiosk.Code           // answer to U RESOLUTION ("" when none was sent)
	RewriteCode kiosk.Code           // answer to RE-WRITE REQUEST ("" when none was sent)
	Write       kiosk.WriteStatus    // status confirmed after the re-write's CREDIT, 0 when none
	ConfirmCode kiosk.Code
	// Applied: the load's money is on the card now, either found there by the U resolution
	// or written by this re-write.
	Applied bool
}

// Result is the outcome of Load as the kiosk saw it.
type Result struct {
	Card          string     // application serial, hex
	Code          kiosk.Code // LOAD RESPONSE F39 (or the refusing PENDING RESPONSE's); "" when no answer or nothing sent
	Ref           string     // F48, the platform's reference
	RRN, AuthCode string     // bank's F37/F38, for the receipt
	Credit        bool       // CREDIT FOR LOAD was sent
	Written       bool       // the card answered CREDIT with a TAC: the load is on the card
	Write         kiosk.WriteStatus
	ConfirmCode   kiosk.Code // CONFIRM RESPONSE F39; "" when no confirm was answered
	BalanceBefore int64      // fen, when the card was presented
	BalanceAfter  int64      // fen, the last balance the kiosk read (pending re-writes included)
	Rewrites      []RewriteResult
	Latency       time.Duration // from card presented to the last answer
	Note          string        // what happened, for people
}

// String is one line for logs and the CLI (no PAN, no PIN).
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "card=%s code=%s", r.Card, orDash(string(r.Code)))
	if r.Ref != "" {
		fmt.Fprintf(&b, " ref=%s", r.Ref)
	}
	if r.Write != 0 {
		fmt.Fprintf(&b, " write=%c confirm=%s", r.Write, orDash(string(r.ConfirmCode)))
	}
	fmt.Fprintf(&b, " balance=%d->%d", r.BalanceBefore, r.BalanceAfter)
	for _, rw := range r.Rewrites {
		fmt.Fprintf(&b, " rewrite[%s %c", rw.Reference, rw.Listed)
		if rw.Evidence != 0 {
			fmt.Fprintf(&b, " resolve=%c:%s", rw.Evidence, orDash(string(rw.ResolveCode)))
		}
		if rw.RewriteCode != "" {
			fmt.Fprintf(&b, " rewrite=%s", rw.RewriteCode)
		}
		if rw.Write != 0 {
			fmt.Fprintf(&b, " write=%c", rw.Write)
		}
		fmt.Fprintf(&b, " applied=%t]", rw.Applied)
	}
	fmt.Fprintf(&b, " latency=%s", r.Latency.Round(time.Millisecond))
	if r.Note != "" {
		fmt.Fprintf(&b, " (%s)", r.Note)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Load runs one load from the kiosk's side (DESIGN sections 4 and 5, kiosk.md 8): read the
// card, settle its pending loads (re-write F, resolve or re-write U), then INITIALIZE FOR
// LOAD, LOAD REQUEST with the PIN block, CREDIT FOR LOAD on approval and CONFIRM. A declined
// load is a Result with its code and a nil error; the error is for what kept the kiosk from
// finishing (link down, no answer, card gone during a re-write, card refusing a command).
// Loads of one kiosk run one after the other.
func (k *Kiosk) Load(ctx context.Context, p LoadParams) (res Result, err error) {
	k.loadMu.Lock()
	defer k.loadMu.Unlock()
	start := time.Now()
	defer func() { res.Latency = time.Since(start) }()

	if p.Card == nil {
		return res, fmt.Errorf("%w: no card reader", ErrConfig)
	}
	if p.Amount <= 0 || p.Amount > 0xFFFFFFFF {
		return res, fmt.Errorf("%w: amount %d fen", ErrConfig, p.Amount)
	}
	puller, canPull := p.Card.(Puller)
	if p.PullAt.needsPuller() && !canPull {
		return res, fmt.Errorf("%w: pull step %s needs a slot the kiosk can pull (in-process card)", ErrConfig, p.PullAt)
	}
	if canPull {
		puller.Insert() // the holder puts the card on the reader
	}
	if err := k.ensureReady(ctx); err != nil {
		return res, err
	}

	ep := card.NewEP(p.Card)
	id, bal, err := readCard(ctx, ep)
	if err != nil {
		return res, fmt.Errorf("simkiosk: read card: %w", err)
	}
	res.Card = strings.ToUpper(hex.EncodeToString(id.AppSerial[:]))
	res.BalanceBefore, res.BalanceAfter = int64(bal), int64(bal)
	log := k.log.With("card", res.Card)

	pending, code, err := k.pendingQuery(ctx, id)
	if err != nil {
		return res, err
	}
	if code != kiosk.Approved {
		res.Code, res.Note = code, "PENDING QUERY refused: "+describeCode(code)
		return res, nil
	}
	for _, pl := range pending {
		rr, err := k.settle(ctx, ep, p.Card, id, pl)
		res.Rewrites = append(res.Rewrites, rr)
		log.Info("kiosk settled a pending load", "ref", rr.Reference, "listed", string(rune(rr.Listed)),
			"evidence", string(rune(rr.Evidence)), "resolve", string(rr.ResolveCode), "rewrite", string(rr.RewriteCode),
			"applied", rr.Applied, "err", err)
		if err != nil {
			return res, fmt.Errorf("simkiosk: pending load %s: %w", pl.Reference, err)
		}
	}
	if len(pending) > 0 {
		if b, err := ep.GetBalance(ctx); err == nil {
			res.BalanceAfter = int64(b)
		}
	}

	// The new load.
	if p.PullAt == PullBeforeInit {
		puller.Pull()
	}
	init, err := ep.InitForLoad(ctx, k.cfg.LoadKeyIndex, uint32(p.Amount), k.no)
	if err != nil {
		if errors.Is(err, card.ErrCardRemoved) {
			res.Note = "card removed before INITIALIZE FOR LOAD: no load sent"
			return res, nil
		}
		res.Note = "card refused INITIALIZE FOR LOAD"
		return res, fmt.Errorf("%w: %w", ErrCardRefused, err)
	}
	req := &kiosk.Load{
		Amount:   p.Amount,
		Card:     id,
		Init:     initData(k.cfg.LoadKeyIndex, init),
		BankCode: p.BankCode,
		PAN:      p.PAN,
	}
	if p.PIN != "" {
		k.mu.Lock()
		pad := k.pad
		k.mu.Unlock()
		if req.PINBlock, err = pad.EncryptPIN(keyPIK, p.PIN, p.PAN); err != nil {
			return res, fmt.Errorf("simkiosk: PIN pad: %w", err)
		}
		req.EntryMode = "021"
	} else {
		req.EntryMode = "022"
	}
	r, err := k.call(ctx, k.to.Load, func(e kiosk.Envelope) kiosk.Request { req.Envelope = e; return req })
	if err != nil {
		// kiosk.md 9: never re-send, never CREDIT; the FEP treats it as U.
		res.Note = "no LOAD RESPONSE: result unknown; a debited amount is written at the card's next load"
		return res, fmt.Errorf("simkiosk: LOAD REQUEST: %w", err)
	}
	lr := r.(*kiosk.LoadResponse)
	res.Code, res.Ref, res.RRN, res.AuthCode = lr.Result, lr.Reference, lr.RRN, lr.AuthCode
	log = log.With("ref", lr.Reference)
	if lr.Result != kiosk.Approved {
		res.Note = describeCode(lr.Result)
		log.Info("kiosk load declined", "code", string(lr.Result), "pan", kiosk.MaskPAN(p.PAN), "amount", p.Amount)
		return res, nil
	}
	if lr.Credit == nil || lr.Amount != p.Amount {
		// Never CREDIT on an answer that is not for this INIT; the FEP's confirm timeout
		// makes it U and the next load re-writes it.
		res.Note = "approved LOAD RESPONSE without MAC2 or with another amount: not credited"
		return res, fmt.Errorf("simkiosk: LOAD RESPONSE for %s: amount %d, want %d", lr.Reference, lr.Amount, p.Amount)
	}
	if p.PullAt == CrashBeforeCredit {
		res.Note = "kiosk crashed after LOAD RESPONSE: no CREDIT, no CONFIRM"
		return res, nil
	}
	if p.PullAt == PullBeforeCredit {
		puller.Pull()
	}
	if p.PullAt == PullAfterCommit {
		puller.PullAfter(1) // CREDIT itself runs on the card, its answer is lost
	}
	w, sent := k.credit(ctx, ep, p.Card, init, uint32(p.Amount), *lr.Credit)
	res.Credit, res.Written, res.Write = sent, w.Status == kiosk.Written, w.Status
	if w.Status == kiosk.Written {
		res.BalanceAfter = int64(w.NewBalance)
	}
	if p.PullAt == CrashAfterCredit {
		res.Note = "kiosk crashed after CREDIT: no CONFIRM"
		return res, nil
	}
	res.ConfirmCode, err = k.confirm(ctx, lr.Reference, p.Amount, w)
	log.Info("kiosk load done", "code", string(lr.Result), "write", string(rune(w.Status)), "confirm", string(res.ConfirmCode),
		"pan", kiosk.MaskPAN(p.PAN), "amount", p.Amount, "balance", res.BalanceAfter)
	switch w.Status {
	case kiosk.Failed:
		res.Note = "not written: the load is re-written at the card's next load"
	case kiosk.Unknown:
		res.Note = "card gone during CREDIT: the load will be completed next time the card is used"
	}
	return res, err
}

// readCard selects the e-purse and reads its identity and balance.
func readCard(ctx context.Context, ep *card.EP) (kiosk.CardID, uint32, error) {
	if _, err := ep.SelectApp(ctx, card.AIDMOHURD()); err != nil {
		return kiosk.CardID{}, 0, err
	}
	info, err := ep.ReadEF15(ctx)
	if err != nil {
		return kiosk.CardID{}, 0, err
	}
	bal, err := ep.GetBalance(ctx)
	if err != nil {
		return kiosk.CardID{}, 0, err
	}
	return kiosk.CardID{AppSerial: info.AppSerial, City: info.CityCode, CardType: info.CardType}, bal, nil
}

func initData(keyIdx byte, r card.InitLoadResponse) kiosk.InitData {
	return kiosk.InitData{KeyIndex: keyIdx, OldBalance: r.OldBalance, Serial: r.Serial, KeyVersion: r.KeyVersion,
		AlgID: r.AlgID, Random: r.Random, MAC1: r.MAC1}
}

// credit runs CREDIT FOR LOAD and turns what happened into the write result of F47:
// S with the TAC, F when the card answered and applied nothing (or the kiosk knows it never
// sent the command), U when the answer never came. sent says whether CREDIT went out.
func (k *Kiosk) credit(ctx context.Context, ep *card.EP, slot card.Reader, init card.InitLoadResponse, amount uint32,
	c kiosk.Credit) (w kiosk.WriteResult, sent bool) {
	if p, ok := slot.(Puller); ok && !p.Present() {
		return kiosk.WriteResult{Status: kiosk.Failed}, false // the card left before CREDIT was sent
	}
	cctx, cancel := context.WithTimeout(ctx, k.to.Credit)
	tac, err := ep.CreditForLoad(cctx, c.HostTime, c.MAC2)
	cancel()
	if err != nil {
		var se *apdu.StatusError
		if errors.As(err, &se) {
			return kiosk.WriteResult{Status: kiosk.Failed, SW: se.SW}, true
		}
		return kiosk.WriteResult{Status: kiosk.Unknown}, true
	}
	w = kiosk.WriteResult{Status: kiosk.Written, SW: apdu.SW9000, TAC: tac, NewBalance: init.OldBalance + amount}
	if b, err := ep.GetBalance(ctx); err == nil {
		w.NewBalance = b
	}
	return w, true
}

// confirm sends LOAD CONFIRM and re-sends the same bytes on no answer (kiosk.md 9); a
// confirm that never got an answer is kept and sent after the next sign-in.
func (k *Kiosk) confirm(ctx context.Context, ref string, amount int64, w kiosk.WriteResult) (kiosk.Code, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	env := k.envelopeLocked()
	m := &kiosk.Confirm{Envelope: env, Amount: amount, Reference: ref, Write: w}
	b, err := m.Pack(psamMACer{ctx: ctx, k: k})
	if err != nil {
		return "", fmt.Errorf("simkiosk: CONFIRM: %w", err)
	}
	for try := 0; try < k.cfg.ConfirmTries && k.conn != nil && k.pad != nil; try++ {
		x, err := k.sendLocked(ctx, kiosk.KindConfirm, env, b, k.to.Confirm, k.readVerified)
		if err == nil {
			return replyOf(x.resp), nil
		}
		if !errors.Is(err, ErrNoResponse) || ctx.Err() != nil {
			break
		}
	}
	k.outbox = append(k.outbox, b)
	return "", fmt.Errorf("%w: CONFIRM of %s kept for after the next sign-in", ErrNoResponse, ref)
}

// pendingQuery asks for the card's pending loads. It may be sent again (kiosk.md 7, 9): once
// on no answer, once after a sign-in the FEP asked for.
func (k *Kiosk) pendingQuery(ctx context.Context, id kiosk.CardID) ([]kiosk.Pending, kiosk.Code, error) {
	var lastErr error
	for try := 0; try < 2; try++ {
		r, err := k.call(ctx, k.to.Pending, func(e kiosk.Envelope) kiosk.Request {
			return &kiosk.PendingQuery{Envelope: e, Card: id}
		})
		if err != nil {
			lastErr = err
			if errors.Is(err, ErrNoResponse) {
				continue
			}
			return nil, "", fmt.Errorf("simkiosk: PENDING QUERY: %w", err)
		}
		pr := r.(*kiosk.PendingResponse)
		if (pr.Result == kiosk.MACError || pr.Result == kiosk.SignInAgain) && try == 0 {
			if err := k.ensureReady(ctx); err != nil {
				return nil, "", err
			}
			continue
		}
		return pr.Loads, pr.Result, nil
	}
	return nil, "", fmt.Errorf("simkiosk: PENDING QUERY: %w", lastErr)
}

// settle brings one pending load to an end (kiosk.md 8.4, 8.5): a fresh INIT for its amount;
// a U whose serial moved is resolved with the card's evidence first; whatever is not on the
// card is re-written (RE-WRITE, CREDIT, CONFIRM). The error is for a card that left or a
// link that failed; a refusal by the FEP leaves the load pending and is only reported.
func (k *Kiosk) settle(ctx context.Context, ep *card.EP, slot card.Reader, id kiosk.CardID, pl kiosk.Pending) (RewriteResult, error) {
	rr := RewriteResult{Reference: pl.Reference, Amount: int64(pl.Amount), Listed: pl.Status}
	init, err := ep.InitForLoad(ctx, k.cfg.LoadKeyIndex, pl.Amount, k.no)
	if err != nil {
		return rr, fmt.Errorf("INITIALIZE FOR LOAD: %w", err)
	}
	// The serial moved since the listed MAC2: the card may hold that credit whatever the
	// listing says (an F can be stale: a re-write's MAC2 may have reached the card after
	// it), so the card's evidence decides before anything is written again (spec 4).
	if (pl.Status == kiosk.Unknown || pl.Status == kiosk.Failed) && init.Serial != pl.Serial {
		ev, err := gatherEvidence(ctx, ep, pl, init.Serial)
		if err != nil {
			return rr, err
		}
		rr.Evidence = ev.Method
		r, err := k.call(ctx, k.to.Resolve, func(e kiosk.Envelope) kiosk.Request {
			return &kiosk.Resolve{Envelope: e, Amount: int64(pl.Amount), Card: id, Reference: pl.Reference, Evidence: ev}
		})
		if err != nil {
			return rr, fmt.Errorf("U RESOLUTION: %w", err)
		}
		rr.ResolveCode = replyOf(r)
		switch rr.ResolveCode {
		case kiosk.Approved:
			rr.Applied = true
			return rr, nil
		case kiosk.NotApplied:
			// 805A and the log reads destroyed the load context: INIT again.
			if init, err = ep.InitForLoad(ctx, k.cfg.LoadKeyIndex, pl.Amount, k.no); err != nil {
				return rr, fmt.Errorf("INITIALIZE FOR LOAD: %w", err)
			}
		default:
			return rr, nil
		}
	}
	r, err := k.call(ctx, k.to.Rewrite, func(e kiosk.Envelope) kiosk.Request {
		return &kiosk.Rewrite{Envelope: e, Amount: int64(pl.Amount), Card: id, Reference: pl.Reference,
			Init: initData(k.cfg.LoadKeyIndex, init)}
	})
	if err != nil {
		return rr, fmt.Errorf("RE-WRITE: %w", err) // kiosk.md 9: no CREDIT; it stays pending
	}
	rw := r.(*kiosk.RewriteResponse)
	rr.RewriteCode = rw.Result
	if rw.Result != kiosk.Approved || rw.Credit == nil {
		return rr, nil
	}
	w, _ := k.credit(ctx, ep, slot, init, pl.Amount, *rw.Credit)
	rr.Write, rr.Applied = w.Status, w.Status == kiosk.Written
	rr.ConfirmCode, err = k.confirm(ctx, pl.Reference, int64(pl.Amount), w)
	if err != nil {
		return rr, err
	}
	if w.Status == kiosk.Unknown {
		return rr, fmt.Errorf("CREDIT of the re-write: %w", card.ErrCardRemoved)
	}
	return rr, nil
}

// gatherEvidence collects what the card says about serial S of a U load whose serial moved
// to s2 (kiosk.md 8.5): with S' == S+1 the 805A MAC2'||TAC, else (or when 805A gives no MAC)
// the 0018 record with serial S; N when neither is there.
func gatherEvidence(ctx context.Context, ep *card.EP, pl kiosk.Pending, s2 uint16) (kiosk.Evidence, error) {
	ev := kiosk.Evidence{Serial: s2, Method: kiosk.NoProof}
	if s2 == pl.Serial+1 {
		pr, err := ep.GetTransactionProve(ctx, card.TxnTypeEPLoad, s2)
		switch {
		case err == nil && pr.HasMAC:
			ev.Method, ev.MAC2, ev.TAC = kiosk.ByProve, pr.MAC, pr.TAC
			return ev, nil
		case errors.Is(err, card.ErrCardRemoved):
			return ev, fmt.Errorf("GET TRANSACTION PROVE: %w", err)
		}
	}
	recs, err := ep.ReadLog(ctx, 10)
	if errors.Is(err, card.ErrCardRemoved) {
		return ev, fmt.Errorf("READ RECORD: %w", err)
	}
	for _, r := range recs {
		if r.Type == card.TxnTypeEPLoad && r.Serial == pl.Serial {
			ev.Method = kiosk.ByLog
			copy(ev.Record[:], r.Bytes())
			break
		}
	}
	return ev, nil
}
