package persistence

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	crashDirEnv   = "QUANCUN_PERSISTENCE_CRASH_DIR"
	crashStartEnv = "QUANCUN_PERSISTENCE_CRASH_START"
)

// crashRecord is the three ops of one commit: a record and two index entries, so that
// after the kill every commit must be found whole or not at all.
func crashRecord(n, stan uint64) []Op {
	id := Uint(n)
	v := []byte(fmt.Sprintf("%d:%d", n, stan))
	return []Op{
		{Key: Key("rec", id), Value: v},
		{Key: Key("idx", "a", id), Value: v},
		{Key: Key("idx", "b", id), Value: v},
	}
}

// TestCrashChild is the process that gets SIGKILLed. It only runs when re-executed by
// TestSIGKILLLosesNoAcknowledgedCommit.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child of TestSIGKILLLosesNoAcknowledgedCommit")
	}
	start, _ := strconv.ParseUint(os.Getenv(crashStartEnv), 10, 64)
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	stan, err := s.Counter("stan", 1, 999999, 50)
	if err != nil {
		t.Fatal(err)
	}
	var next atomic.Uint64
	next.Store(start)
	var out sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for { // until killed
				n := next.Add(1)
				c, err := stan.Next()
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Commit(context.Background(), crashRecord(n, c)...); err != nil {
					t.Error(err)
					return
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", n, c) // one write(2): whole line or nothing
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestSIGKILLLosesNoAcknowledgedCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process")
	}
	dir := t.TempDir()
	acked := map[uint64]uint64{} // record number -> STAN, from every round
	var maxStan uint64
	for round := range 2 {
		// Each round numbers its records apart, so no round overwrites another's.
		got := runAndKill(t, dir, uint64(round)*1_000_000, 2000)
		if len(got) == 0 {
			t.Fatalf("round %d: child acknowledged nothing", round)
		}
		for n, c := range got {
			acked[n] = c
			maxStan = max(maxStan, c)
		}
		t.Logf("round %d: %d acknowledgements before SIGKILL", round, len(got))
	}
	s := openT(t, dir)
	for n, c := range acked {
		want := fmt.Sprintf("%d:%d", n, c)
		for _, op := range crashRecord(n, c) {
			v, err := s.Get(op.Key)
			if err != nil || string(v) != want {
				t.Fatalf("acknowledged record %d: %q = %q, %v; want %q", n, op.Key, v, err, want)
			}
		}
	}
	// All or nothing for every commit, acknowledged or not.
	seen := map[string]int{}
	if err := s.Scan(nil, func(k, v []byte) error {
		if p, err := SplitKey(k); err == nil && (p[0] == "rec" || p[0] == "idx") {
			seen[p[len(p)-1]]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id, count := range seen {
		if count != 3 {
			t.Fatalf("commit %s survived partly: %d of 3 ops", id, count)
		}
	}
	// The counter resumes above every STAN the dead processes handed out.
	c, err := s.Counter("stan", 1, 999999, 50)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Next(); err != nil || n <= maxStan {
		t.Fatalf("STAN after crashes = %d, %v; handed out before: up to %d", n, err, maxStan)
	}
	t.Logf("%d acknowledged commits all present; %d commits on disk", len(acked), len(seen))
}

// runAndKill runs the child on dir, SIGKILLs it after want acknowledgements (or 10 s)
// and returns every acknowledgement it printed.
func runAndKill(t *testing.T, dir string, start uint64, want int) map[uint64]uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.FormatUint(start, 10))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	got := map[uint64]uint64{}
	record := func(line string) {
		var n, c uint64
		if _, err := fmt.Sscanf(line, "ack %d %d", &n, &c); err == nil {
			got[n] = c
		}
	}
	deadline := time.After(10 * time.Second) // bounds the run; nothing asserts on time
wait:
	for len(got) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait // child died by itself: checked below
			}
			record(line)
		case <-deadline:
			break wait
		}
	}
	_ = cmd.Process.Kill() // SIGKILL
	for line := range lines {
		record(line) // acknowledgements printed before the kill count too
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("child was not killed by the signal (err %v); stderr:\n%s", err, stderr.String())
	}
	return got
}
