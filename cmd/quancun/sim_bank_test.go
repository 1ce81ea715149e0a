package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quancun/quancun/bench/simbank"
)

func TestSimBankCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runSimBank(ctx, env, []string{"--listen", "127.0.0.1:0", "--data", dir,
			"--account", "6222021234567890123:123456:100000", "--timeout-pan", "6222021234567890123"})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l, err := simbank.LoadLedger(dir); err == nil && len(l.Accounts) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bank never opened its account")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := runSimBank(context.Background(), env, []string{"ledger", "--data", dir}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "bank 0102000001: approved 0") || !strings.Contains(out.String(), "622202*********0123  balance 100000") {
		t.Fatalf("ledger output %q", out.String())
	}
	out.Reset()
	if err := runSimBank(context.Background(), env, []string{"settle", "--data", dir, "--date", "20260228"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "0|0\n" {
		t.Fatalf("settle output %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "SETTLE_0102000001_20260228.txt")); err != nil {
		t.Fatal(err)
	}
}

func TestSimBankConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := "listen = \"127.0.0.1:9\"\ndata_dir = \"books\"\nbank_code = \"BANK000002\"\n" +
		"zmk = \"00112233445566778899AABBCCDDEEFF\"\n[[accounts]]\npan = \"6222021234567890123\"\nbalance = 7\n"
	path := filepath.Join(dir, "bank.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // open the books, bind, stop at once
	// --listen overrides the file's port 9, which is not ours to bind.
	if err := runSimBank(ctx, env, []string{"--config", path, "--listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	l, err := simbank.LoadLedger(filepath.Join(dir, "books"))
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := l.Balance("6222021234567890123"); !ok || b != 7 || l.BankCode != "BANK000002" {
		t.Fatalf("books %+v", l)
	}
}

func TestSimBankUsage(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if err := runSimBank(context.Background(), env, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(errb.String(), "quancun sim bank settle") {
		t.Fatalf("help text %q", errb.String())
	}
	if err := runSimBank(context.Background(), env, nil); !errors.Is(err, errUsage) {
		t.Fatalf("no --data: %v", err)
	}
	if err := runSimBank(context.Background(), env, []string{"--data", t.TempDir(), "--account", "x"}); !errors.Is(err, errUsage) {
		t.Fatalf("bad --account: %v", err)
	}
}
