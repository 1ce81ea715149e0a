package loadbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quancun/quancun/actors/fep"
	"github.com/quancun/quancun/io/frame"
	"github.com/quancun/quancun/io/hsm"
	"github.com/quancun/quancun/io/kiosk"
)

// Idle is the idle-scale phase: K kiosks connected and signed in, doing nothing but
// heartbeats, and what they cost the FEP.
type Idle struct {
	Asked              int     `json:"asked"`
	Connected          int     `json:"connected"` // signed in
	SourceAddrs        int     `json:"source_addrs"`
	RSSBeforeKiB       int64   `json:"rss_before_kib"` // FEP VmRSS with the kiosks registered, none connected
	RSSAfterKiB        int64   `json:"rss_after_kib"`  // ... all connected, signed in, after a heartbeat round
	KiBPerKiosk        float64 `json:"kib_per_kiosk"`
	Extrapolated50kMiB float64 `json:"extrapolated_50k_rss_mib"`
	Heartbeat          string  `json:"heartbeat_interval"`
	Heartbeats         int64   `json:"heartbeats"`
	HoldSeconds        float64 `json:"hold_seconds"`
	CPUPerHeartbeatUS  float64 `json:"cpu_per_heartbeat_us"`
	CPUPercent         float64 `json:"cpu_percent"` // of one core, during the hold
	LoadAvg            string  `json:"loadavg"`
}

const (
	idlePerAddr   = 20000 // connections per source address (the ephemeral range is ~28k)
	idleHeartbeat = 5 * time.Second
)

// psamSoft MACs requests as the kiosks' PSAMs do (801A + 80FA under the PSAM MAC master
// diversified by the PSAM number): the same math, without a card per idle kiosk.
type psamSoft struct{ h *hsm.Soft }

func (p psamSoft) RequestMAC(no kiosk.PSAMNo, mab []byte) ([4]byte, error) {
	return p.h.PSAMMAC("psam", [][]byte{no.Factor()}, mab)
}

func idleTerminal(i int) string { return fmt.Sprintf("I%07d", i+1) }
func idlePSAM(i int) kiosk.PSAMNo {
	var no kiosk.PSAMNo
	b, _ := hex.DecodeString(fmt.Sprintf("77%010d", i+1))
	copy(no[:], b)
	return no
}

// idle registers k more kiosks (demo TMK derivation), restarts the FEP, connects and signs
// them in from spread source addresses, holds them with heartbeats and reads the FEP's RSS
// and CPU.
func (b *bench) idle(ctx context.Context, k int, hold time.Duration) (*Idle, error) {
	fmt.Fprintf(b.opt.Progress, "== idle scale: %d kiosks\n", k)
	b.stopRelay()
	if b.w.FEP != nil {
		b.w.FEP.Stop(10 * time.Second)
	}
	for _, kk := range b.w.Kiosks {
		kk.Close()
	}
	if err := b.writeConfig(false); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(b.cfgPath)
	if err != nil {
		return nil, err
	}
	master := make([]byte, 16)
	if _, err := rand.Read(master); err != nil {
		return nil, err
	}
	s := string(raw)
	if !strings.Contains(s, "demo_tmk_master") {
		s = strings.Replace(s, "[fep]\n", fmt.Sprintf("[fep]\ndemo_tmk_master = %q\n", strings.ToUpper(hex.EncodeToString(master))), 1)
		var add strings.Builder
		for i := range k {
			no := idlePSAM(i)
			fmt.Fprintf(&add, "[[kiosks]]\nterminal = %q\npsam = %q\n", idleTerminal(i), strings.ToUpper(hex.EncodeToString(no[:])))
		}
		s += add.String()
		if err := os.WriteFile(b.cfgPath, []byte(s), 0o644); err != nil {
			return nil, err
		}
	}
	if err := b.w.StartFEP(ctx); err != nil {
		return nil, err
	}
	cfg, err := fep.LoadConfig(b.cfgPath)
	if err != nil {
		return nil, err
	}
	hm := make([]byte, 16)
	rand.Read(hm)
	h, err := hsm.NewSoft(hm, nil)
	if err != nil {
		return nil, err
	}
	psam, _ := hex.DecodeString(cfg.PSAM.MACMaster)
	if _, err := h.ImportClear("psam", hsm.UsagePSAMMaster, psam); err != nil {
		return nil, err
	}
	pid := b.w.FEP.PID()
	time.Sleep(2 * time.Second) // the FEP's start-up allocations settle
	ir := &Idle{Asked: k, Heartbeat: idleHeartbeat.String(), SourceAddrs: (k + idlePerAddr - 1) / idlePerAddr}
	ir.RSSBeforeKiB, _ = memKiB(pid, "VmRSS")

	hctx, stop := context.WithCancel(ctx)
	defer stop()
	var connected, beats atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	start := time.Now()
	for i := range k {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, batch, err := idleSignIn(hctx, b.w.FEPAddr, i, psamSoft{h})
			<-sem
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			defer c.Close()
			connected.Add(1)
			// Heartbeats at a random phase of the interval, as independent kiosks would.
			jitter := time.Duration(i%1000) * idleHeartbeat / 1000
			trace := 1
			for {
				select {
				case <-hctx.Done():
					return
				case <-time.After(jitter):
				}
				jitter = idleHeartbeat
				trace++
				if err := idleCall(c, &kiosk.Heartbeat{Envelope: idleEnvelope(i, trace, batch)}, psamSoft{h}); err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				beats.Add(1)
			}
		}()
		if i%1000 == 999 {
			fmt.Fprintf(b.opt.Progress, "\r   connecting: %d/%d signed in   ", connected.Load(), k)
		}
	}
	for connected.Load() < int64(k) && time.Since(start) < 5*time.Minute && ctx.Err() == nil {
		if e := firstErr.Load(); e != nil && connected.Load()+int64(len(sem)) < int64(k) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(b.opt.Progress, "\r   connected: %d/%d signed in in %.0fs   \n", connected.Load(), k, time.Since(start).Seconds())
	// One full heartbeat round, then the measured hold.
	time.Sleep(idleHeartbeat + time.Second)
	c0, _ := cpuSeconds(pid)
	b0, t0 := beats.Load(), time.Now()
	time.Sleep(hold)
	c1, _ := cpuSeconds(pid)
	b1, t1 := beats.Load(), time.Now()
	ir.RSSAfterKiB, _ = memKiB(pid, "VmRSS")
	ir.Connected = int(connected.Load())
	ir.Heartbeats, ir.HoldSeconds = b1-b0, t1.Sub(t0).Seconds()
	if ir.Heartbeats > 0 {
		ir.CPUPerHeartbeatUS = (c1 - c0) / float64(ir.Heartbeats) * 1e6
	}
	ir.CPUPercent = (c1 - c0) / ir.HoldSeconds * 100
	if ir.Connected > 0 {
		ir.KiBPerKiosk = float64(ir.RSSAfterKiB-ir.RSSBeforeKiB) / float64(ir.Connected)
		ir.Extrapolated50kMiB = (float64(ir.RSSBeforeKiB) + 50000*ir.KiBPerKiosk) / 1024
	}
	ir.LoadAvg = loadAvg()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(b.opt.Progress, "   first idle-kiosk error: %s\n", e)
	}
	stop()
	wg.Wait()
	runtime.GC()
	return ir, nil
}

func idleEnvelope(i, trace int, batch uint32) kiosk.Envelope {
	now := time.Now()
	return kiosk.Envelope{Header: kiosk.Header{Dest: 0x0001, Src: 0x0123}, Trace: fmt.Sprintf("%06d", trace),
		Date: now.Format("20060102"), Time: now.Format("150405"), Terminal: idleTerminal(i), PSAM: idlePSAM(i), Batch: batch}
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (not in package syscall).
const ipBindAddressNoPort = 24

// idleSignIn connects kiosk i from source address 127.1.0.(1 + i/idlePerAddr) and signs in.
func idleSignIn(ctx context.Context, addr string, i int, mac kiosk.RequestMACer) (net.Conn, uint32, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 1, 0, byte(1+i/idlePerAddr))}
	// IP_BIND_ADDRESS_NO_PORT: bind the source address now, the port at connect time, so
	// the kernel picks ports per (source, destination) pair instead of one port space for
	// every address — without it the second source address finds the ports taken.
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: src, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var c net.Conn
	var err error
	for try := 0; try < 5; try++ {
		if c, err = d.DialContext(ctx, "tcp", addr); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return nil, 0, err
	}
	req := &kiosk.SignIn{Envelope: idleEnvelope(i, 1, 0)}
	b, err := req.Pack(mac)
	if err == nil {
		err = frame.Write(c, b)
	}
	var resp kiosk.SignInResponse
	if err == nil {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		var in []byte
		if in, err = frame.Read(c, 4096); err == nil {
			err = resp.Unpack(in)
		}
	}
	if err == nil && resp.Result != kiosk.Approved {
		err = fmt.Errorf("sign-in of %s answered %s", idleTerminal(i), resp.Result)
	}
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	c.SetReadDeadline(time.Time{})
	return c, resp.Batch, nil
}

// idleCall sends one request and reads (and discards) its answer.
func idleCall(c net.Conn, r kiosk.Request, mac kiosk.RequestMACer) error {
	b, err := r.Pack(mac)
	if err != nil {
		return err
	}
	if err := frame.Write(c, b); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = frame.Read(c, 4096)
	if err == io.EOF {
		return fmt.Errorf("FEP closed the idle connection")
	}
	return err
}
