// Package cache is the one cache of the process's shared lookups: API keys,
// bearer tokens, platform admin keys (package auth) and tenants (package
// tenancy). Anyone who can reach the server steers what is looked up, so
// these caches must not be steerable by unauthenticated requests (leak
// vector 13 in docs/SECURITY.md): they are bounded, evict the entry least
// likely to be used again, and are never emptied at once.
//
// Each Cache has two sides. The positive side holds what was found (a key,
// a token's principal, a tenant); it is an otter W-TinyLFU cache, which
// admits a new entry only when it is likely to be used more often than the
// one it would evict, so a flood of one-off entries cannot push frequent ones
// out. The negative side holds what was not found (a made-up key, an unknown
// tenant); it is a separate and smaller otter cache, so negative results can
// only ever evict negative results.
//
// Entries live for the TTL from the moment their lookup began (or until a
// deadline the value carries, such as a token's exp, if earlier): a lookup
// takes a Ticket before it asks the database, and the entry it stores with
// it lives until the Ticket's time plus the TTL, however long the lookup
// took, so that no answer is believed longer than the TTL after it was read.
// Delete and DeleteFunc take effect at once, also against lookups in flight:
// what a lookup stores with a Ticket older than a deletion is dropped when
// the deletion covers it (its key, or a DeleteFunc match of its value).
//
// A Refresher renews positive entries in use before they expire: lookups in
// the background, gathered into one batch every fraction of a second,
// instead of one in the next request's path. It never lets an entry outlive
// its TTL: what the refresh finds replaces the entry (a revoked key, a
// suspended tenant included); if the refresh fails, the entry expires when
// it would have.
package cache

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

// Default bounds, in entries, of each cache's two sides.
const (
	DefaultSize         = 10_000
	DefaultNegativeSize = 1_000
)

// RefreshAfter is the age from which a Refresher renews an entry of a cache
// whose positive TTL is ttl (Options.Refresh): four fifths of it. An entry
// used at least once in the last fifth of every TTL is renewed in the
// background and never costs a request a lookup; one used less often
// expires and is looked up when next needed.
func RefreshAfter(ttl time.Duration) time.Duration { return ttl * 4 / 5 }

// Options configures a Cache.
type Options[V any] struct {
	// Name identifies the cache in metrics (api_keys, tokens, ...).
	Name string
	// TTL is how long an entry is believed; <= 0 disables the cache (every
	// Get misses, stores are dropped). SetTTL changes it for positive
	// entries; negative ones always have this one.
	TTL time.Duration
	// Size and NegativeSize bound the two sides in entries (defaults
	// DefaultSize and DefaultNegativeSize).
	Size, NegativeSize int
	// Deadline, if set, ends a positive entry's life earlier than the TTL at
	// a time the value carries (a token's expiry); the zero time means none.
	Deadline func(V) time.Time
	// Now is a test's clock; nil means time.Now (and periodic clean-up of
	// expired entries, which a test clock goes without).
	Now func() time.Time
	// Refresh lets a Refresher renew positive entries from RefreshAfter of
	// the positive TTL. Not with Deadline.
	Refresh bool
}

// Result says what Get found.
type Result int

const (
	// Miss: the cache does not know; ask the source.
	Miss Result = iota
	// Hit: a positive entry; its value is returned.
	Hit
	// Absent: a negative entry: the source had nothing for the key.
	Absent
)

// Cache is a bounded two-sided cache; see the package comment. A nil *Cache
// is a disabled one. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	name string
	now  func() time.Time
	// ttl is the positive side's TTL (SetTTL), in ns; negTTL the negative's.
	ttl      atomic.Int64
	negTTL   time.Duration
	deadline func(V) time.Time
	known    *otter.Cache[K, entry[V]]
	unknown  *otter.Cache[K, entry[struct{}]]
	// deletions counts Delete and DeleteFunc calls (see Ticket); it is
	// written with mu held, and so is recent.
	deletions atomic.Uint64
	mu        sync.Mutex
	// recent are the last recentDeletions deletions, oldest first: what a
	// store with an older Ticket checks itself against.
	recent []deletion[K, V]
	// refresh is Options.Refresh (see Refresher).
	refresh bool
}

// recentDeletions bounds Cache.recent. A store whose Ticket is older than
// every deletion kept there is dropped, whatever its key: it is rare (that
// many deletions during one lookup) and errs on the safe side.
const recentDeletions = 64

// entry is a stored value with the end of its life (Unix ns).
type entry[V any] struct {
	v     V
	until int64
}

// deletion is one Delete (keys) or DeleteFunc (match) call, numbered gen.
type deletion[K comparable, V any] struct {
	gen   uint64
	keys  []K
	match func(K, V) bool
}

// Ticket is taken before a lookup and given back with its result. It holds
// when the lookup began, from which the stored entry's TTL counts, and how
// many deletions there had been: a result that a later deletion covers is
// not stored, so an answer read before a revocation cannot outlive it in
// the cache.
type Ticket struct {
	gen uint64
	at  int64 // Unix ns
	ttl int64 // the positive TTL then, in ns
}

// New returns a cache; with o.TTL <= 0 a disabled one.
func New[K comparable, V any](o Options[V]) *Cache[K, V] {
	c := &Cache[K, V]{name: o.Name, now: o.Now, negTTL: o.TTL, deadline: o.Deadline, refresh: o.Refresh}
	c.ttl.Store(int64(o.TTL))
	if o.TTL <= 0 {
		return c
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.NegativeSize <= 0 {
		o.NegativeSize = DefaultNegativeSize
	}
	var clock otter.Clock = clock{c.now}
	if c.now == nil {
		c.now, clock = time.Now, ticking{time.Now}
	}
	c.known = otter.Must(&otter.Options[K, entry[V]]{
		MaximumSize:      o.Size,
		ExpiryCalculator: otter.ExpiryWritingFunc(lifetime[K, V](c.now)),
		StatsRecorder:    stats.NewCounter(),
		Clock:            clock,
	})
	c.unknown = otter.Must(&otter.Options[K, entry[struct{}]]{
		MaximumSize:      o.NegativeSize,
		ExpiryCalculator: otter.ExpiryWritingFunc(lifetime[K, struct{}](c.now)),
		StatsRecorder:    stats.NewCounter(),
		Clock:            clock,
	})
	return c
}

// lifetime is what is left of an entry's life when it is written.
func lifetime[K comparable, V any](now func() time.Time) func(otter.Entry[K, entry[V]]) time.Duration {
	return func(e otter.Entry[K, entry[V]]) time.Duration {
		return max(time.Duration(e.Value.until-now().UnixNano()), time.Nanosecond)
	}
}

// Enabled reports whether the cache stores anything.
func (c *Cache[K, V]) Enabled() bool { return c != nil && c.known != nil }

// Name is the cache's name in metrics.
func (c *Cache[K, V]) Name() string { return c.name }

// Get looks key up: a positive entry (Hit, with its value), a negative one
// (Absent), or nothing (Miss).
func (c *Cache[K, V]) Get(key K) (V, Result) {
	var zero V
	if !c.Enabled() {
		return zero, Miss
	}
	if e, ok := c.known.GetIfPresent(key); ok {
		return e.v, Hit
	}
	if _, ok := c.unknown.GetIfPresent(key); ok {
		return zero, Absent
	}
	return zero, Miss
}

// TTL is the positive side's TTL now (0 when disabled).
func (c *Cache[K, V]) TTL() time.Duration {
	if !c.Enabled() {
		return 0
	}
	return time.Duration(c.ttl.Load())
}

// SetTTL changes the positive side's TTL (d > 0) for the entries of lookups
// whose Ticket is taken from now on. Shortening it also shortens every
// positive entry to live at most d from now, what lookups in flight store
// included: they were believed for the longer TTL. The entries stay (the
// cache is never emptied at once, leak vector 13). Package invalidation
// lengthens the TTL while every change reaches the cache at once, and
// shortens it back when that may no longer hold.
func (c *Cache[K, V]) SetTTL(d time.Duration) {
	if !c.Enabled() || d <= 0 {
		return
	}
	if old := time.Duration(c.ttl.Swap(int64(d))); d < old {
		limit := c.now().UnixNano() + int64(d)
		for k, e := range c.known.All() {
			if e.until > limit {
				c.known.SetExpiresAfter(k, d)
			}
		}
	}
}

// RefreshDue reports whether key's positive entry is in the last fifth of
// the positive TTL (older than RefreshAfter of it, for an entry stored with
// that TTL), so that a Refresher would renew it. A caller checks it before
// making what Refresher.Refresh needs, which is then made only when needed.
// An entry stored with a shorter TTL than the current one is due at once,
// and so is renewed with the longer one.
func (c *Cache[K, V]) RefreshDue(key K) bool {
	if !c.Enabled() || !c.refresh || c.deadline != nil {
		return false
	}
	e, ok := c.known.GetEntryQuietly(key)
	ttl := time.Duration(c.ttl.Load())
	return ok && e.ExpiresAtNano-c.now().UnixNano() <= int64(ttl-RefreshAfter(ttl))
}

// Ticket is to be taken before asking the source, and given to Set or
// SetAbsent with the answer.
func (c *Cache[K, V]) Ticket() Ticket {
	if !c.Enabled() {
		return Ticket{}
	}
	return Ticket{gen: c.deletions.Load(), at: c.now().UnixNano(), ttl: c.ttl.Load()}
}

// Set stores a positive entry until t's time plus the positive TTL (the
// one then, or the current one if SetTTL shortened it since: the answer was
// read at t's time either way), or the value's deadline if earlier, unless
// that has passed or a deletion since t was taken covers it.
func (c *Cache[K, V]) Set(t Ticket, key K, v V) {
	if !c.Enabled() {
		return
	}
	until := t.at + min(t.ttl, c.ttl.Load())
	if c.deadline != nil {
		if dl := c.deadline(v); !dl.IsZero() {
			until = min(until, dl.UnixNano())
		}
	}
	if until <= c.now().UnixNano() {
		return
	}
	c.unknown.Invalidate(key)
	c.known.Set(key, entry[V]{v, until})
	// SetTTL swaps first and then shortens what it finds; a store stores
	// first and then looks again: either SetTTL finds this entry, or this
	// sees the shorter TTL.
	if short := t.at + c.ttl.Load(); until > short {
		if left := time.Duration(short - c.now().UnixNano()); left > 0 {
			c.known.SetExpiresAfter(key, left)
		} else {
			c.known.Invalidate(key)
		}
	}
	c.settle(t, key, &v)
}

// SetAbsent stores a negative entry (the source has nothing for key) until
// t's time plus Options.TTL, unless that has passed or a deletion of key since
// t was taken covers it.
func (c *Cache[K, V]) SetAbsent(t Ticket, key K) {
	if !c.Enabled() {
		return
	}
	until := t.at + int64(c.negTTL)
	if until <= c.now().UnixNano() {
		return
	}
	c.known.Invalidate(key)
	c.unknown.Set(key, entry[struct{}]{until: until})
	c.settle(t, key, nil)
}

// settle removes what a store with ticket t put in when a deletion since t
// covers it: one of key, or a DeleteFunc whose match is true of v (nil for
// a negative entry, which DeleteFunc leaves). Deletions count (and log)
// first and then delete; stores store first and then compare: either the
// store sees the deletion and removes its entry, or the deletion comes
// after the store and removes it.
func (c *Cache[K, V]) settle(t Ticket, key K, v *V) {
	if c.deletions.Load() == t.gen || !c.covered(t, key, v) {
		return
	}
	c.known.Invalidate(key)
	c.unknown.Invalidate(key)
}

// covered reports whether a deletion since t covers key (with value v).
func (c *Cache[K, V]) covered(t Ticket, key K, v *V) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recent) == 0 || c.recent[0].gen > t.gen+1 {
		return true // a deletion since t is no longer known: assume it covers key
	}
	for _, d := range c.recent {
		if d.gen <= t.gen {
			continue
		}
		if slices.Contains(d.keys, key) || (d.match != nil && v != nil && d.match(key, *v)) {
			return true
		}
	}
	return false
}

// record counts and logs a deletion, before it deletes anything.
func (c *Cache[K, V]) record(d deletion[K, V]) {
	c.mu.Lock()
	d.gen = c.deletions.Add(1)
	c.recent = append(c.recent, d)
	if len(c.recent) > recentDeletions {
		c.recent = slices.Delete(c.recent, 0, len(c.recent)-recentDeletions)
	}
	c.mu.Unlock()
}

// Delete removes keys from both sides, at once, and keeps lookups in flight
// from storing them.
func (c *Cache[K, V]) Delete(keys ...K) {
	if !c.Enabled() {
		return
	}
	c.record(deletion[K, V]{keys: slices.Clone(keys)})
	for _, k := range keys {
		c.known.Invalidate(k)
		c.unknown.Invalidate(k)
	}
}

// DeleteAll removes every positive entry, and keeps lookups in flight
// from storing theirs (DeleteFunc matching all).
func (c *Cache[K, V]) DeleteAll() { c.DeleteFunc(func(K, V) bool { return true }) }

// DeleteFunc removes every positive entry for which match is true (every
// API key of a user, say), and keeps lookups in flight from storing such a
// value: match is also asked about what they bring. It walks the whole
// positive side: for rare changes, not for the request path. match must be
// safe for concurrent use and must not call the cache.
func (c *Cache[K, V]) DeleteFunc(match func(K, V) bool) {
	if !c.Enabled() {
		return
	}
	c.record(deletion[K, V]{match: match})
	var doomed []K
	for k, e := range c.known.All() {
		if match(k, e.v) {
			doomed = append(doomed, k)
		}
	}
	for _, k := range doomed {
		c.known.Invalidate(k)
	}
}

// Stats are a cache's counters since it was made, for metrics.
type Stats struct {
	// Hits, AbsentHits and Misses count Get's results.
	Hits, AbsentHits, Misses uint64
	// Evictions and NegativeEvictions count entries each side dropped to
	// stay within its size (not expiries, not deletions).
	Evictions, NegativeEvictions uint64
	// Entries and NegativeEntries are the sides' current sizes (estimates).
	Entries, NegativeEntries int
}

// Stats returns the cache's counters (zero when disabled).
func (c *Cache[K, V]) Stats() Stats {
	if !c.Enabled() {
		return Stats{}
	}
	k, u := c.known.Stats(), c.unknown.Stats()
	// Get asks the negative side only after a positive miss, so its misses
	// are Get's misses.
	return Stats{Hits: k.Hits, AbsentHits: u.Hits, Misses: u.Misses,
		Evictions: k.Evictions, NegativeEvictions: u.Evictions,
		Entries: c.known.EstimatedSize(), NegativeEntries: c.unknown.EstimatedSize()}
}

// Observable is what metrics read from a cache.
type Observable interface {
	Name() string
	Stats() Stats
}

// ticking is otter's clock in production: time.Now, and ticks that drive
// otter's periodic clean-up of expired entries (the ticker goes with the
// clean-up goroutine, which ends once the cache is unreachable).
type ticking struct{ now func() time.Time }

func (c ticking) NowNano() int64                        { return c.now().UnixNano() }
func (c ticking) Tick(d time.Duration) <-chan time.Time { return time.NewTicker(d).C }

// clock is a test's Options.Now, without periodic clean-up, so that nothing
// but the test's own calls reads its clock (entries past their time are
// still never returned, and the size bound holds).
type clock struct{ now func() time.Time }

func (c clock) NowNano() int64                      { return c.now().UnixNano() }
func (c clock) Tick(time.Duration) <-chan time.Time { return nil }
