package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/quancun/quancun/bench/campaign"
	"github.com/quancun/quancun/bench/proc"
)

// errTooFewKills makes `quancun bench --faults` fail when the campaign could not kill the
// FEP as often as asked: a run with fewer kills proves less than it claims.
var errTooFewKills = errors.New("fewer FEP kills than asked")

// runBenchFaults is the fault campaign (bench/campaign, docs/fault-campaign.md).
func runBenchFaults(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench --faults", `Kill the FEP with SIGKILL at random moments and break its links (drop, delay,
duplicate, reorder, cut, black-hole) while kiosks load continuously, pulling cards at
random steps; then let the system settle and apply the money check to the peers' books.
Exits non-zero when the check fails or fewer kills than asked happened.`)
	fs.Bool("faults", true, "run the fault campaign")
	duration := fs.Duration("duration", 60*time.Second, "how long the kiosks load under faults")
	kills := fs.Int("kills", 20, "at least this many SIGKILLs of the FEP")
	kiosks := fs.Int("kiosks", 4, "concurrent kiosks")
	cards := fs.Int("cards", 0, "city cards the kiosks share (default 2 x kiosks)")
	seed := fs.Uint64("seed", 0, "random seed (0 = from the clock; printed so a run can be repeated)")
	out := fs.String("out", "", "leave the run's artefacts (configs, books, card files, every process's log) in `DIR` (default: a temporary directory, removed when the check passes)")
	timeout := fs.Duration("timeout", 0, "give up after this long (default: 4 x duration + 3m)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bin, err := proc.Self()
	if err != nil {
		return err
	}
	dir, keep := *out, true
	if dir == "" {
		if dir, err = os.MkdirTemp("", "quancun-faults-"); err != nil {
			return err
		}
		keep = false
	} else if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if *timeout <= 0 {
		*timeout = 4**duration + 3*time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := campaign.Run(ctx, campaign.Options{Bin: bin, Dir: dir, Duration: *duration, Kiosks: *kiosks, Cards: *cards,
		Kills: *kills, Seed: *seed, Out: env.Stdout})
	if err != nil {
		return fmt.Errorf("fault campaign: %w (process logs are in %s)", err, dir)
	}
	switch {
	case !res.Passed():
		fmt.Fprintf(env.Stderr, "process logs and books are in %s\n", dir)
		return errMoneyCheck
	case res.Kills < *kills:
		fmt.Fprintf(env.Stderr, "%d kills, %d asked; logs are in %s\n", res.Kills, *kills, dir)
		return errTooFewKills
	}
	if !keep {
		os.RemoveAll(dir)
	}
	return nil
}
