package tenancy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
)

// Resolver turns a Key into a Tenant, caching answers (found and not found)
// for TTL so that a request's only database round trip is its own work.
// A suspension or a new tenant therefore takes effect within TTL.
type Resolver struct {
	pool *pgxpool.Pool
	ttl  time.Duration
	max  int
	now  func() time.Time

	timeout time.Duration

	mu      sync.Mutex
	entries map[Key]entry
}

type entry struct {
	tenant  Tenant
	found   bool
	expires time.Time
}

// DefaultTTL bounds how long a cached tenant (or its absence) is believed.
const DefaultTTL = 5 * time.Second

// maxEntries bounds the cache; past it the cache starts over, so a flood of
// made-up keys costs lookups, not memory.
const maxEntries = 10000

// NewResolver resolves through pool (the app role's). ttl <= 0 disables the cache.
func NewResolver(pool *pgxpool.Pool, ttl time.Duration) *Resolver {
	return &Resolver{pool: pool, ttl: ttl, max: maxEntries, now: time.Now, entries: map[Key]entry{}}
}

// WithTimeout bounds each lookup, the wait for a pooled connection
// included; past it the lookup fails as db.ErrUnavailable. It returns r.
func (r *Resolver) WithTimeout(d time.Duration) *Resolver {
	r.timeout = d
	return r
}

// Forget drops a tenant from this instance's cache, so that a change made
// here (suspension, deletion, limits) applies at once; other instances see
// it within the TTL.
func (r *Resolver) Forget(id uuid.UUID, slug string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, Key{ID: id})
	delete(r.entries, Key{Slug: slug})
}

// Resolve returns the tenant for key, or ErrUnknown.
func (r *Resolver) Resolve(ctx context.Context, key Key) (Tenant, error) {
	if r.ttl > 0 {
		r.mu.Lock()
		e, ok := r.entries[key]
		r.mu.Unlock()
		if ok && r.now().Before(e.expires) {
			if !e.found {
				return Tenant{}, ErrUnknown
			}
			return e.tenant, nil
		}
	}
	params := db.TenantLookupParams{}
	if key.Slug != "" {
		params.Slug = &key.Slug
	} else {
		params.ID = &key.ID
	}
	lctx := ctx
	if r.timeout > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	row, err := db.Unscoped(r.pool).TenantLookup(lctx, params)
	found := err == nil
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return Tenant{}, err // unreachable database: db.ErrUnavailable, a 503
	}
	t := Tenant{ID: row.ID, Slug: row.Slug, Status: row.Status, Limits: Limits{
		RatePerSecond: row.RateLimit, Burst: int(row.RateBurst), MaxConcurrency: int(row.MaxConcurrency),
		StatementTimeout: time.Duration(row.StatementTimeoutMs) * time.Millisecond}}
	if r.ttl > 0 {
		r.mu.Lock()
		if len(r.entries) >= r.max {
			clear(r.entries)
		}
		r.entries[key] = entry{tenant: t, found: found, expires: r.now().Add(r.ttl)}
		r.mu.Unlock()
	}
	if !found {
		return Tenant{}, ErrUnknown
	}
	return t, nil
}
