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
)

func TestSimPlatformHelp(t *testing.T) {
	var out bytes.Buffer
	err := runSimPlatform(context.Background(), &Env{Stdout: &out, Stderr: &out}, []string{"--help"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: quancun sim platform", "--config", "--data-dir", "docs/sim-platform.md", "-block"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSimPlatformNeedsDataDir(t *testing.T) {
	var out bytes.Buffer
	if err := runSimPlatform(context.Background(), &Env{Stdout: &out, Stderr: &out}, nil); !errors.Is(err, errUsage) {
		t.Fatalf("no data dir: %v", err)
	}
}

func TestSimPlatformRunsUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.toml")
	os.WriteFile(cfg, []byte("data_dir = \"data\"\nlisten = \"127.0.0.1:0\"\n[ftp]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := runSimPlatform(ctx, &Env{Stdout: &out, Stderr: &out}, []string{"--config", cfg, "--block", "00000000DEADBEEF"}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "sim platform: listening") || !strings.Contains(out.String(), "sim platform: stopped") {
		t.Fatalf("log:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "upload")); err != nil {
		t.Fatalf("data dir not relative to the config: %v", err)
	}
}
