package main

import (
	"context"
	"slices"
	"strings"
)

// runBench is `quancun bench`: the load harness (bench_load.go), or with --faults the fault
// campaign (bench_faults.go). One command, because operators think of both as "the bench".
func runBench(ctx context.Context, env *Env, args []string) error {
	if slices.ContainsFunc(args, func(a string) bool {
		return a == "--faults" || a == "-faults" || strings.HasPrefix(a, "--faults=") || strings.HasPrefix(a, "-faults=")
	}) {
		return runBenchFaults(ctx, env, args)
	}
	return runBenchLoad(ctx, env, args)
}
