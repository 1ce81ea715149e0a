package ftpup

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quancun/quancun/recon"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// reconFile is a real reconciliation file, as the FEP would upload it.
func reconFile(t *testing.T) (string, []byte) {
	t.Helper()
	recs := []recon.Record{
		{Ref: "20101201000000000001", Batch: 3, PAN: "6222021234567890123", BankCode: "BANK000001",
			AcctDate: "20101201", Amount: 5000, Timestamp: "20101201144035", Write: 'S', Txn: 'S'},
		{Ref: "20101201000000000002", Batch: 3, PAN: "6222021234567890", BankCode: "BANK000002",
			AcctDate: "20101201", Amount: 2000, Timestamp: "20101201150000", Write: 'F', Txn: 'C'},
	}
	var b bytes.Buffer
	if err := recon.WriteFile(&b, recs, recon.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	return recon.FileName("AUTHCODE000000000001", "20101201"), b.Bytes()
}

// checkServed asserts the served directory holds exactly name with data, no .tmp left.
func checkServed(t *testing.T, s *vsftpd, name string, data []byte) {
	t.Helper()
	dir := filepath.Join(s.Root, s.UploadDir)
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("uploaded file: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("file on disk differs:\n%q\nwant\n%q", got, data)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("served dir holds %v, want only %s (no %s left)", names, name, TempName(name))
	}
}

func testUpload(t *testing.T, tlsOn bool) {
	s := startVsftpd(t, 0, tlsOn)
	name, data := reconFile(t)
	var attempts []Attempt
	cfg := Config{Addr: s.Addr, Dir: s.UploadDir, TLS: tlsOn, RootCAs: s.CAs, VerifyContent: true,
		AttemptTimeout: 10 * time.Second, MinBackoff: 50 * time.Millisecond, Logger: quiet(),
		Progress: func(a Attempt) { attempts = append(attempts, a) }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Upload(ctx, cfg, name, data); err != nil {
		t.Fatal(err)
	}
	checkServed(t, s, name, data)
	if len(attempts) != 1 || attempts[0].Err != nil {
		t.Fatalf("attempts %+v, want one success", attempts)
	}
	// Same day, same bytes: the rename overwrites and the directory still holds one file.
	if err := Upload(ctx, cfg, name, data); err != nil {
		t.Fatalf("second upload: %v", err)
	}
	checkServed(t, s, name, data)
}

func TestUploadPlain(t *testing.T) { testUpload(t, false) }

func TestUploadExplicitTLS(t *testing.T) { testUpload(t, true) }

// A client that does not trust the server's certificate never uploads.
func TestUploadTLSUntrusted(t *testing.T) {
	s := startVsftpd(t, 0, true)
	name, data := reconFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := Upload(ctx, Config{Addr: s.Addr, Dir: s.UploadDir, TLS: true, MinBackoff: 100 * time.Millisecond, Logger: quiet()}, name, data)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline after failed attempts", err)
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("err %v: want the certificate check as the last attempt's error", err)
	}
	if _, serr := os.Stat(filepath.Join(s.Root, s.UploadDir, name)); serr == nil {
		t.Fatal("file uploaded over an unverified TLS connection")
	}
}

// The server comes up after the first attempts failed: Upload keeps trying and succeeds.
func TestUploadRetriesUntilServerUp(t *testing.T) {
	port := freePort(t)
	name, data := reconFile(t)
	var mu sync.Mutex
	var failed int
	cfg := Config{Addr: "127.0.0.1:" + itoa(port), Dir: "incoming", AttemptTimeout: 5 * time.Second,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet(),
		Progress: func(a Attempt) {
			if a.Err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Upload(ctx, cfg, name, data) }()
	time.Sleep(300 * time.Millisecond)
	s := startVsftpd(t, port, false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkServed(t, s, name, data)
	mu.Lock()
	defer mu.Unlock()
	if failed == 0 {
		t.Fatal("no failed attempt reported before the server was up")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
