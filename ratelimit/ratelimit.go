// Package ratelimit contains noisy neighbours: each tenant has a token
// bucket (requests per second, burst) and a cap on how many of its requests
// may do database work at once, so that no tenant can take more than its
// share of the pool. Both have server-wide defaults and per-tenant overrides
// stored with the tenant (tenancy.Limits).
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

// Defaults apply to every tenant without an override. A zero RatePerSecond
// disables rate limiting; a zero MaxConcurrency disables the cap.
type Defaults struct {
	RatePerSecond  float64
	Burst          int
	MaxConcurrency int
}

// Reasons a request is refused.
const (
	ReasonRate        = "rate"
	ReasonConcurrency = "concurrency"
)

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	Reason  string // when refused: ReasonRate or ReasonConcurrency
	// For the RateLimit and RateLimit-Policy headers (zero Quota: no rate limit).
	Quota     int           // the bucket size
	Window    time.Duration // time to refill an empty bucket
	Remaining int           // whole tokens left
	Reset     time.Duration // until the bucket is full again
	// RetryAfter, when refused: until a request could pass.
	RetryAfter time.Duration
}

// Limiter holds every tenant's state. The zero value is not usable; use New.
type Limiter struct {
	def Defaults
	now func() time.Time

	mu      sync.Mutex
	tenants map[uuid.UUID]*state
}

type state struct {
	bucket   *rate.Limiter // nil: unlimited
	rate     float64
	burst    int
	inFlight int
	lastUsed time.Time
}

// Past sweepAbove tenants the map is swept: tenants idle for idleAfter with
// nothing in flight are forgotten (a new bucket starts full, which an idle
// tenant's bucket is by then for any rate of at least burst per minute).
const (
	sweepAbove = 10000
	idleAfter  = time.Minute
)

// New returns a Limiter with the server's defaults.
func New(def Defaults) *Limiter {
	if def.Burst <= 0 && def.RatePerSecond > 0 {
		def.Burst = max(1, int(math.Ceil(def.RatePerSecond)))
	}
	return &Limiter{def: def, now: time.Now, tenants: map[uuid.UUID]*state{}}
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

// Acquire decides on one request of tenant. When allowed, release must be
// called once the request's database work is done.
func (l *Limiter) Acquire(tenant uuid.UUID, overrides tenancy.Limits) (d Decision, release func()) {
	r, burst, maxConc := l.effective(overrides)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.tenants[tenant]
	if st == nil {
		if len(l.tenants) >= sweepAbove {
			l.sweep(now)
		}
		st = &state{}
		l.tenants[tenant] = st
	}
	st.lastUsed = now
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
			d.Reason, d.RetryAfter = ReasonRate, seconds((1-tokens)/r)
			d.Reset = seconds((float64(burst) - tokens) / r)
			return d, func() {}
		}
		tokens := st.bucket.TokensAt(now)
		d.Remaining = max(0, int(tokens))
		d.Reset = seconds((float64(burst) - tokens) / r)
	}
	if maxConc > 0 && st.inFlight >= maxConc {
		// Refused at once rather than queued: a tenant at its cap must not
		// make everyone else wait behind it for a pooled connection.
		d.Reason, d.RetryAfter = ReasonConcurrency, time.Second
		return d, func() {}
	}
	st.inFlight++
	d.Allowed = true
	var once sync.Once
	return d, func() {
		once.Do(func() {
			l.mu.Lock()
			st.inFlight--
			l.mu.Unlock()
		})
	}
}

// sweep forgets idle tenants; l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	for id, st := range l.tenants {
		if st.inFlight == 0 && now.Sub(st.lastUsed) > idleAfter {
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
