package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/quancun/quancun/bench/simbank"
)

// demoZMK is the V6 test TMK of card-and-host.md 9.5: public, good only for simulators.
const demoZMK = "00112233445566778899AABBCCDDEEFF"

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runSimBank(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "settle":
			return runSimBankSettle(env, args[1:])
		case "ledger":
			return runSimBankLedger(env, args[1:])
		}
	}
	fs := newFlags(env, "sim bank", `Run a simulated bank host: the FEP's bank link (docs/protocols/bank.md) over TCP, with
its own books in an append-only journal under --data, until SIGINT/SIGTERM. Every decision
is fsynced before it is answered; a restart replays the journal. See docs/sim-bank.md.

  quancun sim bank --config bank.toml
  quancun sim bank --data /tmp/bank --account 6222021234567890123:123456:100000
  quancun sim bank settle --data /tmp/bank --date 20260228   # write the settlement file
  quancun sim bank ledger --data /tmp/bank                   # balances and money-check totals

Flags given with --config override the file.`)
	cfgPath := fs.String("config", "", "TOML config `FILE` (docs/sim-bank.md)")
	listen := fs.String("listen", simbank.DefaultListen, "`HOST:PORT` to listen on")
	data := fs.String("data", "", "data `DIR`: journal and settlement files")
	code := fs.String("bank-code", "0102000001", "bank `CODE`, 10 characters")
	dialect := fs.String("dialect", "cups-pos", "`NAME`: cups-pos or cups-advice-x919")
	zmk := fs.String("zmk", demoZMK, "ZMK shared with the FEP, 32 `HEX` digits (default: the public V6 test key)")
	var accounts, timeoutPANs listFlag
	fs.Var(&accounts, "account", "`PAN:PIN:BALANCE` (fen) to open; repeatable; empty PIN = no PIN check")
	fs.Var(&timeoutPANs, "timeout-pan", "never answer a 0200 for this `PAN` (debit made, answer lost); repeatable")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var cfg simbank.Config
	if *cfgPath != "" {
		c, err := simbank.LoadConfig(*cfgPath)
		if err != nil {
			return err
		}
		cfg = c
	} else {
		cfg.ZMK = *zmk
	}
	override := func(name string, dst *string, v string) {
		if *cfgPath == "" || set[name] {
			*dst = v
		}
	}
	override("listen", &cfg.Listen, *listen)
	override("data", &cfg.DataDir, *data)
	override("bank-code", &cfg.BankCode, *code)
	override("dialect", &cfg.Dialect, *dialect)
	override("zmk", &cfg.ZMK, *zmk)
	for _, a := range accounts {
		p := strings.Split(a, ":")
		if len(p) != 3 {
			return usageError(fs, fmt.Sprintf("--account %q: want PAN:PIN:BALANCE", a))
		}
		bal, err := strconv.ParseInt(p[2], 10, 64)
		if err != nil {
			return usageError(fs, fmt.Sprintf("--account %q: balance in fen", a))
		}
		cfg.Accounts = append(cfg.Accounts, simbank.AccountConfig{PAN: p[0], PIN: p[1], Balance: bal})
	}
	cfg.Faults.TimeoutPANs = append(cfg.Faults.TimeoutPANs, timeoutPANs...)
	if cfg.DataDir == "" {
		return usageError(fs, "--data DIR (or --config FILE with data_dir) is required")
	}
	s, err := simbank.New(cfg, simbank.WithLogger(simLogger(env)))
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func runSimBankSettle(env *Env, args []string) error {
	fs := newFlags(env, "sim bank settle", `Write the bank's settlement file for one accounting date into the data dir
(SETTLE_<bank code>_<date>.txt: header count|net fen, then D and R lines; docs/sim-bank.md)
and print it. Safe while the bank runs; the same journal gives the same bytes.`)
	data := fs.String("data", "", "the bank's data `DIR`")
	date := fs.String("date", "", "accounting `YYYYMMDD`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" || *date == "" {
		return usageError(fs, "--data and --date are required")
	}
	path, body, err := simbank.WriteSettlement(*data, *date)
	if err != nil {
		return err
	}
	env.Stdout.Write(body)
	fmt.Fprintf(env.Stderr, "wrote %s\n", path)
	return nil
}

func runSimBankLedger(env *Env, args []string) error {
	fs := newFlags(env, "sim bank ledger", `Print the bank's books from its journal: each account's balance (PAN masked) and the
money-check totals (approved debits, reversals, net). Safe while the bank runs.`)
	data := fs.String("data", "", "the bank's data `DIR`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError(fs, "--data is required")
	}
	l, err := simbank.LoadLedger(*data)
	if err != nil {
		return err
	}
	t := l.Totals()
	fmt.Fprintf(env.Stdout, "bank %s: approved %d (%d fen), reversed %d (%d fen), net %d fen\n",
		l.BankCode, t.Approved, t.ApprovedSum, t.Reversed, t.ReversedSum, t.Net)
	for _, pan := range l.PANs() {
		a := l.Accounts[pan]
		fmt.Fprintf(env.Stdout, "  %s  balance %d fen (opening %d)%s\n", mask64(pan), a.Balance, a.Opening,
			map[bool]string{true: "  blocked " + a.BlockCode}[a.Blocked])
	}
	return nil
}

// mask64 keeps the first 6 and last 4 digits of a PAN.
func mask64(p string) string {
	if len(p) < 11 {
		return "****"
	}
	return p[:6] + strings.Repeat("*", len(p)-10) + p[len(p)-4:]
}
