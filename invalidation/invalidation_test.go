package invalidation_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type tenant struct {
	id, user uuid.UUID
	key      dbsqlc.APIKey
	secret   string
}

// onboard creates a tenant with an admin and a member, and the member's
// API key.
func onboard(t *testing.T, admin *pgxpool.Pool, slug string) tenant {
	t.Helper()
	ctx := context.Background()
	tn := tenant{id: uuid.New()}
	require.NoError(t, db.Tx(ctx, admin, db.Scope{TenantID: tn.id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		if _, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: tn.id, Slug: slug, Name: slug}); err != nil {
			return err
		}
		if _, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "Admin", Email: "admin@example.com", Role: "admin"}); err != nil {
			return err
		}
		u, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "M", Email: "m@example.com", Role: "member"})
		if err != nil {
			return err
		}
		tn.user = u.ID
		tn.key, tn.secret, err = auth.IssueKey(ctx, q, tn.id, u.ID, dbtype.RoleMember, "k", nil)
		return err
	}))
	return tn
}

// serving returns the resolver and authenticator serve would make on app,
// both with the TTL ttl.
func serving(t *testing.T, app *pgxpool.Pool, ttl time.Duration) (*tenancy.Resolver, *auth.Authenticator) {
	t.Helper()
	resolver := tenancy.NewResolver(app, ttl)
	authn, err := auth.New(auth.Config{Pool: app, CacheTTL: ttl, Tenants: resolver})
	require.NoError(t, err)
	return resolver, authn
}

// open opens cfg's pool; it is closed when the test ends, after listen's
// listener stopped.
func open(t *testing.T, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// listen runs l on sources until the test ends, and then checks that Run
// returns within 10 s of its context's end.
func listen(t *testing.T, l *invalidation.Listener, sources ...invalidation.Source) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx, sources...); close(done) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of its context's end")
		}
	})
}

// Every change to what the caches hold announces its tenant once per
// statement, in SQL whoever makes it; changes the caches do not hold (a
// key's last_used_at touch, names) announce nothing
// (sql/migrations/00025_cache_change_notify.sql).
func TestChangesAreAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	app := tdb.AppPool(t, 2)
	a := onboard(t, admin, "acme")
	b := onboard(t, admin, "globex")

	listener, err := pgx.Connect(ctx, tdb.AppURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close(ctx) })
	_, err = listener.Exec(ctx, "LISTEN "+invalidation.Channel)
	require.NoError(t, err)
	heard := func() []string {
		t.Helper()
		var got []string
		for {
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			n, err := listener.WaitForNotification(wctx)
			cancel()
			if err != nil {
				return got
			}
			require.Equal(t, invalidation.Channel, n.Channel)
			got = append(got, n.Payload)
		}
	}
	exec := func(tenant uuid.UUID, sql string, args ...any) {
		t.Helper()
		require.NoError(t, db.Tx(ctx, admin, db.Scope{TenantID: tenant, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error { return nil }))
		_, err := admin.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	require.Empty(t, heard(), "creating tenants, users and keys announced something")

	// As the serving role, the way requests change things.
	_, err = db.One(ctx, app, db.Scope{TenantID: a.id, Role: dbtype.RoleAuth}, func(q *dbsqlc.Queries) (struct{}, error) {
		return struct{}{}, q.APIKeyTouch(ctx, a.key.ID)
	})
	require.NoError(t, err)
	require.Empty(t, heard(), "a key's touch announced a change")
	_, err = db.One(ctx, app, db.Scope{TenantID: a.id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) {
		return q.APIKeyRevoke(ctx, a.key.ID)
	})
	require.NoError(t, err)
	require.Equal(t, []string{a.id.String()}, heard(), "a revocation")
	name, viewer := "Renamed", string(dbtype.RoleViewer)
	_, err = db.One(ctx, app, db.Scope{TenantID: b.id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: b.user, Name: &name})
	})
	require.NoError(t, err)
	require.Empty(t, heard(), "a user's new name announced a change")
	_, err = db.One(ctx, app, db.Scope{TenantID: b.id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: b.user, Role: &viewer})
	})
	require.NoError(t, err)
	require.Equal(t, []string{b.id.String()}, heard(), "a user's new role")
	email, external := "new@example.com", "idp-42"
	_, err = db.One(ctx, app, db.Scope{TenantID: b.id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: b.user, Email: &email})
	})
	require.NoError(t, err)
	require.Equal(t, []string{b.id.String()}, heard(), "a user's new email (JWT_SUBJECT_MAPPING=email maps tokens by it)")
	_, err = db.One(ctx, app, db.Scope{TenantID: b.id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: b.user, SetExternalID: true, ExternalID: &external})
	})
	require.NoError(t, err)
	require.Equal(t, []string{b.id.String()}, heard(), "a user's new external_id")

	// In SQL, as a DBA would.
	exec(a.id, "UPDATE api_keys SET expires_at = now() + interval '1 day' WHERE tenant_id = $1", a.id)
	require.Equal(t, []string{a.id.String()}, heard(), "a key's new expiry")
	exec(b.id, "INSERT INTO users (tenant_id, name, email, role) VALUES ($1, 'X', 'x@example.com', 'member'), ($1, 'Y', 'y@example.com', 'member')", b.id)
	require.Empty(t, heard())
	exec(b.id, "DELETE FROM users WHERE tenant_id = $1 AND role = 'member'", b.id)
	require.Equal(t, []string{b.id.String()}, heard(), "deleting users: one announcement for the statement")
	exec(a.id, "UPDATE tenants SET name = 'Acme Inc' WHERE id = $1", a.id)
	require.Empty(t, heard(), "a tenant's new name announced a change")
	exec(a.id, "UPDATE tenants SET status = 'suspended' WHERE id = $1", a.id)
	require.Equal(t, []string{a.id.String()}, heard(), "a suspension")
	exec(a.id, "UPDATE tenants SET rate_limit = 5 WHERE id = $1", a.id)
	require.Equal(t, []string{a.id.String()}, heard(), "a tenant's limits")
	exec(a.id, "UPDATE tenants SET slug = 'acme-2' WHERE id = $1", a.id)
	require.Equal(t, []string{a.id.String()}, heard(), "a tenant's new slug")
	exec(b.id, "DELETE FROM tenants WHERE id = $1", b.id)
	require.Equal(t, []string{b.id.String()}, heard(), "a tenant's deletion, its cascade included: one announcement")
}

// recorder is an invalidation.Cache that records what it is told.
type recorder struct {
	mu        sync.Mutex
	forgotten []uuid.UUID
	calls     int
	all       int
	listening []bool
}

func (r *recorder) ForgetTenants(ids map[uuid.UUID]struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for id := range ids {
		r.forgotten = append(r.forgotten, id)
	}
}

func (r *recorder) ForgetAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all++
}

func (r *recorder) Listening(live bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listening = append(r.listening, live)
}

func (r *recorder) stateCalls() (forgotten []uuid.UUID, all int, listening []bool, calls int) {
	f, a, l := r.state()
	r.mu.Lock()
	defer r.mu.Unlock()
	return f, a, l, r.calls
}

func (r *recorder) state() (forgotten []uuid.UUID, all int, listening []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uuid.UUID(nil), r.forgotten...), r.all, append([]bool(nil), r.listening...)
}

// A change made anywhere reaches this instance's caches at once, far inside
// their TTL (a minute here): a key revoked and a tenant suspended in SQL by
// another connection stop passing within a heartbeat. A forged payload is
// ignored. When the listener's connection dies, the caches are told they
// no longer hear every change (back to their TTL); when it is back, they
// forget everything (what changed meanwhile went unheard) and are told
// they hear again.
func TestListenerKeepsCachesCurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	app := tdb.AppPool(t, 4)
	a := onboard(t, admin, "acme")
	b := onboard(t, admin, "globex")

	resolver, authn := serving(t, app, time.Minute)
	rec := &recorder{}
	cfg, err := pgxpool.ParseConfig(tdb.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["application_name"] = "invalidation-test"
	l := invalidation.New(slog.New(slog.DiscardHandler), resolver, authn, rec)
	listen(t, l, invalidation.Source{Name: "default", Pool: open(t, cfg)})
	require.Eventually(t, l.Live, 5*time.Second, 10*time.Millisecond)

	for _, tn := range []tenant{a, b} {
		_, err := authn.Authenticate(ctx, tn.secret)
		require.NoError(t, err)
		got, err := resolver.Resolve(ctx, tenancy.Key{ID: tn.id})
		require.NoError(t, err)
		require.Equal(t, dbtype.TenantStatusActive, got.Status)
	}
	_, err = admin.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", a.key.ID)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "UPDATE tenants SET status = 'suspended' WHERE id = $1", b.id)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "SELECT pg_notify($1, 'not a tenant id')", invalidation.Channel)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := authn.Authenticate(ctx, a.secret)
		return err != nil
	}, 3*invalidation.Heartbeat, 5*time.Millisecond, "a revocation in SQL did not reach the cache at once (the TTL is a minute)")
	require.ErrorIs(t, func() error { _, err := authn.Authenticate(ctx, a.secret); return err }(), auth.ErrInvalid)
	require.Eventually(t, func() bool {
		got, err := resolver.Resolve(ctx, tenancy.Key{ID: b.id})
		return err == nil && got.Status == dbtype.TenantStatusSuspended
	}, 3*invalidation.Heartbeat, 5*time.Millisecond, "a suspension in SQL did not reach the cache at once (the TTL is a minute)")
	_, err = authn.Authenticate(ctx, b.secret)
	require.NoError(t, err, "another tenant's key was dropped")
	require.True(t, l.Live(), "a forged payload broke the listener")
	forgotten, all, listening := rec.state()
	require.ElementsMatch(t, []uuid.UUID{a.id, b.id}, forgotten)
	require.Equal(t, 1, all, "the first connect forgets everything once")
	require.Equal(t, true, listening[0])

	// A burst of changes is forgotten in one walk of each cache, not one
	// per change (a tenant admin deleting users one by one must not cost
	// every instance a walk of its caches each).
	var burst []uuid.UUID
	for range 200 {
		burst = append(burst, uuid.New())
	}
	_, _, _, calls := rec.stateCalls()
	_, err = admin.Exec(ctx, "SELECT pg_notify($1, id::text) FROM unnest($2::uuid[]) id", invalidation.Channel, burst)
	require.NoError(t, err)
	require.Eventually(t, func() bool { f, _, _ := rec.state(); return len(f) == len(forgotten)+len(burst) }, 5*time.Second, 10*time.Millisecond)
	_, _, _, after := rec.stateCalls()
	require.LessOrEqual(t, after-calls, 2, "200 changes announced together were forgotten in %d calls", after-calls)

	// The listener's connection dies, and comes back. A stall on a busy
	// machine may have flipped the state before: look at what follows the
	// termination only.
	_, allBefore, before := rec.state()
	_, err = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'invalidation-test'")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, all, l := rec.state()
		return all > allBefore && len(l) >= len(before)+2 && l[len(l)-1]
	}, 10*time.Second, 10*time.Millisecond, "the listener did not go quiet, connect again, forget everything and hear again")
	_, _, listening = rec.state()
	require.Contains(t, listening[len(before):], false)
}

// A database that cannot be heard (its connections go through a
// transaction pooler) keeps every cache on its own TTL, however well the
// others are heard; their changes are still forgotten at once.
func TestUnheardSourceKeepsTheTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	app := tdb.AppPool(t, 2)
	a := onboard(t, admin, "acme")
	rec := &recorder{}
	l := invalidation.New(slog.New(slog.DiscardHandler), rec)
	listen(t, l, invalidation.Source{Name: "default", Pool: app}, invalidation.Source{Name: "pooled", Pool: app, Unheard: true})
	require.Eventually(t, func() bool { _, all, _ := rec.state(); return all == 1 }, 5*time.Second, 10*time.Millisecond)
	_, err := admin.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", a.key.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { f, _, _ := rec.state(); return len(f) == 1 && f[0] == a.id }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(2 * invalidation.Heartbeat) // heartbeats came back meanwhile
	require.False(t, l.Live())
	_, _, listening := rec.state()
	require.Empty(t, listening, "the caches were told every change is heard")
}
