package loads

import (
	"sync/atomic"
	"time"
)

// workerPool is the protoactor Dispatcher of the loads supervisor and its transaction
// actors. protoactor's default dispatcher starts a new goroutine for every burst of an
// actor's mailbox; the receive path of a load (Step, derive, the record codec, Badger's
// read path) then grows that fresh, small stack every time, which cost ~9 % of the FEP's
// CPU (runtime.newstack/copystack, docs/performance.md). Here a burst runs on a parked
// worker whose stack is already grown when one is free, else on a new worker (up to max),
// else on a plain goroutine as before: a burst never waits behind another one, so the
// scheduling semantics are those of the default dispatcher. Workers exit after idle
// without work, so an idle FEP (and a stopped actor system) keeps none.
type workerPool struct {
	work       chan func() // unbuffered: a send succeeds only into a parked worker
	throughput int
	max        int32
	idle       time.Duration
	workers    atomic.Int32
}

func newWorkerPool(max int, idle time.Duration) *workerPool {
	return &workerPool{work: make(chan func()), throughput: 300, max: int32(max), idle: idle}
}

// Schedule runs fn (a mailbox burst) on another goroutine, never blocking.
func (p *workerPool) Schedule(fn func()) {
	select {
	case p.work <- fn:
		return
	default:
	}
	if p.workers.Add(1) <= p.max {
		go p.worker(fn)
		return
	}
	p.workers.Add(-1)
	go fn()
}

// Throughput is protoactor's default: messages per burst before the mailbox yields.
func (p *workerPool) Throughput() int { return p.throughput }

func (p *workerPool) worker(fn func()) {
	defer p.workers.Add(-1)
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		fn()
		fn = nil
		t.Reset(p.idle)
		select {
		case fn = <-p.work:
		case <-t.C:
			return
		}
	}
}
