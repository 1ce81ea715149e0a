package simplatform

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// JournalFile is the journal's name inside the data dir.
const JournalFile = "journal.jsonl"

// ErrJournal reports a journal that does not replay: a line that does not parse or an event
// that does not fit the state before it. The platform refuses to start on it rather than
// forget money.
var ErrJournal = errors.New("simplatform: bad journal")

// Event kinds of the journal (docs/sim-platform.md).
const (
	evSignIn  = "signin"
	evSignOut = "signout"
	evCheck   = "check"
	evBook    = "book"
	evConfirm = "confirm"
	evRewrite = "rewrite"
	evResolve = "resolve"
)

// record is one journal line. Binary values are upper-case hex, host times 14 digits, so a
// person can grep the file against the hex dumps of platform.md.
type record struct {
	Ev    string    `json:"ev"`
	At    time.Time `json:"at"`
	Batch uint32    `json:"batch,omitempty"`
	Ref   string    `json:"ref,omitempty"`

	// signin
	DKKCV string `json:"dk_kcv,omitempty"`

	// check
	Card     string    `json:"card,omitempty"`
	Amount   int64     `json:"amount,omitempty"`
	BankCode string    `json:"bank_code,omitempty"`
	Kiosk    *kioskRec `json:"kiosk,omitempty"`

	// check, rewrite: the INIT; book, rewrite: the MAC2 issued for it
	Init     *initRec `json:"init,omitempty"`
	MAC2     string   `json:"mac2,omitempty"`
	HostTime string   `json:"host_time,omitempty"`

	// book
	RRN    string `json:"rrn,omitempty"`
	Auth   string `json:"auth,omitempty"`
	Settle string `json:"settle,omitempty"`

	// confirm, resolve
	Write   string `json:"write,omitempty"`
	TAC     string `json:"tac,omitempty"`
	Outcome string `json:"outcome,omitempty"` // resolve: Y or N
	Method  string `json:"method,omitempty"`  // resolve: P, L or N
	Serial  *int   `json:"observed,omitempty"`
}

type kioskRec struct {
	Terminal string `json:"terminal"`
	Trace    string `json:"trace"`
	Date     string `json:"date"`
}

type initRec struct {
	Serial     uint16 `json:"serial"`
	Random     string `json:"random"`
	TermID     string `json:"term"`
	OldBalance int64  `json:"old_balance"`
	KeyIndex   uint8  `json:"key_index"`
	KeyVersion uint8  `json:"key_version"`
	AlgID      uint8  `json:"alg"`
	MAC1       string `json:"mac1"`
}

// Init is one INITIALIZE FOR LOAD the platform saw for a load, with the MAC2 it issued for
// it (empty before BOOK).
type Init struct {
	Serial     uint16 // online serial before the credit
	Random     [4]byte
	TermID     [6]byte
	OldBalance int64 // B0, fen
	KeyIndex   uint8
	KeyVersion uint8
	AlgID      uint8
	MAC1       [4]byte
	MAC2       [4]byte   // issued for this INIT; valid when Issued
	HostTime   [7]byte   // BCD YYYYMMDDhhmmss covered by MAC2
	Issued     bool      // a MAC2 was issued for this INIT
	IssuedAt   time.Time // when
}

// Write statuses of a Load. WriteNone: booked, no CONFIRM yet (or a new MAC2 went out since
// the last CONFIRM): for the protocol it is U.
const (
	WriteNone    byte = 0
	WriteOK      byte = 'S'
	WriteFailed  byte = 'F'
	WriteUnknown byte = 'U'
)

// Load is everything the platform knows about one reference number.
type Load struct {
	Ref        string
	Card       string // app serial, 16 upper-case hex digits
	Amount     int64  // fen
	BankCode   string
	Kiosk      [3]string // terminal, trace, date of the CARD CHECK
	CheckBatch uint32
	CheckedAt  time.Time

	Booked     bool
	BookBatch  uint32 // the FEP's batch when it booked; reconciliation goes by it
	BookedAt   time.Time
	BankRRN    string
	BankAuth   string
	SettleDate string

	// Inits are the INITs the platform verified for this load, oldest first: the CARD
	// CHECK's, then one per REWRITE. The last one is the "last INIT" of platform.md: CONFIRM
	// S and RESOLVE-U are judged against it.
	Inits []Init

	Write       byte    // WriteNone, WriteOK, WriteFailed or WriteUnknown
	TAC         [4]byte // verified TAC, when Write is WriteOK and HasTAC
	HasTAC      bool
	ConfirmedAt time.Time
	// NotApplied is set by a RESOLVE-U that found the last MAC2 was not applied: a REWRITE
	// may then come with any serial.
	NotApplied bool
}

// Last is the last INIT, the one the latest MAC2 was issued for.
func (l *Load) Last() *Init { return &l.Inits[len(l.Inits)-1] }

// Pending reports a booked load not known to be on its card.
func (l *Load) Pending() bool { return l.Booked && l.Write != WriteOK }

// Journal is the platform's state rebuilt from its journal: what the money check and the
// reconciliation read, and what the server starts from.
type Journal struct {
	loads   map[string]*Load
	order   []string             // references in issue order
	byKiosk map[[3]string]string // CARD CHECK idempotency: kiosk terminal, trace, date -> ref
	byCard  map[string][]string  // card (upper-case hex) -> its references in issue order
	batches []uint32
	lastSeq uint64 // last reference sequence issued
}

func newJournal() *Journal {
	return &Journal{loads: map[string]*Load{}, byKiosk: map[[3]string]string{}, byCard: map[string][]string{}}
}

// LoadJournal reads dir/journal.jsonl (no file: an empty journal). A last line without its
// newline is a write that was never acknowledged (the process died before fsync returned)
// and is ignored.
func LoadJournal(dir string) (*Journal, error) {
	f, err := os.Open(filepath.Join(dir, JournalFile))
	if errors.Is(err, os.ErrNotExist) {
		return newJournal(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("simplatform: open journal: %w", err)
	}
	defer f.Close()
	j, _, err := parseJournal(f)
	return j, err
}

// ParseJournal replays a journal from r.
func ParseJournal(r io.Reader) (*Journal, error) {
	j, _, err := parseJournal(r)
	return j, err
}

// parseJournal also returns the length of the complete lines, where the server truncates a
// torn tail before it appends.
func parseJournal(r io.Reader) (*Journal, int64, error) {
	j := newJournal()
	br := bufio.NewReader(r)
	var good int64
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return j, good, nil // a torn tail (no newline) is dropped
		}
		if err != nil {
			return nil, 0, fmt.Errorf("simplatform: read journal: %w", err)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var rec record
			dec := json.NewDecoder(bytes.NewReader(t))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&rec); err != nil {
				return nil, 0, fmt.Errorf("%w: line %d: %v", ErrJournal, n, err)
			}
			if err := j.apply(&rec); err != nil {
				return nil, 0, fmt.Errorf("%w: line %d: %v", ErrJournal, n, err)
			}
		}
		good += int64(len(line))
	}
}

// apply is the one place state changes, both live and on replay, so a restart rebuilds
// exactly what the answers were based on.
func (j *Journal) apply(r *record) error {
	switch r.Ev {
	case evSignIn:
		if r.Batch <= j.lastBatch() {
			return fmt.Errorf("batch %d not above %d", r.Batch, j.lastBatch())
		}
		j.batches = append(j.batches, r.Batch)
		return nil
	case evSignOut:
		return nil
	case evCheck:
		return j.applyCheck(r)
	}
	l, ok := j.loads[r.Ref]
	if !ok {
		return fmt.Errorf("%s for unknown reference %q", r.Ev, r.Ref)
	}
	switch r.Ev {
	case evBook:
		if l.Booked {
			return fmt.Errorf("reference %s booked twice", r.Ref)
		}
		if err := issue(l.Last(), r); err != nil {
			return err
		}
		l.Booked, l.BookBatch, l.BookedAt = true, r.Batch, r.At
		l.BankRRN, l.BankAuth, l.SettleDate = r.RRN, r.Auth, r.Settle
	case evRewrite:
		if !l.Booked || l.Write == WriteOK {
			return fmt.Errorf("rewrite of reference %s in the wrong state", r.Ref)
		}
		in, err := decodeInit(r.Init)
		if err != nil {
			return err
		}
		if err := issue(&in, r); err != nil {
			return err
		}
		l.Inits = append(l.Inits, in)
		l.Write, l.NotApplied = WriteNone, false
	case evConfirm, evResolve:
		if !l.Booked {
			return fmt.Errorf("%s of unbooked reference %s", r.Ev, r.Ref)
		}
		if r.Ev == evResolve && r.Outcome == "N" {
			l.NotApplied = true
			return nil
		}
		if r.Ev == evResolve && r.Outcome != "Y" {
			return fmt.Errorf("resolve outcome %q", r.Outcome)
		}
		w := r.Write
		if r.Ev == evResolve {
			w = "S"
		}
		if len(w) != 1 || !strings.Contains("SFU", w) {
			return fmt.Errorf("write status %q", w)
		}
		l.Write, l.ConfirmedAt = w[0], r.At
		if r.TAC != "" {
			if err := hex4(r.TAC, &l.TAC); err != nil {
				return err
			}
			l.HasTAC = true
		}
	default:
		return fmt.Errorf("unknown event %q", r.Ev)
	}
	return nil
}

func (j *Journal) applyCheck(r *record) error {
	if _, dup := j.loads[r.Ref]; dup {
		return fmt.Errorf("reference %s issued twice", r.Ref)
	}
	seq, err := refSeq(r.Ref)
	if err != nil {
		return err
	}
	if b, err := hex.DecodeString(r.Card); err != nil || len(b) != 8 {
		return fmt.Errorf("card %q", r.Card)
	}
	if r.Kiosk == nil || r.Amount <= 0 || r.Amount > 0xFFFFFFFF {
		return errors.New("check without kiosk or amount")
	}
	in, err := decodeInit(r.Init)
	if err != nil {
		return err
	}
	l := &Load{Ref: r.Ref, Card: strings.ToUpper(r.Card), Amount: r.Amount, BankCode: r.BankCode,
		Kiosk: [3]string{r.Kiosk.Terminal, r.Kiosk.Trace, r.Kiosk.Date}, CheckBatch: r.Batch,
		CheckedAt: r.At, Inits: []Init{in}}
	j.loads[r.Ref] = l
	j.order = append(j.order, r.Ref)
	j.byCard[l.Card] = append(j.byCard[l.Card], r.Ref)
	j.byKiosk[l.Kiosk] = r.Ref
	j.lastSeq = max(j.lastSeq, seq)
	return nil
}

// issue records the MAC2 of r on in.
func issue(in *Init, r *record) error {
	if err := hex4(r.MAC2, &in.MAC2); err != nil {
		return err
	}
	ht, err := parseHostTime(r.HostTime)
	if err != nil {
		return err
	}
	in.HostTime, in.Issued, in.IssuedAt = ht, true, r.At
	return nil
}

func decodeInit(r *initRec) (Init, error) {
	if r == nil {
		return Init{}, errors.New("missing init")
	}
	in := Init{Serial: r.Serial, OldBalance: r.OldBalance, KeyIndex: r.KeyIndex, KeyVersion: r.KeyVersion, AlgID: r.AlgID}
	if r.OldBalance < 0 || r.OldBalance > 0xFFFFFFFF {
		return Init{}, fmt.Errorf("old balance %d", r.OldBalance)
	}
	for _, f := range []struct {
		s   string
		dst []byte
	}{{r.Random, in.Random[:]}, {r.TermID, in.TermID[:]}, {r.MAC1, in.MAC1[:]}} {
		b, err := hex.DecodeString(f.s)
		if err != nil || len(b) != len(f.dst) {
			return Init{}, fmt.Errorf("init field %q", f.s)
		}
		copy(f.dst, b)
	}
	return in, nil
}

func encodeInit(in Init) *initRec {
	return &initRec{Serial: in.Serial, Random: hexU(in.Random[:]), TermID: hexU(in.TermID[:]),
		OldBalance: in.OldBalance, KeyIndex: in.KeyIndex, KeyVersion: in.KeyVersion, AlgID: in.AlgID, MAC1: hexU(in.MAC1[:])}
}

func hex4(s string, dst *[4]byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return fmt.Errorf("want 8 hex digits, got %q", s)
	}
	copy(dst[:], b)
	return nil
}

func hexU(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func parseHostTime(s string) ([7]byte, error) {
	var h [7]byte
	if len(s) != 14 || !isDigits(s) {
		return h, fmt.Errorf("host time %q", s)
	}
	if _, err := time.Parse("20060102150405", s); err != nil {
		return h, fmt.Errorf("host time %q: %v", s, err)
	}
	for i := range h {
		h[i] = (s[2*i]-'0')<<4 | (s[2*i+1] - '0')
	}
	return h, nil
}

func hostTimeString(h [7]byte) string { return hexU(h[:]) } // BCD digits read as hex

// refSeq is the sequence part of a reference: YYYYMMDD then 12 digits.
func refSeq(ref string) (uint64, error) {
	if len(ref) != 20 || !isDigits(ref) {
		return 0, fmt.Errorf("reference %q: want 20 digits", ref)
	}
	return strconv.ParseUint(ref[8:], 10, 64)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (j *Journal) lastBatch() uint32 {
	if len(j.batches) == 0 {
		return 0
	}
	return j.batches[len(j.batches)-1]
}

// Batches are the batch numbers issued, in order.
func (j *Journal) Batches() []uint32 { return append([]uint32(nil), j.batches...) }

// Load returns a copy of one reference's load.
func (j *Journal) Load(ref string) (Load, bool) {
	l, ok := j.loads[ref]
	if !ok {
		return Load{}, false
	}
	return l.clone(), true
}

// Loads returns copies of every load, in the order the references were issued.
func (j *Journal) Loads() []Load {
	out := make([]Load, 0, len(j.order))
	for _, r := range j.order {
		out = append(out, j.loads[r].clone())
	}
	return out
}

// Written is, per card (16 hex digits), the sum in fen of the loads known to be on it
// (write status S): with the card's opening balance it must give the card's balance, which
// is the money check's card rule (DESIGN 10).
func (j *Journal) Written() map[string]int64 {
	m := map[string]int64{}
	for _, l := range j.loads {
		if l.Booked && l.Write == WriteOK {
			m[l.Card] += l.Amount
		}
	}
	return m
}

// BookedTotal is the sum in fen of every booked load.
func (j *Journal) BookedTotal() int64 {
	var t int64
	for _, l := range j.loads {
		if l.Booked {
			t += l.Amount
		}
	}
	return t
}

// pendingFor lists a card's booked loads not known to be written, oldest booking first.
func (j *Journal) pendingFor(card string) []*Load {
	// The card's own references, not the whole journal: this runs under the platform's
	// lock twice per load (CARD CHECK, PENDING QUERY), so a scan of every load made the
	// platform slower with every load it took.
	var out []*Load
	for _, r := range j.byCard[strings.ToUpper(card)] {
		if l := j.loads[r]; l.Card == card && l.Pending() {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].BookedAt.Before(out[b].BookedAt) })
	return out
}

func (l *Load) clone() Load {
	c := *l
	c.Inits = append([]Init(nil), l.Inits...)
	return c
}
