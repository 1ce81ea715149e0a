package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/quancun/quancun/bench/demo"
	"github.com/quancun/quancun/bench/proc"
)

// errMoneyCheck makes `quancun demo` exit non-zero when the books disagree.
var errMoneyCheck = errors.New("the money check failed")

func runDemo(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "demo", `Run a scripted business day on loopback: the one-card platform, two bank hosts and
the FEP each as their own process, two kiosks with virtual cards. Loads, a wrong PIN,
insufficient funds, a blocked card, a bank timeout that is reversed, cards pulled before and
after the credit and re-written at their next load, a platform outage, and a SIGKILL of the
FEP mid-day. Ends with the money check computed from the peers' own books.`)
	out := fs.String("out", "", "leave the day's artefacts (configs, journals, ledgers, card files, logs) in `DIR` (default: a temporary directory, removed afterwards)")
	verbose := fs.Bool("v", false, "log the kiosks' messages to stderr")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bin, err := proc.Self()
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "quancun-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if dir, err = filepath.Abs(dir); err != nil {
		return err
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	report, err := demo.Run(ctx, demo.Options{Bin: bin, Dir: dir, Out: env.Stdout, Logger: logger})
	if err != nil {
		return fmt.Errorf("%w (process logs are in %s; run with --out DIR to keep them)", err, dir)
	}
	fmt.Fprintln(env.Stdout, report.Line())
	if !report.Passed() {
		return errMoneyCheck
	}
	return nil
}
