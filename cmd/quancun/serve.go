package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/quancun/quancun/actors/fep"
)

const serveSynopsis = `Run the load front-end processor until SIGINT or SIGTERM: the kiosk listener, the
platform session, one link per bank, the transaction store. The configuration file is TOML
(testdata/fep.example.toml is a complete example; docs/operations.md explains every key):

  [fep]       node, data_dir, kiosk_listen, heartbeat_timeout, master_key | master_key_file,
              key_file, demo_tmk_master, merchant, log_level
  [psam]      mac_master, key_usage, key_index
  [[kiosks]]  terminal, psam, tmk
  [platform]  addr, auth_code, ltk, heartbeat_interval, heartbeat_timeout, request_timeout,
              reconnect_min, reconnect_max
  [[banks]]   code, addr, dialect, zmk, terminal, merchant, response_timeout, echo_interval,
              echo_timeout, reconnect_min, reconnect_max, max_in_flight
  [limits]    check, bank, kiosk, book_first, book_max, confirm, confirm_first, confirm_max,
              grace, kiosk_request, kiosk_load, drain

Logs go to stderr (logfmt): link state changes, key check values of the loaded keys (never
keys), kiosk sign-ins; PANs are masked 6+4.`

func runServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "serve", serveSynopsis)
	path := fs.String("config", "", "configuration file (TOML; required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(fs.Output(), "serve: --config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := fep.LoadConfig(*path)
	if err != nil {
		return err
	}
	level, _ := fep.ParseLevel(cfg.FEP.LogLevel) // validated by LoadConfig
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	f, err := fep.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("serving; SIGINT or SIGTERM stops", "kiosk_addr", f.Addr().String())
	<-ctx.Done()
	log.Info("signal received: stopping")
	return f.Stop()
}
