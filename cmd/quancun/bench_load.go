package main

import (
	"context"
	"errors"
)

// runBenchLoad is the load harness; being built (issue: the bench harness).
func runBenchLoad(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench", "Load-test the FEP with many kiosks (not built yet).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("the load bench is not built yet")
}
