// Package ratelimit contains noisy neighbours: each tenant has a token
// bucket (requests per second, burst) and a share of the server's database
// slots (a cap on how many of its requests may do database work at once).
// Both have server-wide defaults and per-tenant overrides stored with the
// tenant (tenancy.Limits).
//
// A request past its tenant's share, or arriving while the server's slots
// are taken, waits its turn in its tenant's queue (FIFO, bounded in length
// and in time) rather than being refused at once; see fair.go for how a
// freed slot is given out across tenants.
//
// Limits are per instance: N instances behind a load balancer allow a tenant
// up to N times its rate. Size the defaults for that.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/rowfence/rowfence/tenancy"
)

// Defaults apply to every tenant without an override, and bound the server
// as a whole. A zero RatePerSecond disables rate limiting; a zero
// MaxConcurrency disables the per-tenant cap; a zero Capacity the
// server-wide one; a zero QueueTimeout or QueueLength refuses a request
// that would have to wait at once (429, as before queueing existed).
type Defaults struct {
	RatePerSecond  float64
	Burst          int
	MaxConcurrency int
	// Capacity is how many requests of all tenants may do database work at
	// once: the app pool's size (pool_max_conns), so that an admitted request
	// finds a connection and the order of service is decided here, fairly,
	// rather than by who reaches the pool first.
	Capacity int
	// QueueLength bounds a tenant's waiting requests (memory, and goroutines
	// parked); one more is refused at once with ReasonQueueFull.
	QueueLength int
	// QueueTimeout bounds a request's wait for a slot.
	QueueTimeout time.Duration
}

// Defaults of TENANT_QUEUE_LENGTH and TENANT_QUEUE_TIMEOUT.
const (
	DefaultQueueLength  = 64
	DefaultQueueTimeout = 2 * time.Second
)

// Reasons a request is refused.
const (
	// ReasonRate: over the tenant's token bucket (429 rate-limited).
	ReasonRate = "rate"
	// ReasonConcurrency: the tenant's share was in use for the whole
	// QueueTimeout, or queueing is off (429 concurrency-limited).
	ReasonConcurrency = "concurrency"
	// ReasonQueueFull: QueueLength of the tenant's requests are already
	// waiting (429 concurrency-limited).
	ReasonQueueFull = "queue_full"
	// ReasonOverloaded: the request waited QueueTimeout while its tenant had
	// nothing in progress: the server's slots were all taken by others, not
	// by this tenant (503 unavailable).
	ReasonOverloaded = "overloaded"
	// ReasonCanceled: the request's context ended while it waited (the
	// client went away, or a deadline passed).
	ReasonCanceled = "canceled"
)

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	Reason  string // when refused: one of the Reason constants
	// For the RateLimit and RateLimit-Policy headers (zero Quota: no rate limit).
	Quota     int           // the bucket size
	Window    time.Duration // time to refill an empty bucket
	Remaining int           // whole tokens left
	Reset     time.Duration // until the bucket is full again
	// RetryAfter, when refused: until a request could pass.
	RetryAfter time.Duration
	// Queued says the request waited in its tenant's queue, for Waited.
	Queued bool
	Waited time.Duration
}

// Limiter holds every tenant's state. The zero value is not usable; use New.
type Limiter struct {
	def     Defaults
	reserve int // slots kept for tenants with nothing in progress (fair.go)
	now     func() time.Time

	mu      sync.Mutex
	tenants map[uuid.UUID]*state
	busy    int      // slots held, all tenants
	queued  []*state // tenants with waiters, in no particular order
	waiting int      // waiters, all tenants
	seq     uint64   // arrival order of waiters
	// waiters, expiry and expiryArmed are the queue timeouts' (fair.go).
	waiters     []*waiter
	expiry      *time.Timer
	expiryArmed bool
}

type state struct {
	bucket   *rate.Limiter // nil: unlimited
	rate     float64
	burst    int
	maxConc  int // the cap as of the tenant's latest request (0: none)
	inFlight int
	lastUsed time.Time
	queue    []*waiter // FIFO
	queuedAt int       // index in Limiter.queued, -1 when not there
}

// Past sweepAbove tenants the map is swept: tenants idle for idleAfter with
// nothing in flight or waiting are forgotten (a new bucket starts full,
// which an idle tenant's bucket is by then for any rate of at least burst
// per minute).
const (
	sweepAbove = 10000
	idleAfter  = time.Minute
)

// New returns a Limiter with the server's defaults.
func New(def Defaults) *Limiter {
	if def.Burst <= 0 && def.RatePerSecond > 0 {
		def.Burst = max(1, int(math.Ceil(def.RatePerSecond)))
	}
	return &Limiter{def: def, reserve: reserveOf(def.Capacity), now: time.Now, tenants: map[uuid.UUID]*state{}}
}

// effective merges a tenant's overrides with the defaults.
func (l *Limiter) effective(o tenancy.Limits) (ratePerSecond float64, burst, maxConcurrency int) {
	ratePerSecond, burst, maxConcurrency = l.def.RatePerSecond, l.def.Burst, l.def.MaxConcurrency
	if o.RatePerSecond > 0 {
		ratePerSecond = o.RatePerSecond
		if o.Burst == 0 {
			burst = max(1, int(math.Ceil(o.RatePerSecond)))
		}
	}
	if o.Burst > 0 {
		burst = o.Burst
	}
	if o.MaxConcurrency > 0 {
		maxConcurrency = o.MaxConcurrency
	}
	return ratePerSecond, burst, maxConcurrency
}

// sweep forgets idle tenants; l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	for id, st := range l.tenants {
		if st.inFlight == 0 && len(st.queue) == 0 && now.Sub(st.lastUsed) > idleAfter {
			delete(l.tenants, id)
		}
	}
}

func seconds(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// Defaults are the limits l was made with (New's, Burst filled in).
func (l *Limiter) Defaults() Defaults { return l.def }
