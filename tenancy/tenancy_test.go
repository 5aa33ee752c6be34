package tenancy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestParseKey(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	for raw, want := range map[string]Key{
		"acme":                         {Slug: "acme"},
		"a-b":                          {Slug: "a-b"},
		"x2" + strings.Repeat("y", 61): {Slug: "x2" + strings.Repeat("y", 61)},
		id.String():                    {ID: id},
		strings.ToUpper(id.String()):   {ID: id},
	} {
		got, err := ParseKey(raw)
		require.NoError(t, err, raw)
		require.Equal(t, want, got, raw)
	}
	for _, bad := range []string{"", "ab", "Acme", "-ab", "ab-", "a_b", "a b", "acme\x00", "acmé",
		strings.Repeat("a", 64), uuid.Nil.String(), "urn:uuid:" + id.String(),
		id.String()[:35] + "z", "{" + id.String()[1:35] + "}"} {
		_, err := ParseKey(bad)
		require.ErrorIs(t, err, ErrMalformed, "%q", bad)
	}
}

// ValidSlug is the tenants_slug_format constraint's regular expression,
// checked by hand (it runs on every request).
func FuzzValidSlug(f *testing.F) {
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	for _, seed := range []string{"acme", "ab", "abc", "a-b", "-ab", "ab-", "a--b", "Acme", "acm\xe9", "acme\n",
		strings.Repeat("a", 63), strings.Repeat("a", 64), "a_b", "0-0"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidSlug(s), pattern.MatchString(s); got != want {
			t.Fatalf("ValidSlug(%q) = %v, the constraint's pattern says %v", s, got, want)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, seed := range []string{"acme", uuid.NewString(), "", "A", "{}", "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		k, err := ParseKey(raw)
		if err != nil {
			return
		}
		if (k.Slug == "") == (k.ID == uuid.Nil) {
			t.Fatalf("exactly one of slug and id must be set: %q -> %+v", raw, k)
		}
		if k.Slug != "" && !ValidSlug(k.Slug) {
			t.Fatalf("invalid slug accepted: %q", raw)
		}
	})
}

func TestResolverCachesWithinTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	app := tdb.AppPool(t, 2)
	created, err := dbsqlc.New(admin).TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: uuid.New(), Slug: "acme", Name: "Acme"})
	require.NoError(t, err)

	var now atomic.Int64 // the test's time, in Unix nanoseconds
	now.Store(time.Unix(1000, 0).UnixNano())
	r := newResolver(app, time.Minute, func() time.Time { return time.Unix(0, now.Load()) })

	bySlug, err := r.Resolve(ctx, Key{Slug: "acme"})
	require.NoError(t, err)
	require.Equal(t, Tenant{ID: created.ID, Slug: "acme", Status: dbtype.TenantStatusActive}, bySlug)
	byID, err := r.Resolve(ctx, Key{ID: created.ID})
	require.NoError(t, err)
	require.Equal(t, bySlug, byID)
	_, err = r.Resolve(ctx, Key{Slug: "initech"})
	require.ErrorIs(t, err, ErrUnknown)

	_, err = admin.Exec(ctx, "update tenants set status = 'suspended' where slug = 'acme'")
	require.NoError(t, err)
	_, err = dbsqlc.New(admin).TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: uuid.New(), Slug: "initech", Name: "Initech"})
	require.NoError(t, err)
	cached, err := r.Resolve(ctx, Key{Slug: "acme"})
	require.NoError(t, err)
	require.Equal(t, dbtype.TenantStatusActive, cached.Status, "within the TTL the cached answer holds")
	_, err = r.Resolve(ctx, Key{Slug: "initech"})
	require.ErrorIs(t, err, ErrUnknown, "absence is cached too")

	now.Add(int64(time.Minute + time.Second))
	fresh, err := r.Resolve(ctx, Key{Slug: "acme"})
	require.NoError(t, err)
	require.Equal(t, dbtype.TenantStatusSuspended, fresh.Status, "after the TTL the change shows")
	_, err = r.Resolve(ctx, Key{Slug: "initech"})
	require.NoError(t, err)

	uncached := NewResolver(app, 0)
	_, err = admin.Exec(ctx, "update tenants set status = 'active' where slug = 'acme'")
	require.NoError(t, err)
	got, err := uncached.Resolve(ctx, Key{Slug: "acme"})
	require.NoError(t, err)
	require.Equal(t, dbtype.TenantStatusActive, got.Status)
}

// Tenants in use are renewed in the background in one statement for all of
// them (cache.Refresher), each answer in its key's place: by id or by slug,
// changed, gone, and never another key's tenant.
func TestResolverRefreshesInOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	counter := &lookups{}
	cfg, err := pgxpool.ParseConfig(tdb.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = counter
	app, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	var now atomic.Int64 // the test's time, in Unix nanoseconds
	now.Store(time.Unix(1000, 0).UnixNano())
	r := newResolver(app, time.Hour, func() time.Time { return time.Unix(0, now.Load()) })

	ids := map[string]uuid.UUID{}
	type named struct {
		key  Key
		slug string
	}
	var keys []named
	for i := range 6 {
		slug := fmt.Sprintf("tenant-%d", i)
		created, err := dbsqlc.New(admin).TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: uuid.New(), Slug: slug, Name: slug})
		require.NoError(t, err)
		ids[slug] = created.ID
		key := Key{Slug: slug}
		if i%2 == 0 {
			key = Key{ID: created.ID}
		}
		keys = append(keys, named{key, slug})
		switch i { // these two by id and by slug, in one batch
		case 0:
			keys = append(keys, named{Key{Slug: slug}, slug})
		case 3:
			keys = append(keys, named{Key{ID: created.ID}, slug})
		}
	}
	for _, k := range keys {
		_, err = r.Resolve(ctx, k.key)
		require.NoError(t, err)
	}
	_, err = admin.Exec(ctx, "update tenants set status = 'suspended' where slug in ('tenant-1', 'tenant-2')")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "delete from tenants where slug in ('tenant-3', 'tenant-4')")
	require.NoError(t, err)

	now.Add(int64(cache.RefreshAfter(time.Hour) + time.Second)) // due, not expired
	before := counter.n.Load()
	for _, k := range keys {
		_, err := r.Resolve(ctx, k.key) // the cached answer, and a refresh queued
		require.NoError(t, err)
	}
	require.Equal(t, before, counter.n.Load(), "a request looked a due tenant up itself")
	r.refresher.Flush()
	require.Equal(t, before+1, counter.n.Load(), "the due tenants were not looked up in one statement")
	for _, k := range keys {
		slug := k.slug
		got, err := r.Resolve(ctx, k.key)
		switch slug {
		case "tenant-3", "tenant-4":
			require.ErrorIs(t, err, ErrUnknown, slug)
		case "tenant-1", "tenant-2":
			require.NoError(t, err)
			require.Equal(t, Tenant{ID: ids[slug], Slug: slug, Status: dbtype.TenantStatusSuspended}, got)
		default:
			require.NoError(t, err)
			require.Equal(t, Tenant{ID: ids[slug], Slug: slug, Status: dbtype.TenantStatusActive}, got)
		}
	}
}

// lookups counts the statements a pool sends.
type lookups struct{ n atomic.Int64 }

func (l *lookups) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	l.n.Add(1)
	return ctx
}
func (l *lookups) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Issue #14 item 5: the tenant cache emptied itself at 10,000 entries and
// cached unknown tenants too, so 10,000 unknown names evicted every good
// entry. A good tenant must still be answered from the cache after them
// (leak vector 13).
func TestUnknownTenantsCannotFlushTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	_, err := dbsqlc.New(tdb.AdminPool(t)).TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: uuid.New(), Slug: "acme", Name: "Acme"})
	require.NoError(t, err)
	counter := &lookups{}
	cfg, err := pgxpool.ParseConfig(tdb.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = counter
	cfg.MaxConns = 4
	app, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	r := NewResolver(app, time.Hour)

	_, err = r.Resolve(ctx, Key{Slug: "acme"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 10_001; i += 4 {
				if _, err := r.Resolve(ctx, Key{Slug: fmt.Sprintf("nobody-%d", i)}); !errors.Is(err, ErrUnknown) {
					t.Errorf("nobody-%d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	before := counter.n.Load()
	got, err := r.Resolve(ctx, Key{Slug: "acme"})
	require.NoError(t, err)
	require.Equal(t, "acme", got.Slug)
	require.Equal(t, int64(0), counter.n.Load()-before, "10,001 unknown tenants evicted a good one")
}

// A tenant travels by copy (WithTenant) or by reference (WithTenantRef);
// FromContext reads either, and a context without one, or with a nil
// reference, has none.
func TestTenantInContext(t *testing.T) {
	t.Parallel()
	tn := Tenant{ID: uuid.New(), Slug: "acme", Status: "active", Cell: "eu"}
	for _, ctx := range []context.Context{WithTenant(context.Background(), tn), WithTenantRef(context.Background(), &tn)} {
		got, ok := FromContext(ctx)
		require.True(t, ok)
		require.Equal(t, tn, got)
	}
	for _, ctx := range []context.Context{context.Background(), WithTenantRef(context.Background(), nil)} {
		_, ok := FromContext(ctx)
		require.False(t, ok)
	}
}
