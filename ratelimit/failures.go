package ratelimit

import (
	"crypto/sha256"
	"net/netip"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"golang.org/x/time/rate"

	"github.com/rowfence/rowfence/cache"
)

// Failures throttles the clients that send failed credentials (unknown,
// forged, revoked, expired or malformed), per client address: each address
// may fail Limit times in a burst, refilled at Limit per Window. Past that
// it is throttled until a failure's worth has refilled; while throttled, the
// server answers 429 to its credentials instead of looking them up, so
// made-up credentials cost the database at most Limit lookups per Window
// and address (leak vector 13).
//
// Addresses are grouped as an attacker holds them: an IPv4 address alone,
// an IPv6 address with its /64 (one host usually has the whole /64). The
// limiters are kept in a bounded otter cache (W-TinyLFU, entries idle for a
// Window dropped, a limiter by then being full again), so the table cannot
// grow without bound; a client whose limiter is evicted starts full again.
//
// A nil *Failures throttles no one.
type Failures struct {
	limit   int
	every   rate.Limit
	now     func() time.Time
	clients *otter.Cache[netip.Prefix, *rate.Limiter]
	vouched *otter.Cache[[sha256.Size]byte, struct{}] // credentials verified lately, by digest
}

// DefaultFailureLimit and DefaultFailureWindow are the defaults of
// AUTH_FAILURE_LIMIT and AUTH_FAILURE_WINDOW.
const (
	DefaultFailureLimit  = 60
	DefaultFailureWindow = time.Minute
	// FailureClients bounds the number of client addresses tracked.
	FailureClients = 10_000
	// VouchFor is how long a verified credential keeps being looked up
	// from a throttled address after its last success, and VouchedCredentials
	// how many are remembered (digests, never the credentials).
	VouchFor           = 24 * time.Hour
	VouchedCredentials = 100_000
)

// NewFailures allows limit failed credentials per window and address;
// limit <= 0 returns nil (no throttling).
func NewFailures(limit int, window time.Duration) *Failures {
	if limit <= 0 || window <= 0 {
		return nil
	}
	return &Failures{limit: limit, every: rate.Limit(float64(limit) / window.Seconds()), now: time.Now,
		clients: otter.Must(&otter.Options[netip.Prefix, *rate.Limiter]{
			MaximumSize:      FailureClients,
			ExpiryCalculator: otter.ExpiryAccessing[netip.Prefix, *rate.Limiter](window),
			StatsRecorder:    stats.NewCounter(),
		}),
		vouched: otter.Must(&otter.Options[[sha256.Size]byte, struct{}]{
			MaximumSize:      VouchedCredentials,
			ExpiryCalculator: otter.ExpiryAccessing[[sha256.Size]byte, struct{}](VouchFor),
		})}
}

// Vouch records that cred was verified, and Unvouch that it failed. A
// throttled address still has the credentials vouched for looked up (in
// the database, so a revoked one fails): the good clients that share an
// address with one sending made-up credentials (a NAT, a proxy not in
// TRUSTED_PROXIES) go on working for longer than the credential cache
// remembers them, while a credential seen nowhere waits with its address.
func (f *Failures) Vouch(cred string) {
	if f != nil {
		f.vouched.Set(sha256.Sum256([]byte(cred)), struct{}{})
	}
}

// Unvouch forgets cred (see Vouch).
func (f *Failures) Unvouch(cred string) {
	if f != nil {
		f.vouched.Invalidate(sha256.Sum256([]byte(cred)))
	}
}

// Vouched reports whether cred was verified within VouchFor (see Vouch).
func (f *Failures) Vouched(cred string) bool {
	if f == nil {
		return false
	}
	_, ok := f.vouched.GetIfPresent(sha256.Sum256([]byte(cred)))
	return ok
}

// ClientKey is the group an address is throttled as: an IPv4 address
// (IPv4-mapped IPv6 included) alone, an IPv6 address's /64.
func ClientKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Throttled reports whether addr may not have a credential looked up now,
// and if so how long until it may.
func (f *Failures) Throttled(addr netip.Addr) (retryAfter time.Duration, throttled bool) {
	if f == nil || !addr.IsValid() {
		return 0, false
	}
	lim, ok := f.clients.GetIfPresent(ClientKey(addr))
	if !ok {
		return 0, false
	}
	tokens := lim.TokensAt(f.now())
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(f.every) * float64(time.Second)), true
}

// Failed records a failed credential from addr.
func (f *Failures) Failed(addr netip.Addr) {
	if f == nil || !addr.IsValid() {
		return
	}
	lim, _ := f.clients.ComputeIfAbsent(ClientKey(addr), func() (*rate.Limiter, bool) {
		return rate.NewLimiter(f.every, f.limit), false
	})
	lim.AllowN(f.now(), 1)
}

// Name is the limiter table's name in metrics.
func (f *Failures) Name() string { return "auth_failures" }

// Stats reports the limiter table as a cache, for metrics: Hits are checks
// of an address with recent failures, Misses of one without, Entries the
// addresses tracked.
func (f *Failures) Stats() cache.Stats {
	if f == nil {
		return cache.Stats{}
	}
	s := f.clients.Stats()
	return cache.Stats{Hits: s.Hits, Misses: s.Misses, Evictions: s.Evictions, Entries: f.clients.EstimatedSize()}
}
