package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer safe for the logger and the test to share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServeHelpListsKeys(t *testing.T) {
	var out, errb bytes.Buffer
	// runServe directly: the command is registered in commands() by the lead.
	if err := runServe(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"docs/operations.md", "[[kiosks]]", "mac_master", "auth_code", "-config"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, errb.String())
		}
	}
	if err := runServe(context.Background(), &Env{Stdout: &out, Stderr: &errb}, nil); !errors.Is(err, errUsage) {
		t.Fatalf("serve without --config: %v", err)
	}
}

func TestServeRunsUntilCancelled(t *testing.T) {
	ex, err := os.ReadFile("../../testdata/fep.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	free := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}
	text := strings.NewReplacer(`data_dir = "data/fep"`, `data_dir = "`+filepath.Join(dir, "data")+`"`,
		`kiosk_listen = "127.0.0.1:7000"`, `kiosk_listen = "127.0.0.1:0"`,
		`"127.0.0.1:7100"`, `"`+free()+`"`, `"127.0.0.1:7200"`, `"`+free()+`"`).Replace(string(ex))
	cfgPath := filepath.Join(dir, "fep.toml")
	os.WriteFile(cfgPath, []byte(text), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuf{}
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, &Env{Stdout: logs, Stderr: logs}, []string{"--config", cfgPath}) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "serving") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not serving:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	l := logs.String()
	if testing.Verbose() {
		t.Log(l)
	}
	// KCVs of the loaded keys are logged, the keys themselves never.
	if !regexp.MustCompile(`kcv=[0-9A-F]{8}`).MatchString(l) || !strings.Contains(l, "FEP stopped") {
		t.Fatalf("logs:\n%s", l)
	}
	for _, key := range []string{"0123456789ABCDEFFEDCBA9876543210", "00112233445566778899AABBCCDDEEFF",
		"11111111111111112222222222222222", "33333333333333334444444444444444", "404142434445464748494A4B4C4D4E4F"} {
		if strings.Contains(strings.ToUpper(l), key) {
			t.Fatalf("a key is in the logs: %s", key)
		}
	}
}
