package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quancun/quancun/actors/fep"
	"github.com/quancun/quancun/actors/loads"
	"github.com/quancun/quancun/bench/simplatform"
	"github.com/quancun/quancun/io/ftpup"
	"github.com/quancun/quancun/messages"
	"github.com/quancun/quancun/persistence"
	"github.com/quancun/quancun/recon"
)

const reconFileSynopsis = `Write the reconciliation file (DESIGN 8) of accounting date T from the FEP's store:
one line per load whose debit reached the bank and ended approved (S) or reversed (C),
in timestamp order, header count|total. The same store gives the same bytes.

The command opens the store directory of [fep] data_dir itself, so the FEP must be stopped
(Badger locks the directory; a running FEP makes this fail, and then its own schedule
produces the file at the cutover that opens T+2). --upload sends it to [reconciliation]
ftp_addr as <name>.tmp, then renames, retrying until it is there or --upload-timeout.`

const reconRunSynopsis = `Classify every load of accounting date T into the seed's five outcomes (or unmatched)
from the FEP's store, the banks' settlement files and the platform journal, and write the
run's report: one line per outcome, then every item with its action. The FEP must be stopped
(see recon file). Outcome 1 (bank debited, platform did not book) is listed; with --book the
command signs in to the platform with the FEP's own keys and BOOKs each by its reference
(idempotent; the card is then re-written at its holder's next load). Outcome 2 is left to the
automatic re-write; 3, 4 and the unmatched are listed for manual handling.`

const reportClearingSynopsis = `Write the clearing report of accounting date T from the FEP's store: per bank, the
count and sum of the loads that must reach the operator's load account, the reversals and
the open items (not on their card yet). Text, CSV (fen) or a self-contained HTML page with
a chart. The FEP must be stopped (see recon file).`

// reconFlags are the flags every reconciliation command shares.
type reconFlags struct {
	date, config *string
}

func addReconFlags(fs *flag.FlagSet) reconFlags {
	return reconFlags{date: fs.String("date", "", "accounting date T, YYYYMMDD (required)"),
		config: fs.String("config", "", "the FEP's configuration file (required)")}
}

func (r reconFlags) load(out io.Writer) (fep.Config, error) {
	if *r.date == "" || *r.config == "" {
		fmt.Fprintln(out, "--date and --config are required")
		return fep.Config{}, errUsage
	}
	if _, err := time.Parse("20060102", *r.date); err != nil {
		fmt.Fprintf(out, "--date %q: want YYYYMMDD\n", *r.date)
		return fep.Config{}, errUsage
	}
	return fep.LoadConfig(*r.config)
}

// openFEPStore opens a stopped FEP's store. A missing directory is an error (Open would
// create an empty store and the file would silently be empty).
func openFEPStore(cfg fep.Config) (*persistence.Store, error) {
	dir := cfg.FEP.DataDir
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("FEP store %s: not a directory (check [fep] data_dir)", dir)
	}
	s, err := persistence.Open(dir, persistence.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, fmt.Errorf("open the FEP store (is the FEP still running? it must be stopped): %w", err)
	}
	return s, nil
}

// progress prints a line every 1000 records read: a long day should show it is moving.
func progress(w io.Writer, what string) func(int) {
	last := -1
	return func(n int) {
		if n != last && n > 0 && n%1000 == 0 {
			fmt.Fprintf(w, "  %s: %d loads read\n", what, n)
		}
		last = n
	}
}

func runReconFile(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "recon file", reconFileSynopsis)
	rf := addReconFlags(fs)
	out := fs.String("out", "", "output file (default: QC_<auth code>_<T>.txt in the current directory)")
	upload := fs.Bool("upload", false, "upload to [reconciliation] ftp_addr (tmp name, rename, retried)")
	timeout := fs.Duration("upload-timeout", 10*time.Minute, "give up retrying the upload after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := rf.load(fs.Output())
	if err != nil {
		if errors.Is(err, errUsage) {
			fs.Usage()
		}
		return err
	}
	s, err := openFEPStore(cfg)
	if err != nil {
		return err
	}
	name, data, recs, err := cfg.ReconFile(s, *rf.date, progress(env.Stderr, "recon file"))
	s.Close()
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = name
	}
	if err := writeFileAtomic(path, data); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "reconciliation file %s: %d records, %s\n", path, len(recs), firstLine(data))
	if !*upload {
		return nil
	}
	up, ok, err := cfg.Reconciliation.FTP()
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("--upload: no [reconciliation] ftp_addr in the configuration")
	}
	up.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
	up.Progress = func(a ftpup.Attempt) {
		if a.Err != nil {
			fmt.Fprintf(env.Stderr, "  upload attempt %d failed: %v (next in %s)\n", a.N, a.Err, a.Wait)
		}
	}
	uctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := ftpup.Upload(uctx, up, name, data); err != nil {
		return fmt.Errorf("upload %s to %s: %w", name, up.Addr, err)
	}
	fmt.Fprintf(env.Stdout, "uploaded %s to %s (%d bytes)\n", name, up.Addr, len(data))
	return nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return "header " + string(b[:i])
	}
	return ""
}

// writeFileAtomic writes through a temporary name and a rename: a reader (or a person
// copying the file on) never sees half of it.
func writeFileAtomic(path string, data []byte) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// listFlags joins repeated and comma-separated values.
func listFlags(l listFlag) []string {
	var out []string
	for _, v := range l {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// BookingNote is printed under outcome 1 in every run report.
const bookingNote = "NOT BOOKED BY THIS RUN (run again with --book to BOOK them through a platform " +
	"session of the FEP's own; a load still in 'booking' keeps asking by itself). Each card is then " +
	"re-written at its holder's next load (seed 5, outcome 1)."

func runReconRun(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "recon run", reconRunSynopsis)
	rf := addReconFlags(fs)
	var settle listFlag
	fs.Var(&settle, "bank-settlement", "a bank's settlement file for T (repeat, or comma-separate; required)")
	journal := fs.String("platform-journal", "", "the platform's data directory holding journal.jsonl (required)")
	book := fs.Bool("book", false, "book outcome-1 loads (bank debited, platform never booked) on the platform through a session of the FEP's own (the FEP must be stopped)")
	out := fs.String("out", "", "report file (default: RECON_<T>.txt in the current directory; - for stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := rf.load(fs.Output())
	if err == nil && (len(settle) == 0 || *journal == "") {
		fmt.Fprintln(fs.Output(), "--bank-settlement and --platform-journal are required")
		err = errUsage
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fs.Usage()
		}
		return err
	}
	date := *rf.date
	rep, err := reconRun(ctx, cfg, date, listFlags(settle), *journal, *book, env.Stderr)
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = "RECON_" + date + ".txt"
	}
	if path == "-" {
		_, err := env.Stdout.Write(rep)
		return err
	}
	if err := writeFileAtomic(path, rep); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "reconciliation run report %s\n", path)
	return nil
}

// reconRun reads the three sides, classifies and renders the report.
func reconRun(ctx context.Context, cfg fep.Config, date string, settleFiles []string, journalDir string, book bool, progressOut io.Writer) ([]byte, error) {
	s, err := openFEPStore(cfg)
	if err != nil {
		return nil, err
	}
	recs, keys, err := cfg.ReconRecords(s, date, progress(progressOut, "recon run"))
	s.Close()
	if err != nil {
		return nil, err
	}
	info := recon.RunInfo{AcctDate: date, FEPFile: recon.FileName(cfg.Platform.AuthCode, date), BookingNote: bookingNote}
	info.FEP.Count = len(recs)
	for _, r := range recs {
		info.FEP.Total += r.Amount
	}
	var lines []recon.SettlementLine
	for _, f := range settleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ls, err := recon.ParseSettlement(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		lines = append(lines, ls...)
		info.Sources = append(info.Sources, fmt.Sprintf("bank settlement %s (%d lines)", f, len(ls)))
	}
	j, err := simplatform.LoadJournal(journalDir)
	if err != nil {
		return nil, fmt.Errorf("platform journal %s: %w", journalDir, err)
	}
	ours := make(map[string]bool, len(recs))
	for _, r := range recs {
		ours[r.Ref] = true
	}
	// The platform's entries of T, and any entry of a FEP record of T that the platform
	// dated otherwise (so the pair is judged together, not as two unmatched halves).
	var entries []recon.JournalEntry
	for _, e := range j.ReconEntries() {
		if e.AcctDate == date || ours[e.Ref] {
			entries = append(entries, e)
		}
	}
	info.Sources = append(info.Sources, fmt.Sprintf("platform journal %s (%d entries of %s)", journalDir, len(entries), date))
	info.BankLines, info.JournalEntries = len(lines), len(entries)
	res := recon.Classify(recs, keys, lines, entries)
	n := 0
	for _, g := range res.Groups {
		n += g.Count
	}
	fmt.Fprintf(progressOut, "  recon run: %d loads classified\n", n)
	var booked []string
	if g := res.Group(recon.PlatformMissing); book && g.Count > 0 {
		info.BookingNote = "BOOKED BY THIS RUN through a platform session of the FEP's own; the results follow the report."
		if booked, err = bookMissing(ctx, cfg, g.Items, progressOut); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if err := recon.WriteRunReport(&b, info, res); err != nil {
		return nil, err
	}
	if len(booked) > 0 {
		fmt.Fprintf(&b, "\nBooked on the platform (outcome 1):\n")
		for _, l := range booked {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.Bytes(), nil
}

// bookMissing asks the platform to BOOK each outcome-1 load, by its reference, with the
// bank's answer the FEP recorded (RRN, authorisation code, settlement date). BOOK is
// idempotent at the platform, so running this twice books nothing twice. Each card is then
// re-written at its holder's next load.
func bookMissing(ctx context.Context, cfg fep.Config, items []recon.Item, progressOut io.Writer) ([]string, error) {
	s, err := openFEPStore(cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sess, err := fep.OpenPlatformSession(octx, cfg, s, nil)
	if err != nil {
		return nil, fmt.Errorf("book outcome-1 loads: %w", err)
	}
	defer sess.Close()
	var out []string
	for _, it := range items {
		id, err := s.Get(loads.RefKey(it.Ref))
		if err != nil {
			out = append(out, fmt.Sprintf("%s  not booked: no FEP record (%v)", it.Ref, err))
			continue
		}
		v, err := s.Get(loads.TxnKey(string(id)))
		if err != nil {
			out = append(out, fmt.Sprintf("%s  not booked: %v", it.Ref, err))
			continue
		}
		rec, err := loads.DecodeRecord(v)
		if err != nil {
			out = append(out, fmt.Sprintf("%s  not booked: %v", it.Ref, err))
			continue
		}
		st := rec.State
		ans, err := sess.Request(messages.PlatformBook{ReqID: "recon/" + st.Ref, Ref: st.Ref, Amount: st.Amount,
			BankCode: st.BankCode, RRN: st.RRN, AuthCode: st.AuthCode, SettleDate: st.SettleDate}, 15*time.Second)
		r, ok := ans.(messages.PlatformBookResult)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s  not booked: %v", st.Ref, err))
		case !ok:
			out = append(out, fmt.Sprintf("%s  not booked: unexpected answer %T", st.Ref, ans))
		case r.Refused != "":
			out = append(out, fmt.Sprintf("%s  refused by the platform: %s", st.Ref, r.Refused))
		case r.Err != "":
			out = append(out, fmt.Sprintf("%s  not booked: %s", st.Ref, r.Err))
		default:
			out = append(out, fmt.Sprintf("%s  booked, %d fen, MAC2 issued at %s: the card is re-written at its next load", st.Ref, st.Amount, r.HostTime))
		}
		fmt.Fprintf(progressOut, "  recon run: %s\n", out[len(out)-1])
	}
	return out, nil
}

func runReportClearing(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "report clearing", reportClearingSynopsis)
	rf := addReconFlags(fs)
	format := fs.String("format", "text", "text, csv or html")
	out := fs.String("out", "", "output file (default: stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := rf.load(fs.Output())
	if err == nil && *format != "text" && *format != "csv" && *format != "html" {
		fmt.Fprintf(fs.Output(), "--format %q: want text, csv or html\n", *format)
		err = errUsage
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fs.Usage()
		}
		return err
	}
	s, err := openFEPStore(cfg)
	if err != nil {
		return err
	}
	recs, _, err := cfg.ReconRecords(s, *rf.date, progress(env.Stderr, "report clearing"))
	s.Close()
	if err != nil {
		return err
	}
	lines := recon.Clearing(recs, *rf.date)
	var b bytes.Buffer
	switch *format {
	case "csv":
		err = recon.WriteClearingCSV(&b, lines)
	case "html":
		err = recon.WriteClearingHTML(&b, lines)
	default:
		err = recon.WriteClearingText(&b, lines)
	}
	if err != nil {
		return err
	}
	if *out == "" {
		_, err := env.Stdout.Write(b.Bytes())
		return err
	}
	if err := writeFileAtomic(*out, b.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "clearing report %s (%s)\n", *out, *format)
	return nil
}
