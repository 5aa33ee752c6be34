package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/rowfence/rowfence/tenancy"
)

// Fair sharing of the server's slots.
//
// A request may start when its tenant is below its cap and a slot is free;
// otherwise it joins the tail of its tenant's queue. Whenever a slot frees,
// it goes to the head of the queue of the waiting tenant that holds the
// smallest part of its cap (in-flight / cap: weighted max-min fairness, the
// scheduling goal of weighted fair queueing with concurrency as the shared
// resource), ties going to the tenant whose head has waited longest. So a
// tenant with a backlog is served in turn with every other tenant that
// waits, never ahead of them, and a tenant with nothing in progress goes
// first.
//
// A quarter of the slots (at least one once there are two) are a reserve
// that only a tenant with nothing in progress may take: tenants that keep
// the server busy can together hold at most Capacity minus the reserve, so a
// quiet tenant's request finds a slot at once instead of waiting for a slow
// request of theirs to end. That costs a lone busy tenant the reserve; its
// cap (half the pool by default) is lower anyway.
//
// One mutex guards the table: the decision is a map lookup and a few
// comparisons, and a release scans only the tenants that have waiters.

// reserveOf is the reserve for a capacity (see above).
func reserveOf(capacity int) int {
	if capacity < 2 {
		return 0
	}
	return max(1, capacity/4)
}

type waiter struct {
	ready   chan struct{} // closed when granted or expired
	granted bool          // under Limiter.mu
	// expired: its queue timeout passed and expire took it out of its
	// queue; out: it left its queue (granted, expired, or gone with its
	// context). Both under Limiter.mu.
	expired, out bool
	seq          uint64
	st           *state
	deadline     time.Time // arrival plus the queue timeout
}

// Queue timeouts. Every waiter waits at most the one QueueTimeout, so their
// deadlines come in their order of arrival: one timer for the whole limiter,
// set for the oldest waiter still queued, replaces a timer per waiter (its
// allocation, and the runtime's timer heap and netpoller wake-up on every
// queued request: under load most requests wait for a slot). waiters holds
// the waiters in arrival order; those that left the queue otherwise are
// dropped from its head as it is walked.

// enqueueDeadline adds w to the waiters by deadline and arms the timer if
// it is not armed (an armed timer is for an earlier or equal deadline).
// l.mu is held.
func (l *Limiter) enqueueDeadline(w *waiter) {
	l.dropLeft()
	l.waiters = append(l.waiters, w)
	if l.expiryArmed {
		return
	}
	l.expiryArmed = true
	d := time.Until(w.deadline)
	if l.expiry == nil {
		l.expiry = time.AfterFunc(d, l.expire)
		return
	}
	l.expiry.Reset(d)
}

// dropLeft drops the waiters at the head of l.waiters that already left
// their queue. l.mu is held.
func (l *Limiter) dropLeft() {
	i := 0
	for i < len(l.waiters) && l.waiters[i].out {
		l.waiters[i] = nil
		i++
	}
	if i > 0 {
		l.waiters = l.waiters[i:]
	}
	if len(l.waiters) == 0 {
		l.waiters = l.waiters[:0:0] // let the backing array go
	}
}

// expire runs on the timer: it refuses every waiter past its deadline and
// sets the timer for the next one.
func (l *Limiter) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for len(l.waiters) > 0 {
		w := l.waiters[0]
		if !w.out {
			if w.deadline.After(now) {
				l.expiry.Reset(w.deadline.Sub(now))
				return
			}
			l.dequeue(w.st, w)
			w.expired = true
			close(w.ready)
		}
		l.waiters[0] = nil
		l.waiters = l.waiters[1:]
	}
	l.waiters = l.waiters[:0:0]
	l.expiryArmed = false
}

// Acquire decides on one request of tenant, waiting for a slot up to the
// queue timeout or until ctx ends. When allowed, release must be called once
// the request's database work is done (calling it again does nothing).
func (l *Limiter) Acquire(ctx context.Context, tenant uuid.UUID, overrides tenancy.Limits) (d Decision, release func()) {
	r, burst, maxConc := l.effective(overrides)
	now := l.now()
	l.mu.Lock()
	st := l.tenants[tenant]
	if st == nil {
		if len(l.tenants) >= sweepAbove {
			l.sweep(now)
		}
		st = &state{queuedAt: -1}
		l.tenants[tenant] = st
	}
	st.lastUsed = now
	st.maxConc = maxConc
	if st.rate != r || st.burst != burst { // new tenant, or its override changed
		st.rate, st.burst, st.bucket = r, burst, nil
		if r > 0 {
			st.bucket = rate.NewLimiter(rate.Limit(r), burst)
		}
	}
	if st.bucket != nil {
		d.Quota, d.Window = burst, seconds(float64(burst)/r)
		if !st.bucket.AllowN(now, 1) {
			tokens := st.bucket.TokensAt(now)
			l.mu.Unlock()
			d.Reason, d.RetryAfter = ReasonRate, seconds((1-tokens)/r)
			d.Reset = seconds((float64(burst) - tokens) / r)
			return d, func() {}
		}
		tokens := st.bucket.TokensAt(now)
		d.Remaining = max(0, int(tokens))
		d.Reset = seconds((float64(burst) - tokens) / r)
	}
	// A tenant's requests keep their order: with some already waiting, a
	// new one waits behind them.
	if len(st.queue) == 0 && l.admissible(st) {
		l.take(st)
		l.mu.Unlock()
		d.Allowed = true
		return d, l.releaser(st)
	}
	if l.def.QueueTimeout <= 0 || len(st.queue) >= l.def.QueueLength {
		d.Reason = l.refusal(st)
		if l.def.QueueTimeout > 0 {
			d.Reason = ReasonQueueFull
		}
		l.mu.Unlock()
		d.RetryAfter = time.Second
		return d, func() {}
	}
	w := &waiter{ready: make(chan struct{}), seq: l.seq, st: st, deadline: time.Now().Add(l.def.QueueTimeout)}
	l.seq++
	st.queue = append(st.queue, w)
	l.enqueueDeadline(w)
	if st.queuedAt < 0 {
		st.queuedAt = len(l.queued)
		l.queued = append(l.queued, st)
	}
	l.waiting++
	if l.admissible(st) { // its cap was raised since the others queued
		l.dispatch()
	}
	l.mu.Unlock()

	start := time.Now()
	d.Queued = true
	select {
	case <-w.ready:
	case <-ctx.Done():
		d.Reason = ReasonCanceled
	}
	d.Waited = time.Since(start)
	l.mu.Lock()
	if w.granted { // granted, perhaps as the context ended
		l.mu.Unlock()
		if d.Reason == ReasonCanceled {
			l.release(st)
			return d, func() {}
		}
		d.Allowed = true
		return d, l.releaser(st)
	}
	if !w.expired { // still queued: its context ended
		l.dequeue(st, w)
	}
	if d.Reason == "" {
		d.Reason = l.refusal(st)
	}
	l.mu.Unlock()
	d.RetryAfter = time.Second
	return d, func() {}
}

// refusal is the reason a request of st that cannot start is refused: its
// own share in use, or the server full of others' requests. l.mu is held.
func (l *Limiter) refusal(st *state) string {
	if st.inFlight > 0 {
		return ReasonConcurrency
	}
	return ReasonOverloaded
}

// admissible reports whether a request of st may start now. l.mu is held.
func (l *Limiter) admissible(st *state) bool {
	if st.maxConc > 0 && st.inFlight >= st.maxConc {
		return false
	}
	if c := l.def.Capacity; c > 0 {
		free := c - l.busy
		if free <= 0 || (st.inFlight > 0 && free <= l.reserve) {
			return false
		}
	}
	return true
}

// take gives st a slot. l.mu is held.
func (l *Limiter) take(st *state) {
	st.inFlight++
	l.busy++
}

func (l *Limiter) releaser(st *state) func() {
	var once sync.Once
	return func() { once.Do(func() { l.release(st) }) }
}

// release frees st's slot and hands the freed capacity on.
func (l *Limiter) release(st *state) {
	l.mu.Lock()
	st.inFlight--
	l.busy--
	if l.waiting > 0 {
		l.dispatch()
	}
	l.mu.Unlock()
}

// dispatch grants slots to waiters while any may start, each to the head
// of the queue of the tenant that comes first (see the top of this file).
// l.mu is held.
func (l *Limiter) dispatch() {
	for l.waiting > 0 {
		var next *state
		for _, st := range l.queued {
			if l.admissible(st) && (next == nil || l.before(st, next)) {
				next = st
			}
		}
		if next == nil {
			return
		}
		w := next.queue[0]
		l.dequeue(next, w)
		w.granted = true
		l.take(next)
		close(w.ready)
	}
}

// before reports whether a's waiter goes before b's: a holds a smaller part
// of its cap, or as small a part and has waited longer. l.mu is held.
func (l *Limiter) before(a, b *state) bool {
	wa, wb := l.weight(a), l.weight(b)
	if x, y := a.inFlight*wb, b.inFlight*wa; x != y {
		return x < y
	}
	return a.queue[0].seq < b.queue[0].seq
}

// weight is a tenant's part of the server: its cap, or without one the
// whole capacity.
func (l *Limiter) weight(st *state) int {
	switch {
	case st.maxConc > 0:
		return st.maxConc
	case l.def.Capacity > 0:
		return l.def.Capacity
	}
	return 1
}

// dequeue removes w from st's queue, and st from the waiting tenants when
// that empties it. l.mu is held.
func (l *Limiter) dequeue(st *state, w *waiter) {
	w.out = true
	for i, q := range st.queue {
		if q == w {
			copy(st.queue[i:], st.queue[i+1:])
			st.queue[len(st.queue)-1] = nil
			st.queue = st.queue[:len(st.queue)-1]
			l.waiting--
			break
		}
	}
	if len(st.queue) == 0 && st.queuedAt >= 0 {
		last := l.queued[len(l.queued)-1]
		l.queued[st.queuedAt] = last
		last.queuedAt = st.queuedAt
		l.queued[len(l.queued)-1] = nil
		l.queued = l.queued[:len(l.queued)-1]
		st.queuedAt = -1
	}
}

// Stats is a snapshot of the limiter for metrics.
type Stats struct {
	Waiting  int // requests in the queues, all tenants
	InFlight int // slots held, all tenants
	Capacity int // Defaults.Capacity (0: unbounded)
}

// Stats reports the queues and slots now.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Waiting: l.waiting, InFlight: l.busy, Capacity: l.def.Capacity}
}
