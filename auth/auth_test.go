package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/cache"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestAPIKeyRoundTrip(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	k, err := NewAPIKey(tenant)
	require.NoError(t, err)
	s := k.String()
	require.Len(t, s, apiKeyLen)
	require.True(t, LooksLikeAPIKey(s))
	back, err := ParseAPIKey(s)
	require.NoError(t, err)
	require.Equal(t, k, back)
	require.Len(t, k.Hash(), 32)
	other, err := NewAPIKey(tenant)
	require.NoError(t, err)
	require.NotEqual(t, k.Secret, other.Secret)
	require.NotEqual(t, k.ID, other.ID)

	for _, bad := range []string{"", "rfk_", s[:len(s)-1], s + "0", strings.ToUpper(s), "rfx" + s[3:],
		strings.Replace(s, "_", "-", 2), s[:36] + "x" + s[37:], s[:len(s)-1] + "g",
		"rfk_" + strings.Repeat("0", 32) + s[36:]} {
		_, err := ParseAPIKey(bad)
		require.ErrorIs(t, err, ErrMalformed, "%q", bad)
	}
}

func TestBearerCredential(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc": "abc"} {
		got, err := BearerCredential([]string{in})
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "abc"} {
		_, err := BearerCredential([]string{in})
		require.ErrorIs(t, err, ErrNoBearer, "%q", in)
	}
	_, err := BearerCredential(nil)
	require.ErrorIs(t, err, ErrNoBearer, "no header")
	// Two fields, even two good ones: which was meant is unknown.
	_, err = BearerCredential([]string{"Bearer abc", "Bearer abc"})
	require.ErrorIs(t, err, ErrSeveralAuthorization)
}

// The cache makes a repeated credential free, and still takes a revocation
// into account within its TTL: the documented bound.
func TestCacheBoundsRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	tenant := uuid.New()
	scope := db.Scope{TenantID: tenant, Role: dbtype.RoleAdmin}
	var key string
	var keyRow dbsqlc.APIKey
	require.NoError(t, db.Tx(ctx, admin, scope, func(q *dbsqlc.Queries) error {
		if _, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: tenant, Slug: "acme", Name: "Acme"}); err != nil {
			return err
		}
		u, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "A", Email: "a@example.com", Role: "member"})
		if err != nil {
			return err
		}
		keyRow, key, err = IssueKey(ctx, q, tenant, u.ID, dbtype.RoleMember, "k", nil)
		return err
	}))

	// Count the lookups the authenticator makes, at the driver.
	tracer := &keyLookups{}
	cfg, err := pgxpool.ParseConfig(tdb.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = tracer
	app, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	var clock atomic.Int64 // the test's time, in Unix nanoseconds
	clock.Store(time.Now().UnixNano())
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	a, err := newAuthenticator(Config{Pool: app, CacheTTL: 5 * time.Second}, func() time.Time { return time.Unix(0, clock.Load()) })
	require.NoError(t, err)
	lookups := &tracer.n
	countingLookup := func() (Principal, error) { return a.Authenticate(ctx, key) }

	p, err := countingLookup()
	require.NoError(t, err)
	require.Equal(t, Principal{TenantID: tenant, UserID: keyRow.UserID, Role: dbtype.RoleMember, KeyID: keyRow.ID, Kind: KindAPIKey}, p)
	first := lookups.Load()
	require.Positive(t, first, "the first use looks the key up")
	for range 5 {
		_, err := countingLookup()
		require.NoError(t, err)
	}
	require.Equal(t, first, lookups.Load(), "later uses within the TTL are answered from the cache")

	_, err = db.One(ctx, admin, scope, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyRevoke(ctx, keyRow.ID) })
	require.NoError(t, err)
	advance(4 * time.Second)
	_, err = a.Authenticate(ctx, key)
	require.NoError(t, err, "within the TTL a revoked key may still pass (on another instance)")
	advance(2 * time.Second)
	_, err = a.Authenticate(ctx, key)
	require.ErrorIs(t, err, ErrInvalid, "past the TTL the revocation holds")

	// A wrong secret for a cached key is refused without a lookup.
	k, err := ParseAPIKey(key)
	require.NoError(t, err)
	k.Secret[0] ^= 1
	n := lookups.Load()
	_, err = a.Authenticate(ctx, k.String())
	require.ErrorIs(t, err, ErrInvalid)
	require.Equal(t, n, lookups.Load())

	// A database that does not answer is not the client's fault.
	down, err := New(Config{Pool: app})
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = down.Authenticate(cctx, key)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrInvalid))
}

// keyLookups counts the statements sent that read api_keys.
type keyLookups struct{ n atomic.Int32 }

func (k *keyLookups) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (k *keyLookups) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if strings.Contains(d.SQL, "FROM api_keys k") {
		k.n.Add(1)
	}
}

func (k *keyLookups) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (k *keyLookups) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (k *keyLookups) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// statements counts every statement a pool sends.
type statements struct{ n atomic.Int64 }

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Issue #14 item 5, for platform admin keys: 10,000 made-up rfp_ keys (one
// lookup each) emptied the cache, so a good key had to be looked up again
// (leak vector 13).
func TestMadeUpPlatformKeysCannotFlushTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	_, good, err := IssuePlatformKey(ctx, dbsqlc.New(tdb.PlatformPool(t)), "ops")
	require.NoError(t, err)
	counter := &statements{}
	cfg, err := pgxpool.ParseConfig(tdb.PlatformPool(t).Config().ConnString())
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = counter
	cfg.MaxConns = 4
	pool, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	p := NewPlatform(pool, time.Hour)

	_, err = p.Verify(ctx, good)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2_501 {
				k, err := NewPlatformKey()
				require.NoError(t, err)
				if _, err := p.Verify(ctx, k.String()); !errors.Is(err, ErrInvalid) {
					t.Errorf("a made-up key: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	before := counter.n.Load()
	_, err = p.Verify(ctx, good)
	require.NoError(t, err)
	require.Equal(t, int64(0), counter.n.Load()-before, "10,004 made-up keys evicted the good one")
}

// AuthenticateIf looks in the cache once: a miss is one miss in the cache's
// statistics (rowfence_cache_lookups_total), whether the lookup is then
// allowed or not, and lookup is asked only on a miss.
func TestAuthenticateIfCountsOneLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	tenant := uuid.New()
	scope := db.Scope{TenantID: tenant, Role: dbtype.RoleAdmin}
	var key string
	require.NoError(t, db.Tx(ctx, admin, scope, func(q *dbsqlc.Queries) error {
		if _, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: tenant, Slug: "acme", Name: "Acme"}); err != nil {
			return err
		}
		u, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "A", Email: "a@example.com", Role: "member"})
		if err != nil {
			return err
		}
		_, key, err = IssueKey(ctx, q, tenant, u.ID, dbtype.RoleMember, "k", nil)
		return err
	}))
	a, err := New(Config{Pool: tdb.AppPool(t, 2), CacheTTL: time.Minute})
	require.NoError(t, err)
	asked := 0
	refuse := func() bool { asked++; return false }
	_, err = a.AuthenticateIf(ctx, key, refuse)
	require.ErrorIs(t, err, ErrNotCached)
	require.Equal(t, 1, asked)
	require.Equal(t, uint64(1), a.keys.Stats().Misses)
	_, err = a.AuthenticateIf(ctx, key, func() bool { asked++; return true })
	require.NoError(t, err)
	require.Equal(t, 2, asked)
	require.Equal(t, uint64(2), a.keys.Stats().Misses, "one miss per call, not two")
	_, err = a.AuthenticateIf(ctx, key, refuse)
	require.NoError(t, err)
	require.Equal(t, 2, asked, "lookup asked on a hit")
	require.Equal(t, uint64(1), a.keys.Stats().Hits)
}

// A key in use is verified again in the background before its entry
// expires, and OnVerified hears of it (the credential throttle vouches
// for it there, since the key reaches the database nowhere else).
func TestRefreshedKeyIsReportedVerified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	tenant := uuid.New()
	scope := db.Scope{TenantID: tenant, Role: dbtype.RoleAdmin}
	var key string
	require.NoError(t, db.Tx(ctx, admin, scope, func(q *dbsqlc.Queries) error {
		if _, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: tenant, Slug: "acme", Name: "Acme"}); err != nil {
			return err
		}
		u, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "A", Email: "a@example.com", Role: "member"})
		if err != nil {
			return err
		}
		_, key, err = IssueKey(ctx, q, tenant, u.ID, dbtype.RoleMember, "k", nil)
		return err
	}))
	const ttl = time.Second
	a, err := New(Config{Pool: tdb.AppPool(t, 2), CacheTTL: ttl})
	require.NoError(t, err)
	var verified atomic.Pointer[string]
	a.OnVerified(func(cred string) { verified.Store(&cred) })
	_, err = a.Authenticate(ctx, key)
	require.NoError(t, err)
	require.Nil(t, verified.Load(), "a lookup in the request is the caller's to report")
	time.Sleep(cache.RefreshAfter(ttl) + 50*time.Millisecond)
	_, err = a.Authenticate(ctx, key)
	require.NoError(t, err)
	require.Eventually(t, func() bool { v := verified.Load(); return v != nil && *v == key }, 5*time.Second, 5*time.Millisecond)
}

// A principal travels by copy (WithPrincipal) or by reference
// (WithPrincipalRef); FromContext reads either, and a context without one,
// or with a nil reference, has none.
func TestPrincipalInContext(t *testing.T) {
	t.Parallel()
	p := Principal{TenantID: uuid.New(), UserID: uuid.New(), Role: dbtype.RoleAdmin, Kind: KindAPIKey}
	for _, ctx := range []context.Context{WithPrincipal(context.Background(), p), WithPrincipalRef(context.Background(), &p)} {
		got, ok := FromContext(ctx)
		require.True(t, ok)
		require.Equal(t, p, got)
	}
	for _, ctx := range []context.Context{context.Background(), WithPrincipalRef(context.Background(), nil)} {
		_, ok := FromContext(ctx)
		require.False(t, ok)
	}
}

// Keys in use of many tenants are renewed in the background in one round
// trip (cache.Refresher, db.Each), each in its own tenant's scope: what each
// finds replaces that key's entry only (a revocation included).
func TestKeysInUseAreRefreshedInOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	keys := issueKeys(t, admin, 3)
	tracer := &roundTrips{}
	cfg, err := pgxpool.ParseConfig(tdb.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = tracer
	app, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	var clock atomic.Int64 // the test's time, in Unix nanoseconds
	clock.Store(time.Now().UnixNano())
	// Under touchEvery: the refresh has no last_used_at to write.
	const ttl = 50 * time.Second
	a, err := newAuthenticator(Config{Pool: app, CacheTTL: ttl}, func() time.Time { return time.Unix(0, clock.Load()) })
	require.NoError(t, err)
	var verified atomic.Int64
	a.OnVerified(func(string) { verified.Add(1) })
	for _, k := range keys {
		_, err := a.Authenticate(ctx, k.key)
		require.NoError(t, err)
	}
	_, err = db.One(ctx, admin, db.Scope{TenantID: keys[1].tenant, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) {
		return q.APIKeyRevoke(ctx, keys[1].row.ID)
	})
	require.NoError(t, err)

	clock.Add(int64(cache.RefreshAfter(ttl) + time.Second)) // due, not expired
	before := tracer.n.Load()
	for _, k := range keys {
		_, err := a.Authenticate(ctx, k.key)
		require.NoError(t, err, "the cached answer, and a refresh queued")
	}
	require.Equal(t, before, tracer.n.Load(), "a request looked a due key up itself")
	a.keyRefresher.Flush()
	require.Equal(t, before+1, tracer.n.Load(), "the due keys were not looked up in one round trip")
	require.Equal(t, int64(2), verified.Load(), "OnVerified hears of the keys the database verified, not of the revoked one")
	for i, k := range keys {
		p, err := a.Authenticate(ctx, k.key)
		if i == 1 {
			require.ErrorIs(t, err, ErrInvalid, "the refresh did not bring the revocation")
			continue
		}
		require.NoError(t, err)
		require.Equal(t, k.tenant, p.TenantID)
		require.Equal(t, k.row.ID, p.KeyID)
	}
	require.Equal(t, before+1, tracer.n.Load(), "the refreshed entries did not answer")

	// Due again, and last used over touchEvery ago (by the test's clock):
	// the keys' touches go in one more round trip, all of them.
	clock.Add(int64(cache.RefreshAfter(ttl) + time.Second))
	for _, i := range []int{0, 2} {
		_, err := a.Authenticate(ctx, keys[i].key)
		require.NoError(t, err)
	}
	before = tracer.n.Load()
	a.keyRefresher.Flush()
	require.Equal(t, before+2, tracer.n.Load(), "the lookups and then the touches, a round trip each")
}

// roundTrips counts a pool's round trips: its statements and batches.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// Keys are renewed per cell: one round trip on each cell's pool for its
// keys. A cell that cannot answer costs its own keys their renewal (they
// expire at their time) and no other cell's; what the renewal finds
// replaces the entry whole (a user's lowered role included), and a key
// last used over touchEvery ago has its last_used_at written.
func TestKeysAreRefreshedPerCell(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	keys := issueKeys(t, admin, 4)
	// Two cells' pools (the same database; what matters is which pool each
	// key's lookup takes): keys 0 and 1 on the first, 2 and 3 on the second.
	var pools [2]*pgxpool.Pool
	var tracers [2]roundTrips
	for c := range pools {
		cfg, err := pgxpool.ParseConfig(tdb.AppURL)
		require.NoError(t, err)
		cfg.ConnConfig.Tracer = &tracers[c]
		pools[c], err = db.Open(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pools[c].Close)
	}
	cellOf := map[uuid.UUID]int{keys[0].tenant: 0, keys[1].tenant: 0, keys[2].tenant: 1, keys[3].tenant: 1}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	const ttl = 100 * time.Second // RefreshAfter 80 s: over touchEvery
	a, err := newAuthenticator(Config{CacheTTL: ttl, PoolFor: func(_ context.Context, tenant uuid.UUID) (*pgxpool.Pool, error) {
		return pools[cellOf[tenant]], nil
	}}, func() time.Time { return time.Unix(0, clock.Load()) })
	require.NoError(t, err)
	for _, k := range keys {
		_, err := a.Authenticate(ctx, k.key)
		require.NoError(t, err)
	}
	lastUsed := func(k issued) time.Time {
		t.Helper()
		row, err := db.One(ctx, admin, db.Scope{TenantID: k.tenant, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) {
			return q.APIKeyGet(ctx, k.row.ID)
		})
		require.NoError(t, err)
		require.NotNil(t, row.LastUsedAt)
		return *row.LastUsedAt
	}
	used := lastUsed(keys[0])
	viewer := string(dbtype.RoleViewer)
	_, err = db.One(ctx, admin, db.Scope{TenantID: keys[0].tenant, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: keys[0].user, Role: &viewer})
	})
	require.NoError(t, err)

	clock.Add(int64(cache.RefreshAfter(ttl) + time.Second)) // due, not expired
	for _, k := range keys {
		_, err := a.Authenticate(ctx, k.key)
		require.NoError(t, err)
	}
	pools[1].Close() // the second cell is down
	before := [2]int64{tracers[0].n.Load(), tracers[1].n.Load()}
	a.keyRefresher.Flush()
	require.Equal(t, before[0]+2, tracers[0].n.Load(), "the first cell: its keys' lookups and touches, a round trip each")
	require.Equal(t, before[1], tracers[1].n.Load())
	require.True(t, lastUsed(keys[0]).After(used), "the renewal did not write last_used_at")

	p, err := a.Authenticate(ctx, keys[0].key)
	require.NoError(t, err)
	require.Equal(t, Principal{TenantID: keys[0].tenant, UserID: keys[0].user, KeyID: keys[0].row.ID, Kind: KindAPIKey, Role: dbtype.RoleViewer}, p,
		"the renewal did not bring the user's lowered role")
	clock.Add(int64(ttl - cache.RefreshAfter(ttl))) // past the first entries' TTL
	for i, k := range keys {
		p, err := a.Authenticate(ctx, k.key)
		if i >= 2 {
			require.Error(t, err, "key %d: its cell is down, and its entry outlived its TTL", i)
			continue
		}
		require.NoError(t, err, "key %d: renewed on its cell despite the other's failure", i)
		require.Equal(t, k.user, p.UserID)
	}
	require.Equal(t, before[0]+2, tracers[0].n.Load(), "the first cell's renewed entries did not answer")
}

// While every change is heard (invalidation.Listener), verified keys and
// tokens are kept for invalidation.ExtendedTTL; when that stops, for
// CacheTTL again, what was kept for longer included. ForgetTenants drops
// those tenants' credentials only.
func TestListeningExtendsTheCredentialTTL(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	a, err := newAuthenticator(Config{CacheTTL: 5 * time.Second}, func() time.Time { return time.Unix(0, clock.Load()) })
	require.NoError(t, err)
	tenantA, tenantB := uuid.New(), uuid.New()
	keep := func(tenant uuid.UUID) keyRef {
		ref := keyRef{tenant, uuid.New()}
		a.keys.Set(a.keys.Ticket(), ref, keyEntry{principal: Principal{TenantID: tenant}})
		return ref
	}
	a.Listening(true)
	require.Equal(t, invalidation.ExtendedTTL, a.keys.TTL())
	require.Equal(t, invalidation.ExtendedTTL, a.tokens.TTL())
	refA, refB := keep(tenantA), keep(tenantB)
	a.ForgetTenants(map[uuid.UUID]struct{}{tenantA: {}})
	_, res := a.keys.Get(refA)
	require.Equal(t, cache.Miss, res)
	_, res = a.keys.Get(refB)
	require.Equal(t, cache.Hit, res, "another tenant's key was forgotten")
	clock.Add(int64(time.Minute))
	_, res = a.keys.Get(refB)
	require.Equal(t, cache.Hit, res)
	a.Listening(false)
	require.Equal(t, 5*time.Second, a.keys.TTL())
	require.Equal(t, 5*time.Second, a.tokens.TTL())
	clock.Add(int64(6 * time.Second))
	_, res = a.keys.Get(refB)
	require.Equal(t, cache.Miss, res, "a key kept for the extended TTL outlived CacheTTL after the listener")

	long, err := New(Config{CacheTTL: time.Hour})
	require.NoError(t, err)
	long.Listening(true)
	require.Equal(t, time.Hour, long.keys.TTL(), "a configured TTL above the extended one was shortened")
}

// issued is a tenant with a member and the member's API key.
type issued struct {
	tenant, user uuid.UUID
	row          dbsqlc.APIKey
	key          string
}

// issueKeys creates n tenants (tenant-a, tenant-b, ...), each with a member
// and the member's API key.
func issueKeys(t *testing.T, admin *pgxpool.Pool, n int) []issued {
	t.Helper()
	ctx := context.Background()
	keys := make([]issued, n)
	for i := range keys {
		k := &keys[i]
		k.tenant = uuid.New()
		require.NoError(t, db.Tx(ctx, admin, db.Scope{TenantID: k.tenant, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
			if _, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: k.tenant, Slug: "tenant-" + string(rune('a'+i)), Name: "T"}); err != nil {
				return err
			}
			u, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "A", Email: "a@example.com", Role: "member"})
			if err != nil {
				return err
			}
			k.user = u.ID
			k.row, k.key, err = IssueKey(ctx, q, k.tenant, u.ID, dbtype.RoleMember, "k", nil)
			return err
		}))
	}
	return keys
}
