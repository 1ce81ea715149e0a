package main

import (
	"context"
	"errors"
)

// Placeholder until the card layer lands; replaced by the sim card implementation.
func runSimCard(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "sim card", "Serve a virtual PBOC e-purse card to pcscd through vsmartcard's vpcd.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("not built yet")
}

func runSimPSAM(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "sim psam", "Serve a virtual PSAM to pcscd through vsmartcard's vpcd.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return errors.New("not built yet")
}
