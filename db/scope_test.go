package db_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	tdb   *pgtest.DB
	admin *pgxpool.Pool
	app   *pgxpool.Pool
	a, b  db.Scope
}

func setup(t *testing.T, maxConns int32) *testBundle {
	t.Helper()
	tdb := pgtest.New(t)
	bundle := &testBundle{tdb: tdb, admin: tdb.AdminPool(t), app: tdb.AppPool(t, maxConns)}
	bundle.a = db.Scope{TenantID: createTenant(t, bundle.admin, "tenant-a"), Role: dbtype.RoleAdmin}
	bundle.b = db.Scope{TenantID: createTenant(t, bundle.admin, "tenant-b"), Role: dbtype.RoleAdmin}
	return bundle
}

func createTenant(t *testing.T, admin *pgxpool.Pool, slug string) uuid.UUID {
	t.Helper()
	tenant, err := dbsqlc.New(admin).TenantCreate(context.Background(), dbsqlc.TenantCreateParams{ID: uuid.New(), Slug: slug, Name: slug})
	require.NoError(t, err)
	return tenant.ID
}

func createProduct(t *testing.T, pool *pgxpool.Pool, s db.Scope, name string) dbsqlc.Product {
	t.Helper()
	p, err := db.One(context.Background(), pool, s, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
		return q.ProductCreate(context.Background(), dbsqlc.ProductCreateParams{Name: name, Price: 100})
	})
	require.NoError(t, err)
	return p
}

func listProducts(t *testing.T, pool *pgxpool.Pool, s db.Scope) []dbsqlc.Product {
	t.Helper()
	items, err := db.One(context.Background(), pool, s, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
		return q.ProductList(context.Background(), dbsqlc.ProductListParams{RowLimit: 100})
	})
	require.NoError(t, err)
	return items
}

func TestOneSeesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	pa := createProduct(t, bundle.app, bundle.a, "anvil")
	pb := createProduct(t, bundle.app, bundle.b, "hammock")
	require.Equal(t, bundle.a.TenantID, pa.TenantID, "tenant_id comes from the setting")
	require.Equal(t, bundle.b.TenantID, pb.TenantID)

	items := listProducts(t, bundle.app, bundle.a)
	require.Len(t, items, 1)
	require.Equal(t, pa.ID, items[0].ID)

	for _, op := range []struct {
		name string
		fn   func(q *dbsqlc.Queries) (any, error)
	}{
		{"get", func(q *dbsqlc.Queries) (any, error) { return q.ProductGet(ctx, pb.ID) }},
		{"update", func(q *dbsqlc.Queries) (any, error) {
			name := "stolen"
			return q.ProductUpdate(ctx, dbsqlc.ProductUpdateParams{ID: pb.ID, Name: &name})
		}},
		{"delete", func(q *dbsqlc.Queries) (any, error) { return q.ProductDelete(ctx, pb.ID) }},
	} {
		_, err := db.One(ctx, bundle.app, bundle.a, op.fn)
		require.ErrorIs(t, err, db.ErrNotFound, op.name)
	}
	got, err := db.One(ctx, bundle.app, bundle.b, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(ctx, pb.ID) })
	require.NoError(t, err)
	require.Equal(t, "hammock", got.Name, "tenant A's update must not have touched B's row")
}

func TestOneRefusesNoTenantAndSecondStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	_, err := db.One(ctx, bundle.app, db.Scope{}, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
		return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
	})
	require.ErrorIs(t, err, db.ErrNoTenant)
	for _, role := range []dbtype.Role{"", "superuser", "Admin"} {
		_, err = db.One(ctx, bundle.app, db.Scope{TenantID: bundle.a.TenantID, Role: role}, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
			return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
		})
		require.ErrorIs(t, err, db.ErrNoRole, "role %q", role)
	}

	_, err = db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (int, error) {
		if _, err := q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10}); err != nil {
			return 0, err
		}
		_, err := q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
		return 0, err
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "single statement")
	// The pool (of one) still works afterwards.
	require.Empty(t, listProducts(t, bundle.app, bundle.a))
}

func TestTxCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	err := db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		for _, name := range []string{"one", "two", "three"} {
			if _, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: name}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, listProducts(t, bundle.app, bundle.a), 3)

	boom := errors.New("boom")
	err = db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		if _, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "four"}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Len(t, listProducts(t, bundle.app, bundle.a), 3, "rolled back")

	// A failing statement inside the transaction rolls it all back.
	err = db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		if _, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "five"}); err != nil {
			return err
		}
		_, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "bad", Price: -1})
		return err
	})
	require.ErrorIs(t, err, db.ErrInvalid)
	require.Len(t, listProducts(t, bundle.app, bundle.a), 3)
	require.Empty(t, listProducts(t, bundle.app, bundle.b))

	// A statement's error swallowed by fn cannot turn into a silent success.
	err = db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		if _, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "six"}); err != nil {
			return err
		}
		_, _ = q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "bad", Price: -1})
		return nil
	})
	require.ErrorIs(t, err, db.ErrRolledBack)
	require.Len(t, listProducts(t, bundle.app, bundle.a), 3)
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	create := func(s db.Scope, email string) error {
		_, err := db.One(ctx, bundle.app, s, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
			return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "n", Email: email, Role: "member"})
		})
		return err
	}
	require.NoError(t, create(bundle.a, "same@example.com"))
	err := create(bundle.a, "SAME@example.com")
	require.ErrorIs(t, err, db.ErrConflict, "email is unique per tenant, case-insensitively")
	var ce *db.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "users_tenant_email_key", ce.Constraint)
	require.NoError(t, create(bundle.b, "same@example.com"), "the same email in another tenant is fine (leak vector 4)")

	_, err = db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "n", Email: "x@example.com", Role: "root"})
	})
	require.ErrorIs(t, err, db.ErrInvalid)
	_, err = db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
		return q.ProductGet(ctx, uuid.New())
	})
	require.ErrorIs(t, err, db.ErrNotFound)
}

// countingConn counts round trips: a read that follows a write is one.
type countingConn struct {
	net.Conn
	mu       sync.Mutex
	wrote    bool
	trips    *int
	tripsMux *sync.Mutex
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.wrote = true
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.wrote {
		c.wrote = false
		c.tripsMux.Lock()
		*c.trips++
		c.tripsMux.Unlock()
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

func TestOneIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	cfg, err := pgxpool.ParseConfig(bundle.tdb.AppURL)
	require.NoError(t, err)
	cfg.MaxConns = 1
	var trips int
	var mu sync.Mutex
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, trips: &trips, tripsMux: &mu}, nil
	}
	pool, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	p := createProduct(t, pool, bundle.a, "counted")

	count := func(fn func()) int {
		fn() // the first use of a statement on a connection prepares it
		mu.Lock()
		before := trips
		mu.Unlock()
		fn()
		mu.Lock()
		defer mu.Unlock()
		return trips - before
	}
	require.Equal(t, 1, count(func() { listProducts(t, pool, bundle.a) }), "list")
	require.Equal(t, 1, count(func() {
		_, err := db.One(ctx, pool, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(ctx, p.ID) })
		require.NoError(t, err)
	}), "get")
	require.Equal(t, 1, count(func() { createProduct(t, pool, bundle.a, "more") }), "create")
	victims := []uuid.UUID{createProduct(t, pool, bundle.a, "d1").ID, createProduct(t, pool, bundle.a, "d2").ID}
	require.Equal(t, 1, count(func() {
		id := victims[0]
		victims = victims[1:]
		_, err := db.One(ctx, pool, bundle.a, func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ProductDelete(ctx, id) })
		require.NoError(t, err)
	}), "delete")
	// A transaction of n statements costs n+1 round trips.
	require.Equal(t, 4, count(func() {
		err := db.Tx(ctx, pool, bundle.a, func(q *dbsqlc.Queries) error {
			for range 3 {
				if _, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "tx"}); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
	}), "tx of three statements")
}

// The setting never outlives the request on the pooled connection (leak
// vectors 2 and 3): with one connection, the next user of it sees ” and,
// through the policy, no rows and no writes.
func TestSettingIsGoneAfterwards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	createProduct(t, bundle.app, bundle.a, "a1")
	require.NoError(t, db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		_, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "a2"})
		return err
	}))
	_, _ = db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
		return q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "fails", Price: -5})
	})

	conn, err := bundle.app.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	setting := tenantSetting(t, conn)
	require.NotNil(t, setting)
	require.Equal(t, "", *setting, "after SET LOCAL ends the setting reads '' (leak vector 3)")
	var n int
	require.NoError(t, conn.QueryRow(ctx, "select count(*) from products").Scan(&n))
	require.Zero(t, n, "no tenant set: no rows")
	_, err = conn.Exec(ctx, "insert into products (name, price) values ('x', 1)")
	require.Error(t, err, "no tenant set: writes fail")
}

// tenantSetting reads app.tenant_id as the connection sees it: nil when the
// connection never set it.
func tenantSetting(t *testing.T, conn interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) *string {
	t.Helper()
	var setting *string
	require.NoError(t, conn.QueryRow(context.Background(), "select current_setting('app.tenant_id', true)").Scan(&setting))
	return setting
}

// The request's statement_timeout travels in the same statement as the
// tenant: a statement stuck behind a lock is cancelled at the scope's
// timeout, the setting is gone afterwards, and it costs no round trip.
func TestStatementTimeoutRidesWithTheTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	createProduct(t, bundle.app, bundle.a, "locked")
	// Prepare the list statement first: pgx prepares a statement on its first
	// use, in a round trip of its own that precedes the settings, so the
	// timeout covers execution only (the request's context deadline covers
	// the rest).
	listProducts(t, bundle.app, bundle.a)

	locker, err := bundle.admin.Begin(ctx)
	require.NoError(t, err)
	defer locker.Rollback(ctx)
	_, err = locker.Exec(ctx, "lock table products in access exclusive mode")
	require.NoError(t, err)

	s := bundle.a
	s.StatementTimeout = 150 * time.Millisecond
	start := time.Now()
	_, err = db.One(ctx, bundle.app, s, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
		return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
	})
	require.ErrorIs(t, err, db.ErrTimeout)
	require.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, locker.Rollback(ctx))

	conn, err := bundle.app.Acquire(ctx)
	require.NoError(t, err)
	var timeout string
	require.NoError(t, conn.QueryRow(ctx, "show statement_timeout").Scan(&timeout))
	conn.Release()
	require.Equal(t, "0", timeout, "the timeout ended with the transaction")
	require.Len(t, listProducts(t, bundle.app, s), 1, "the same scope works once the lock is gone")
}

// The statements in db.genericPlan (the keyset lists and the name-prefix
// search) run their generic plan: PostgreSQL would otherwise plan them afresh
// on every execution. The setting ends with each statement's transaction:
// other statements, on the same connection, keep PostgreSQL's choice.
func TestListsRunTheirGenericPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	for _, name := range []string{"anvil", "anchor", "bucket"} {
		createProduct(t, bundle.app, bundle.a, name)
	}
	run := func(fn func(q *dbsqlc.Queries) (int, error)) int {
		n, err := db.One(ctx, bundle.app, bundle.a, fn)
		require.NoError(t, err)
		return n
	}
	for range 3 {
		require.Equal(t, 2, run(func(q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductSearch(ctx, dbsqlc.ProductSearchParams{Prefix: "AN", RowLimit: 10})
			return len(rows), err
		}))
		require.Equal(t, 3, run(func(q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
			return len(rows), err
		}))
		run(func(q *dbsqlc.Queries) (int, error) {
			rows, err := q.UserList(ctx, dbsqlc.UserListParams{RowLimit: 10})
			return len(rows), err
		})
		run(func(q *dbsqlc.Queries) (int, error) {
			rows, err := q.APIKeyList(ctx, dbsqlc.APIKeyListParams{RowLimit: 10})
			return len(rows), err
		})
		require.Equal(t, 3, run(func(q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductListSorted(ctx, dbsqlc.ProductListSortedParams{First: true, Sort: "name", RowLimit: 10})
			return len(rows), err
		}))
		require.Equal(t, 0, run(func(q *dbsqlc.Queries) (int, error) {
			_, err := q.ProductGet(ctx, uuid.New())
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
			return 0, err
		}))
	}

	conn, err := bundle.app.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var mode string
	require.NoError(t, conn.QueryRow(ctx, "show plan_cache_mode").Scan(&mode))
	require.Equal(t, "auto", mode, "the setting ended with the transaction")
	plans := func(name string) [2]int64 {
		var generic, custom int64
		require.NoError(t, conn.QueryRow(ctx, `select generic_plans, custom_plans from pg_prepared_statements
			where statement like $1`, "-- name: "+name+" %").Scan(&generic, &custom))
		return [2]int64{generic, custom}
	}
	for _, name := range []string{"ProductSearch", "ProductList", "UserList", "APIKeyList", "ProductListSorted"} {
		require.Equal(t, [2]int64{3, 0}, plans(name), "%s ran its generic plan every time", name)
	}
	require.Equal(t, [2]int64{0, 3}, plans("ProductGet"), "a statement not listed is planned as PostgreSQL chooses")
}
