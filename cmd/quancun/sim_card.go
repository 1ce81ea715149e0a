package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/quancun/quancun/io/card/vcard"
	"github.com/quancun/quancun/io/card/vpcd"
)

// Demo master keys of spec 9.2. They are public test values: a card made with them is only
// good for simulators, and the demo's security module holds the same two keys.
const (
	demoMDLK = "11111111111111112222222222222222"
	demoMTK  = "33333333333333334444444444444444"
	// demoEF15 is file 0015 of spec 9.2; --serial replaces bytes 12..20 (the app serial).
	demoEF15 = "869820007590000001052000000000001234567820240101203412310100"
)

func runSimCard(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "sim card", `Serve a virtual PBOC e-purse card to pcscd through vsmartcard's vpcd: the card
"is inserted" into the virtual reader at --vpcd until SIGINT/SIGTERM, and every credit is
written back to --card before the card answers. pcscd must run (scripts/pcscd.sh); while it
is not up the card waits and retries.

With --init FILE, write a new demo card file instead (keys diversified from the demo master
keys of spec 9.2) and exit:
  quancun sim card --init card.json --serial 0000000012345678 --balance 5000
  quancun sim card --card card.json              # reader "Virtual PCD 00 00"`)
	addr := fs.String("vpcd", vpcd.DefaultAddr, "`HOST:PORT` of the vpcd reader (35963 = \"Virtual PCD 00 00\", 35964 = \"Virtual PCD 00 01\")")
	path := fs.String("card", "", "card `FILE` to serve (JSON, docs/card-file.md)")
	initPath := fs.String("init", "", "write a new demo card `FILE` and exit")
	serial := fs.String("serial", "0000000012345678", "with --init: application serial, 16 `HEX` digits (file 0015 bytes 12..20)")
	balance := fs.Uint64("balance", 0, "with --init: balance in `fen`")
	maxBalance := fs.Uint64("max-balance", 100000, "with --init: balance ceiling in `fen`")
	online := fs.Uint("online-serial", 0, "with --init: online transaction serial")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *initPath != "" {
		if *path != "" {
			return usageError(fs, "--init and --card exclude each other")
		}
		return initCard(env, *initPath, *serial, *balance, *maxBalance, *online)
	}
	if *path == "" {
		return usageError(fs, "--card FILE (or --init FILE) is required")
	}
	logger := simLogger(env)
	c, err := vcard.LoadCard(*path, vcard.WithLogger(logger))
	if err != nil {
		return err
	}
	st := c.State()
	logger.Info("sim card: serving", "file", *path, "app_serial", strings.ToUpper(hex.EncodeToString(st.EF15[12:20])),
		"balance", st.Balance, "online_serial", st.OnlineSerial, "reader", *addr)
	if err := vpcd.Serve(ctx, *addr, c, logger); err != nil {
		return err
	}
	st = c.State()
	logger.Info("sim card: stopped", "balance", st.Balance, "online_serial", st.OnlineSerial)
	return nil
}

// initCard writes a demo card file; it refuses to overwrite, since a card file is money.
func initCard(env *Env, path, serialHex string, balance, maxBalance uint64, online uint) error {
	serial, err := hex.DecodeString(serialHex)
	if err != nil || len(serial) != 8 {
		return fmt.Errorf("--serial %q: want 16 hex digits", serialHex)
	}
	if balance > maxBalance || maxBalance > 0xFFFFFFFF {
		return fmt.Errorf("--balance %d / --max-balance %d: want balance <= max-balance <= %d", balance, maxBalance, uint32(0xFFFFFFFF))
	}
	if online > 0xFFFF {
		return fmt.Errorf("--online-serial %d: at most 65535", online)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; not overwriting a card file", path)
	}
	ef15, _ := hex.DecodeString(demoEF15)
	copy(ef15[12:20], serial)
	mdlk, _ := hex.DecodeString(demoMDLK)
	mtk, _ := hex.DecodeString(demoMTK)
	st, err := vcard.NewCardState(mdlk, mtk, ef15, uint32(balance), uint32(maxBalance), uint16(online))
	if err != nil {
		return err
	}
	if err := vcard.SaveCardFile(path, st); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s: app serial %X, balance %d fen, online serial %d\n", path, serial, balance, online)
	return nil
}

func runSimPSAM(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "sim psam", `Serve a virtual PSAM to pcscd through vsmartcard's vpcd, as the kiosk's SAM slot: it
"is inserted" into the virtual reader at --vpcd until SIGINT/SIGTERM. pcscd must run
(scripts/pcscd.sh); while it is not up the PSAM waits and retries.
  quancun sim psam --psam psam.json --vpcd 127.0.0.1:35964   # reader "Virtual PCD 00 01"`)
	addr := fs.String("vpcd", vpcd.DefaultAddr, "`HOST:PORT` of the vpcd reader (35963 = \"Virtual PCD 00 00\", 35964 = \"Virtual PCD 00 01\")")
	path := fs.String("psam", "", "PSAM `FILE` to serve (JSON, docs/card-file.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError(fs, "--psam FILE is required")
	}
	logger := simLogger(env)
	p, err := vcard.LoadPSAM(*path, vcard.WithLogger(logger))
	if err != nil {
		return err
	}
	logger.Info("sim psam: serving", "file", *path, "reader", *addr)
	return vpcd.Serve(ctx, *addr, p, logger)
}

func simLogger(env *Env) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.Stderr, nil))
}

// usageError prints why and the help, and returns errUsage (exit status 2).
func usageError(fs *flag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "%s\n\n", msg)
	fs.Usage()
	return errUsage
}
