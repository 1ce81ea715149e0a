package fep

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/quancun/quancun/actors/linkstatus"
	"github.com/quancun/quancun/actors/platformlink"
	"github.com/quancun/quancun/persistence"
)

// PlatformSession is a platform session of its own, outside a running FEP, for operator
// tools that must ask the platform something while the FEP is stopped: `recon run --book`
// books the loads the bank debited and the platform never booked (seed 5, outcome 1). It
// is the same platform session actor the FEP runs, so the wire and its keys are the FEP's.
// Signing in opens a new batch; the FEP signs in again when it starts.
type PlatformSession struct {
	system *actor.ActorSystem
	pid    *actor.PID
}

// OpenPlatformSession signs in to the configured platform and waits until the session is
// up (or ctx ends). store is the FEP's store (the session records its batch there).
func OpenPlatformSession(ctx context.Context, cfg Config, store *persistence.Store, log *slog.Logger) (*PlatformSession, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := newHSM(cfg, log)
	if err != nil {
		return nil, err
	}
	pcfg := platformlink.Config{Addr: cfg.Platform.Addr, AuthCode: cfg.Platform.AuthCode, SignInKey: PlatformLTK,
		HeartbeatInterval: cfg.Platform.HeartbeatInterval.Duration, HeartbeatTimeout: cfg.Platform.HeartbeatTimeout.Duration,
		RequestTimeout: cfg.Platform.RequestTimeout.Duration, ReconnectMin: cfg.Platform.ReconnectMin.Duration,
		ReconnectMax: cfg.Platform.ReconnectMax.Duration}
	deps := platformlink.Deps{HSM: h, Store: store, Status: linkstatus.New(), Logger: log}
	if err := platformlink.Check(pcfg, deps); err != nil {
		return nil, err
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	pid, err := system.Root.SpawnNamed(platformlink.Props(pcfg, deps), "platform")
	if err != nil {
		system.Shutdown()
		return nil, err
	}
	s := &PlatformSession{system: system, pid: pid}
	for {
		if st, err := s.Request(platformlink.StatusRequest{}, time.Second); err == nil {
			if st, ok := st.(platformlink.Status); ok && st.Up {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			s.Close()
			return nil, fmt.Errorf("platform %s: no session: %w", cfg.Platform.Addr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Request sends one message of package messages (PlatformBook, PlatformCheck, ...) and
// returns the session's answer.
func (s *PlatformSession) Request(msg any, timeout time.Duration) (any, error) {
	return s.system.Root.RequestFuture(s.pid, msg, timeout).Result()
}

// Close signs nothing out (the platform keeps the batch) and stops the actor system.
func (s *PlatformSession) Close() {
	_ = s.system.Root.StopFuture(s.pid).Wait()
	s.system.Shutdown()
}
