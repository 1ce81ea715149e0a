package main

import (
	"context"
	"errors"
)

// runBenchFaults is the fault campaign; being built (issue: nothing lost).
func runBenchFaults(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench --faults", "Kill the FEP and break its links while kiosks load (not built yet).")
	fs.Bool("faults", true, "run the fault campaign")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("the fault campaign is not built yet")
}
