package tenancy

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/cache"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/invalidation"
)

// Resolver turns a Key into a Tenant, caching answers (found and not found)
// for TTL so that a request's only database round trip is its own work.
// A suspension or a new tenant therefore takes effect within TTL. The cache
// is bounded and unknown tenants cannot evict known ones (package cache,
// leak vector 13).
type Resolver struct {
	pool      *pgxpool.Pool
	ttl       time.Duration
	cache     *cache.Cache[Key, Tenant]
	refresher *cache.Refresher[Key, Tenant, Key]

	timeout time.Duration
}

// DefaultTTL bounds how long a cached tenant (or its absence) is believed.
const DefaultTTL = 5 * time.Second

// NewResolver resolves through pool (the app role's). ttl <= 0 disables the cache.
func NewResolver(pool *pgxpool.Pool, ttl time.Duration) *Resolver { return newResolver(pool, ttl, nil) }

// newResolver is NewResolver with a test's clock (nil: time.Now).
func newResolver(pool *pgxpool.Pool, ttl time.Duration, clock func() time.Time) *Resolver {
	r := &Resolver{pool: pool, ttl: ttl, cache: cache.New[Key, Tenant](cache.Options[Tenant]{Name: "tenants", TTL: ttl, Now: clock,
		Refresh: true})}
	r.refresher = cache.NewRefresher(r.cache, r.lookupMany, 0)
	return r
}

// WithTimeout bounds each lookup, the wait for a pooled connection
// included; past it the lookup fails as db.ErrUnavailable. It returns r.
func (r *Resolver) WithTimeout(d time.Duration) *Resolver {
	r.timeout = d
	r.refresher = cache.NewRefresher(r.cache, r.lookupMany, d)
	return r
}

// Caches are the resolver's caches, for metrics.
func (r *Resolver) Caches() []cache.Observable { return []cache.Observable{r.cache} }

// Forget drops a tenant from this instance's cache, by id and by slug
// ("" when unknown), so that a change made here (suspension, deletion,
// limits) applies at once; other instances see it within the TTL.
func (r *Resolver) Forget(id uuid.UUID, slug string) {
	r.forget(map[uuid.UUID]struct{}{id: {}}, Key{Slug: slug}) // the slug's negative entry, say
}

// ForgetTenants drops tenants from the cache, by id and by any slug (an
// invalidation.Cache: the database announced a change to them, their
// placement included).
func (r *Resolver) ForgetTenants(tenants map[uuid.UUID]struct{}) { r.forget(tenants) }

// forget drops tenants' positive entries (whatever their key) and the
// entries of their ids and of keys, both sides.
func (r *Resolver) forget(tenants map[uuid.UUID]struct{}, keys ...Key) {
	r.cache.DeleteFunc(func(_ Key, t Tenant) bool { _, ok := tenants[t.ID]; return ok })
	for id := range tenants {
		keys = append(keys, Key{ID: id})
	}
	r.cache.Delete(keys...)
}

// ForgetAll drops every cached tenant (an invalidation.Cache).
func (r *Resolver) ForgetAll() { r.cache.DeleteAll() }

// Listening keeps tenants for invalidation.ExtendedTTL while every change
// is heard, and for the resolver's TTL otherwise (an invalidation.Cache).
func (r *Resolver) Listening(live bool) { r.cache.SetTTL(invalidation.TTL(r.ttl, live)) }

// Resolve returns the tenant for key, or ErrUnknown. A tenant in use is
// looked up again in the background before its entry expires, with others
// in one statement (cache.Refresher), instead of in a request's path.
func (r *Resolver) Resolve(ctx context.Context, key Key) (Tenant, error) {
	switch t, res := r.cache.Get(key); res {
	case cache.Hit:
		r.refresher.Refresh(key, key)
		return t, nil
	case cache.Absent:
		return Tenant{}, ErrUnknown
	}
	ticket := r.cache.Ticket()
	lctx := ctx
	if r.timeout > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	t, found, err := r.lookup(lctx, key)
	switch {
	case err != nil:
		return Tenant{}, err // unreachable database: db.ErrUnavailable, a 503
	case !found:
		r.cache.SetAbsent(ticket, key)
		return Tenant{}, ErrUnknown
	}
	r.cache.Set(ticket, key, t)
	return t, nil
}

// lookup reads the tenant key names (found false: none).
func (r *Resolver) lookup(ctx context.Context, key Key) (t Tenant, found bool, err error) {
	got, err := r.lookupMany(ctx, []Key{key})
	if err != nil {
		return Tenant{}, false, err
	}
	return got[0].Value, got[0].Found, nil
}

// lookupMany reads the tenants keys name, in one statement: a
// cache.LoadMany.
func (r *Resolver) lookupMany(ctx context.Context, keys []Key) ([]cache.Loaded[Tenant], error) {
	params := dbsqlc.TenantLookupParams{Ids: make([]uuid.UUID, len(keys)), Slugs: make([]string, len(keys))}
	for i, k := range keys {
		params.Ids[i], params.Slugs[i] = k.ID, k.Slug
		if k.Slug != "" {
			params.Ids[i] = uuid.Nil // as before: a key is its slug or its id
		}
	}
	rows, err := db.Unscoped(r.pool).TenantLookup(ctx, params)
	if err != nil {
		return nil, err
	}
	out := make([]cache.Loaded[Tenant], len(keys))
	for _, row := range rows {
		// tenant_lookup's status is tenants.status, as text: sqlc types a
		// table's column (sqlc.yaml), not a function's.
		t := Tenant{ID: row.ID, Slug: row.Slug, Status: dbtype.TenantStatus(row.Status), Limits: Limits{
			RatePerSecond: row.RateLimit, Burst: int(row.RateBurst), MaxConcurrency: int(row.MaxConcurrency),
			StatementTimeout: time.Duration(row.StatementTimeoutMs) * time.Millisecond}}
		if row.Cell != DefaultCell {
			t.Cell = row.Cell
		}
		out[row.N-1] = cache.Loaded[Tenant]{Value: t, Found: true}
	}
	return out, nil
}
