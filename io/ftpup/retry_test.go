package ftpup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRetryBackoffDoublesToCap(t *testing.T) {
	var waits []time.Duration
	cfg := Config{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, AttemptTimeout: time.Second,
		Logger: quiet(), Progress: func(a Attempt) { waits = append(waits, a.Wait) }}.withDefaults()
	n := 0
	err := retry(context.Background(), cfg, func(context.Context) error {
		n++
		if n < 6 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || n != 6 {
		t.Fatalf("err %v after %d attempts", err, n)
	}
	want := []time.Duration{1, 2, 4, 4, 4, 0}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

func TestRetryStopsAtContextEnd(t *testing.T) {
	cfg := Config{MinBackoff: 10 * time.Millisecond, Logger: quiet()}.withDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	last := errors.New("server down")
	err := retry(ctx, cfg, func(context.Context) error { return last })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, last) {
		t.Fatalf("err %v: want both the deadline and the last attempt's error", err)
	}
}

func TestRetryDoesNotRetryConfigErrors(t *testing.T) {
	n := 0
	err := retry(context.Background(), Config{Logger: quiet()}.withDefaults(), func(context.Context) error {
		n++
		return ErrConfig
	})
	if !errors.Is(err, ErrConfig) || n != 1 {
		t.Fatalf("err %v after %d attempts", err, n)
	}
}

func TestUploadRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "..", "a/b.txt", "x\r\nDELE y", "c:\\x"} {
		err := Upload(context.Background(), Config{Addr: "127.0.0.1:1"}, name, []byte("x"))
		if !errors.Is(err, ErrConfig) {
			t.Errorf("name %q: err %v, want ErrConfig", name, err)
		}
	}
	if err := Upload(context.Background(), Config{}, "a.txt", nil); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "address") {
		t.Errorf("no address: %v", err)
	}
}
