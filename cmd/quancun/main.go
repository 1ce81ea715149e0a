// Command quancun is the load (圈存) front-end processor and its tools: the switch itself,
// the simulated peers (bank, platform, kiosk, virtual cards), the demo, the bench harness and
// the reconciliation tools. Each subcommand lives in its own file and registers itself in
// commands below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. Path is the words that select it ("sim card").
type command struct {
	Path  string
	Short string
	Run   func(ctx context.Context, env *Env, args []string) error
}

// Env is what a subcommand may touch of the process: kept explicit so commands are testable.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
}

// errUsage marks a command-line mistake: the command printed its help already.
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		{Path: "serve", Short: "run the front-end processor (FEP) from a config file", Run: runServe},
		{Path: "demo", Short: "run a scripted day with every peer on loopback; ends with the money check", Run: runDemo},
		{Path: "bench", Short: "load-test the FEP (--faults: the SIGKILL and link-fault campaign)", Run: runBench},
		{Path: "version", Short: "print the version", Run: runVersion},
		{Path: "sim card", Short: "serve a virtual PBOC e-purse card to pcscd through vpcd", Run: runSimCard},
		{Path: "sim psam", Short: "serve a virtual PSAM to pcscd through vpcd", Run: runSimPSAM},
		{Path: "sim platform", Short: "run the one-card platform peer (FEP link, journal, FTP)", Run: runSimPlatform},
		{Path: "sim kiosk", Short: "run a simulated load kiosk against an FEP (script or random loads)", Run: runSimKiosk},
		{Path: "sim bank", Short: "run a simulated bank host with its own ledger", Run: runSimBank},
		{Path: "recon file", Short: "write (and --upload) the reconciliation file of an accounting date", Run: runReconFile},
		{Path: "recon run", Short: "classify a day's loads against bank and platform; write the run report", Run: runReconRun},
		{Path: "report clearing", Short: "the clearing report of an accounting date (text, csv, html)", Run: runReportClearing},
	}
}

const version = "0.1.0-dev"

func runVersion(_ context.Context, env *Env, _ []string) error {
	fmt.Fprintln(env.Stdout, "quancun", version)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, &Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}

// run selects the longest command path that prefixes args and runs it; exit codes: 0 ok,
// 1 failure, 2 usage.
func run(ctx context.Context, env *Env, args []string) int {
	cmds := commands()
	var best *command
	bestLen := 0
	for i := range cmds {
		p := strings.Fields(cmds[i].Path)
		if len(p) <= len(args) && len(p) > bestLen && equalWords(p, args[:len(p)]) {
			best, bestLen = &cmds[i], len(p)
		}
	}
	if best == nil {
		if len(args) > 0 && args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(env.Stderr, "quancun: unknown command %q\n\n", strings.Join(args, " "))
			usage(env.Stderr, cmds, args)
			return 2
		}
		usage(env.Stdout, cmds, nil)
		return 0
	}
	if err := best.Run(ctx, env, args[bestLen:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(env.Stderr, "quancun %s: %v\n", best.Path, err)
		return 1
	}
	return 0
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func usage(w io.Writer, cmds []command, _ []string) {
	fmt.Fprint(w, `quancun — the load (圈存) front-end processor: kiosks top up city-card e-purses by
debiting bank cards, through this switch, the bank hosts and the one-card platform.

Usage: quancun <command> [flags]    (quancun <command> --help for its flags)

Commands:
`)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Path < cmds[j].Path })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-16s %s\n", c.Path, c.Short)
	}
}

// newFlags returns a FlagSet whose usage names the command and says what it does.
func newFlags(env *Env, path, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("quancun "+path, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: quancun %s [flags]\n\n%s\n\nFlags:\n", path, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and maps a parse error to errUsage (the FlagSet already printed why).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return nil
}
