// Package proc starts and stops the peer processes of the demo, the bench and the
// end-to-end tests: each peer is a real `quancun` process reached over real TCP, with its
// output in a log file of its own so a failure can be read afterwards.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is one running peer.
type Process struct {
	Name string
	Log  string // path of its combined stdout+stderr
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args, its output appended to dir/<name>.log.
func Start(bin, dir, name string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then SIGKILLs.
func (p *Process) Stop(grace time.Duration) error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		return p.Kill()
	}
}

// Kill sends SIGKILL (no clean-up at all: the crash the switch must survive) and waits.
func (p *Process) Kill() error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return nil
}

// WaitPort waits until addr accepts TCP connections, the process exits, or ctx ends.
func (p *Process) WaitPort(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if ok, perr := p.Exited(); ok {
			return fmt.Errorf("%s exited before listening on %s (%v); see %s", p.Name, addr, perr, p.Log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not listening on %s: %w; see %s", p.Name, addr, ctx.Err(), p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback address with a port that was free a moment ago.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ErrNoBinary reports that the quancun binary could not be found.
var ErrNoBinary = errors.New("proc: quancun binary not found")

// Self returns the running executable, the binary the peers are started from.
func Self() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBinary, err)
	}
	return p, nil
}
