package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/quancun/quancun/bench/simkiosk"
	"github.com/quancun/quancun/io/card"
	"github.com/quancun/quancun/io/card/pcsc"
	"github.com/quancun/quancun/io/card/vcard"
)

// errRunFailed marks a run whose loads did not all go as expected; the lines already said
// which, so main only sets the exit status.
var errRunFailed = errors.New("some loads failed or differed from the script")

// tmkEnv is where the TMK may come from instead of --tmk, so it need not show in ps.
const tmkEnv = "QUANCUN_KIOSK_TMK"

func runSimKiosk(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "sim kiosk", `Run a simulated load kiosk (圈存机) against an FEP: sign in with the kiosk's PSAM and TMK,
then make loads from virtual card files (or a card on a PC/SC reader), each one as a real
kiosk does it: read the card, settle its pending loads (re-write F, resolve U), INITIALIZE
FOR LOAD, LOAD REQUEST with the PIN block, CREDIT FOR LOAD, CONFIRM. One line per load, then
a summary; exit status 1 when a load erred or differed from the script. docs/sim-kiosk.md.

  quancun sim kiosk --fep 127.0.0.1:9400 --terminal KIOSK001 --tmk 0011…EEFF \
      --psam psam.json --cards cards/ --script loads.toml
  quancun sim kiosk ... --cards cards/ --random 100 --pull-rate 0.1
  quancun sim kiosk ... --reader "Virtual PCD 00 00" --script loads.toml

The TMK may come from $`+tmkEnv+` instead of --tmk.`)
	fep := fs.String("fep", "", "FEP kiosk-link `ADDR` (host:port), required")
	terminal := fs.String("terminal", "", "kiosk terminal `ID`, 8 characters, registered at the FEP with the PSAM, required")
	tmkHex := fs.String("tmk", "", "terminal master key, 32 `HEX` digits, shared with the FEP (or $"+tmkEnv+")")
	psamFile := fs.String("psam", "", "virtual PSAM `FILE` (JSON, docs/card-file.md); the PSAM signs every request")
	psamReader := fs.String("psam-reader", "", "PC/SC reader `NAME` holding the PSAM, instead of --psam")
	macKey := fs.String("mac-key", "27:01", "`USAGE:INDEX` (hex) of the PSAM's request-MAC master key in 801A")
	cardsDir := fs.String("cards", "", "`DIR` of virtual card files; script card names are relative to it")
	reader := fs.String("reader", "", "PC/SC reader `NAME` with the card, instead of --cards (no pull steps)")
	scriptFile := fs.String("script", "", "TOML script `FILE` of loads with expected outcomes")
	random := fs.Int("random", 0, "make `N` random loads over the cards of --cards")
	bankCode := fs.String("bank-code", "0102000001", "with --random: bank `CODE` (10 characters)")
	pan := fs.String("pan", "6222021234567890123", "with --random: bank card `PAN`")
	pin := fs.String("pin", "123456", "with --random: bank card `PIN` (\"\" = none)")
	minAmount := fs.Int64("min-amount", 100, "with --random: smallest amount in `fen`")
	maxAmount := fs.Int64("max-amount", 5000, "with --random: largest amount in `fen`")
	pullRate := fs.Float64("pull-rate", 0, "with --random: share of loads interrupted at a random step (`0..1`)")
	seed := fs.Int64("seed", 0, "with --random: random `SEED` (0 = from the clock)")
	heartbeat := fs.Duration("heartbeat", simkiosk.DefaultHeartbeat, "idle `TIME` before a HEARTBEAT")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tmkHex == "" {
		*tmkHex = os.Getenv(tmkEnv)
	}
	switch {
	case *fep == "":
		return usageError(fs, "--fep ADDR is required")
	case len(*terminal) != 8:
		return usageError(fs, "--terminal must be 8 characters")
	case (*psamFile == "") == (*psamReader == ""):
		return usageError(fs, "give one of --psam FILE and --psam-reader NAME")
	case (*cardsDir == "") == (*reader == ""):
		return usageError(fs, "give one of --cards DIR and --reader NAME")
	case (*scriptFile == "") == (*random <= 0):
		return usageError(fs, "give one of --script FILE and --random N")
	case *random > 0 && *cardsDir == "":
		return usageError(fs, "--random needs --cards DIR")
	case *pullRate < 0 || *pullRate > 1:
		return usageError(fs, "--pull-rate must be between 0 and 1")
	}
	tmk, err := hex.DecodeString(*tmkHex)
	if err != nil || len(tmk) != 16 {
		return usageError(fs, "--tmk must be 32 hex digits") // the value is not echoed
	}
	usage, index, err := parseMACKey(*macKey)
	if err != nil {
		return usageError(fs, "--mac-key: "+err.Error())
	}
	var script simkiosk.Script
	if *scriptFile != "" {
		if script, err = simkiosk.LoadScript(*scriptFile); err != nil {
			return err
		}
	}

	logger := simLogger(env)
	psam, err := openPSAM(ctx, *psamFile, *psamReader, logger)
	if err != nil {
		return err
	}
	defer psam.Close()
	k, err := simkiosk.New(ctx, simkiosk.Config{Terminal: *terminal, TMK: tmk, PSAM: psam, MACKeyUsage: usage,
		MACKeyIndex: index, Heartbeat: *heartbeat, Logger: logger})
	clear(tmk)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.Dial(ctx, *fep); err != nil {
		return err
	}
	if err := k.SignIn(ctx); err != nil {
		return err
	}

	var cards simkiosk.CardSource
	if *reader != "" {
		r, err := pcsc.Open(ctx, *reader)
		if err != nil {
			return fmt.Errorf("card reader %q: %w", *reader, err)
		}
		defer r.Close()
		cards = simkiosk.OneSlot{S: simkiosk.ReaderSlot(*reader, r)}
	} else {
		cards = simkiosk.OpenCardDir(*cardsDir, logger)
	}
	show := func(r simkiosk.Report) { fmt.Fprintln(env.Stdout, r) }
	var reps []simkiosk.Report
	if *scriptFile != "" {
		reps, err = simkiosk.RunScript(ctx, k, script, cards, show)
	} else {
		slots, derr := cards.(*simkiosk.CardDir).All()
		if derr != nil {
			return derr
		}
		reps, err = simkiosk.RandomRun(ctx, k, slots, *random, simkiosk.RandomOptions{Seed: *seed, MinAmount: *minAmount,
			MaxAmount: *maxAmount, PullRate: *pullRate, Payers: []simkiosk.Payer{{BankCode: *bankCode, PAN: *pan, PIN: *pin}}}, show)
	}
	sum := simkiosk.Summarize(reps)
	fmt.Fprintln(env.Stdout, "summary:", sum)
	if err != nil {
		return err
	}
	if sum.Errors > 0 || sum.Mismatches > 0 {
		return errRunFailed
	}
	return nil
}

// openPSAM puts the PSAM in its slot: a virtual PSAM file in-process, or a PC/SC reader.
func openPSAM(ctx context.Context, file, readerName string, logger *slog.Logger) (card.Reader, error) {
	if readerName != "" {
		r, err := pcsc.Open(ctx, readerName)
		if err != nil {
			return nil, fmt.Errorf("PSAM reader %q: %w", readerName, err)
		}
		return r, nil
	}
	p, err := vcard.LoadPSAM(file, vcard.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	return card.NewInProcessReader(p), nil
}

// parseMACKey reads "27:01" as 801A's P1 and P2.
func parseMACKey(s string) (usage, index byte, err error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, fmt.Errorf("%q: want two hex bytes as UU:II", s)
	}
	u, err1 := strconv.ParseUint(s[:2], 16, 8)
	i, err2 := strconv.ParseUint(s[3:], 16, 8)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q: want two hex bytes as UU:II", s)
	}
	return byte(u), byte(i), nil
}
