package loadbench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux.
const clockTicks = 100

// cpuSeconds is utime+stime of pid (all its threads), from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it start past the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime/stime", pid)
	}
	return float64(ut+st) / clockTicks, nil
}

// memKiB reads a "VmXxx:  N kB" line of /proc/<pid>/status (VmHWM peak, VmRSS now).
func memKiB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key+":") {
			fs := strings.Fields(line[len(key)+1:])
			if len(fs) > 0 {
				return strconv.ParseInt(fs[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// allocCounters asks the switch (`quancun bench fep|relay`) for its runtime/metrics
// allocation counters with SIGUSR1 and reads the line it prints into its log.
func allocCounters(pid int, logPath string) (allocs, bytes uint64, ok bool) {
	fi, err := os.Stat(logPath)
	if err != nil {
		return 0, 0, false
	}
	from := fi.Size()
	if syscall.Kill(pid, syscall.SIGUSR1) != nil {
		return 0, 0, false
	}
	for try := 0; try < 50; try++ {
		time.Sleep(10 * time.Millisecond)
		f, err := os.Open(logPath)
		if err != nil {
			return 0, 0, false
		}
		buf := make([]byte, 64<<10)
		n, _ := f.ReadAt(buf, from)
		f.Close()
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if _, err := fmt.Sscanf(line, "bench-metrics allocs=%d bytes=%d", &allocs, &bytes); err == nil {
				return allocs, bytes, true
			}
		}
	}
	return 0, 0, false
}
