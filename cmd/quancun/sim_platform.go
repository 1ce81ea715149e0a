package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"

	"github.com/quancun/quancun/bench/simplatform"
)

func runSimPlatform(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "sim platform", `Run the one-card platform (一卡通平台) peer: the FEP link of docs/protocols/platform.md on
TCP, the load journal (journal.jsonl in the data dir, fsynced before every answer, replayed
at start) and the FTP server that receives reconciliation files, until SIGINT/SIGTERM.
Config keys and behaviour: docs/sim-platform.md. The defaults are the public demo keys, the
same masters as 'quancun sim card --init'.

  quancun sim platform --config platform.toml
  quancun sim platform --data-dir /tmp/platform            # all defaults
  quancun sim platform --data-dir d --listen 127.0.0.1:9401 --ftp off --block 00000000DEADBEEF

Flags given on the command line override the file.`)
	cfgPath := fs.String("config", "", "TOML config `FILE` (docs/sim-platform.md)")
	dataDir := fs.String("data-dir", "", "`DIR` for the journal and the FTP upload dir (required without --config)")
	listen := fs.String("listen", "", "FEP link `HOST:PORT` (default "+simplatform.DefaultListen+")")
	ftpListen := fs.String("ftp", "", "FTP `HOST:PORT`, or \"off\" (default "+simplatform.DefaultFTPListen+")")
	authCode := fs.String("auth-code", "", "accept this 20-character auth `CODE` (default "+simplatform.DefaultAuthCode+")")
	ceiling := fs.Int64("ceiling", 0, "card balance ceiling in `fen` (default 100000)")
	var blocked platformSerials
	fs.Var(&blocked, "block", "block a card app `SERIAL` (16 hex digits); repeatable")
	verbose := fs.Bool("v", false, "log at debug level (FTP commands, every request)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var cfg simplatform.Config
	if *cfgPath != "" {
		c, err := simplatform.LoadConfig(*cfgPath)
		if err != nil {
			return err
		}
		cfg = c
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.DataDir, *dataDir)
	set(&cfg.Listen, *listen)
	set(&cfg.FTP.Listen, *ftpListen)
	if *authCode != "" {
		cfg.AuthCodes = []string{*authCode}
	}
	if *ceiling != 0 {
		cfg.Ceiling = *ceiling
	}
	cfg.Blocked = append(cfg.Blocked, blocked...)
	if cfg.DataDir == "" {
		return usageError(fs, "--data-dir DIR (or --config FILE with data_dir) is required")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	s, err := simplatform.New(cfg, logger)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// platformSerials collects a repeatable string flag.
type platformSerials []string

func (m *platformSerials) String() string { return strings.Join(*m, ",") }

func (m *platformSerials) Set(v string) error {
	*m = append(*m, v)
	return nil
}

var _ flag.Value = (*platformSerials)(nil)
