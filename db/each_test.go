package db_test

import (
	"context"
	"crypto/sha256"
	"fmt"
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
)

// keyedTenant is a tenant with one user, one API key of that user and one
// product, all named after the tenant.
type keyedTenant struct {
	admin, auth db.Scope
	user, key   uuid.UUID
	product     string
}

func keyedTenants(t *testing.T, bundle *testBundle, n int) []keyedTenant {
	t.Helper()
	ctx := context.Background()
	out := make([]keyedTenant, 0, n)
	for _, s := range manyTenants(t, bundle.admin, n) {
		kt := keyedTenant{admin: s, auth: db.Scope{TenantID: s.TenantID, Role: dbtype.RoleAuth}, product: "of " + s.TenantID.String()}
		user, err := db.One(ctx, bundle.app, s, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
			return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "U", Email: "u@example.com", Role: "viewer"})
		})
		require.NoError(t, err)
		hash := sha256.Sum256([]byte(s.TenantID.String()))
		key, err := db.One(ctx, bundle.app, s, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) {
			return q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{ID: uuid.New(), UserID: user.ID, Name: "ci", Role: "viewer", SecretHash: hash[:]})
		})
		require.NoError(t, err)
		createProduct(t, bundle.app, s, kt.product)
		kt.user, kt.key = user.ID, key.ID
		out = append(out, kt)
	}
	return out
}

// requireCleanConnection checks the pool's (only) connection: no transaction
// open, no tenant setting left, and the same backend as before (pid), so it
// was cleaned rather than destroyed.
func requireCleanConnection(t *testing.T, pool *pgxpool.Pool, pid uint32) {
	t.Helper()
	conn, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()
	require.Equal(t, byte('I'), conn.Conn().PgConn().TxStatus(), "no transaction open")
	setting := tenantSetting(t, conn)
	require.NotNil(t, setting)
	require.Equal(t, "", *setting, "no tenant left on the connection")
	if pid != 0 {
		require.Equal(t, pid, conn.Conn().PgConn().PID(), "the connection was kept, not destroyed")
	}
}

func backendPID(t *testing.T, pool *pgxpool.Pool) uint32 {
	t.Helper()
	conn, err := pool.Acquire(context.Background())
	require.NoError(t, err)
	defer conn.Release()
	return conn.Conn().PgConn().PID()
}

// Each unit runs as its own tenant and role, on one connection, one after
// the other: the credential check (role auth) of every tenant's key finds that
// key, another tenant's key in the next unit is not found (and the units
// after it still run), and an admin unit lists its own tenant's product only.
// Leak vector 2: nothing of a unit's scope reaches the next unit or the
// connection afterwards.
func TestEachUnitSeesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	tenants := keyedTenants(t, bundle, 4)
	pid := backendPID(t, bundle.app)

	type unit struct {
		scope db.Scope
		run   func(q *dbsqlc.Queries) (any, error)
		check func(got any, err error)
	}
	var units []unit
	for k, kt := range tenants {
		other := tenants[(k+1)%len(tenants)]
		units = append(units,
			unit{kt.auth, func(q *dbsqlc.Queries) (any, error) { return q.APIKeyAuthenticate(ctx, kt.key) },
				func(got any, err error) {
					require.NoError(t, err)
					row := got.(dbsqlc.APIKeyAuthenticateRow)
					require.Equal(t, kt.key, row.ID)
					require.Equal(t, kt.user, row.UserID)
				}},
			unit{kt.auth, func(q *dbsqlc.Queries) (any, error) { return q.APIKeyAuthenticate(ctx, other.key) },
				func(got any, err error) { require.ErrorIs(t, err, db.ErrNotFound, "another tenant's key") }},
			unit{kt.admin, func(q *dbsqlc.Queries) (any, error) {
				return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 100})
			}, func(got any, err error) {
				require.NoError(t, err)
				items := got.([]dbsqlc.Product)
				require.Len(t, items, 1)
				require.Equal(t, kt.product, items[0].Name)
				require.Equal(t, kt.admin.TenantID, items[0].TenantID)
			}},
			// The auth role reads keys, never products (sql/migrations/00004_auth.sql).
			unit{kt.auth, func(q *dbsqlc.Queries) (any, error) {
				return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 100})
			}, func(got any, err error) {
				require.NoError(t, err)
				require.Empty(t, got, "the role of the unit before does not carry over")
			}},
		)
	}
	scopes := make([]db.Scope, len(units))
	for i, u := range units {
		scopes[i] = u.scope
	}
	for range 2 { // the second time on prepared statements
		results, errs, err := db.Each(ctx, bundle.app, scopes, func(i int, q *dbsqlc.Queries) (any, error) { return units[i].run(q) })
		require.NoError(t, err)
		require.Len(t, results, len(units))
		for i, u := range units {
			u.check(results[i], errs[i])
		}
		requireCleanConnection(t, bundle.app, pid)
	}
}

// A statement that fails at the server ends the round trip: the failing unit
// gets its mapped error, the later ones ErrNotRun (nothing of theirs ran:
// their rows are not there), the earlier ones their results (committed: each
// unit is its own transaction). The connection comes back clean and is
// reused, in each of pgx's exec modes (the batch is a pipeline in four of
// them, one multi-statement simple query in the fifth).
func TestEachFailureStopsTheRestAndLeavesTheConnectionClean(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	tenants := manyTenants(t, bundle.admin, 4)
	for _, mode := range ExecModes {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(bundle.tdb.AppURL)
			require.NoError(t, err)
			cfg.MaxConns = 1
			cfg.ConnConfig.DefaultQueryExecMode = mode
			pool, err := db.Open(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			pid := backendPID(t, pool)
			prices := []int64{1, 2, -1, 4} // -1 breaks products' price check
			names := make([]string, len(prices))
			for i := range names {
				names[i] = fmt.Sprintf("%s-%d", mode, i)
			}
			results, errs, err := db.Each(ctx, pool, tenants, func(i int, q *dbsqlc.Queries) (dbsqlc.Product, error) {
				return q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: names[i], Price: prices[i]})
			})
			require.NoError(t, err, "a statement's failure is its unit's, not the call's")
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			require.Equal(t, names[0], results[0].Name)
			require.Equal(t, tenants[1].TenantID, results[1].TenantID)
			require.ErrorIs(t, errs[2], db.ErrInvalid)
			require.ErrorIs(t, errs[3], db.ErrNotRun)
			require.ErrorIs(t, errs[3], db.ErrUnavailable, "not run: safe to retry")
			requireCleanConnection(t, pool, pid)

			for i, s := range tenants {
				var mine []string
				for _, p := range listProducts(t, pool, s) {
					if p.Name == names[i] {
						mine = append(mine, p.Name)
					}
				}
				want := 0
				if i < 2 {
					want = 1
				}
				require.Len(t, mine, want, "unit %d's row", i)
			}

			// The same connection runs the next call.
			_, errs, err = db.Each(ctx, pool, tenants, func(i int, q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
				return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 100})
			})
			require.NoError(t, err)
			for i := range errs {
				require.NoError(t, errs[i])
			}
			requireCleanConnection(t, pool, pid)
		})
	}
}

// A unit's statement_timeout is its own: a unit stuck behind a lock is
// cancelled at its scope's timeout (ErrTimeout), the one before stands, the
// one after is not run, and the timeout is gone from the connection.
func TestEachStatementTimeoutInTheMiddle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	slow := bundle.b
	slow.StatementTimeout = 150 * time.Millisecond
	scopes := []db.Scope{bundle.a, slow, bundle.a}
	list := func(i int, q *dbsqlc.Queries) (int, error) {
		if i == 1 {
			items, err := q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
			return len(items), err
		}
		items, err := q.UserList(ctx, dbsqlc.UserListParams{RowLimit: 10})
		return len(items), err
	}
	// Prepare the statements first (pgx prepares in a round trip of its own,
	// before the settings: see TestStatementTimeoutRidesWithTheTenant).
	_, errs, err := db.Each(ctx, bundle.app, scopes, list)
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil, nil}, errs)
	pid := backendPID(t, bundle.app)

	locker, err := bundle.admin.Begin(ctx)
	require.NoError(t, err)
	defer locker.Rollback(ctx)
	_, err = locker.Exec(ctx, "lock table products in access exclusive mode")
	require.NoError(t, err)
	start := time.Now()
	_, errs, err = db.Each(ctx, bundle.app, scopes, list)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], db.ErrTimeout)
	require.ErrorIs(t, errs[2], db.ErrNotRun)
	require.NoError(t, locker.Rollback(ctx))

	requireCleanConnection(t, bundle.app, pid)
	conn, err := bundle.app.Acquire(ctx)
	require.NoError(t, err)
	var timeout string
	require.NoError(t, conn.QueryRow(ctx, "show statement_timeout").Scan(&timeout))
	conn.Release()
	require.Equal(t, "0", timeout, "the timeout ended with its unit's transaction")
}

// fn issues one statement per unit, the same on both of its calls. A second
// statement, or another statement the second time, is the unit's error; its
// neighbours' results are still theirs (the batch stays in step).
func TestEachRefusesASecondOrDifferentStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	pa := createProduct(t, bundle.app, bundle.a, "anvil")
	pb := createProduct(t, bundle.app, bundle.b, "hammock")
	pid := backendPID(t, bundle.app)
	scopes := []db.Scope{bundle.a, bundle.a, bundle.b, bundle.a, bundle.b}
	calls := map[int]int{}
	results, errs, err := db.Each(ctx, bundle.app, scopes, func(i int, q *dbsqlc.Queries) (string, error) {
		calls[i]++
		switch i {
		case 1: // two statements, the second only once the first answered
			if _, err := q.ProductGet(ctx, pa.ID); err != nil {
				return "", err
			}
			p, err := q.ProductGet(ctx, pa.ID)
			return p.Name, err
		case 2: // two statements, errors ignored
			_, _ = q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 1})
			p, err := q.ProductGet(ctx, pb.ID)
			return p.Name, err
		case 3: // not deterministic: another statement the second time
			if calls[i] == 2 {
				items, err := q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 1})
				return fmt.Sprint(len(items)), err
			}
		}
		id := map[uuid.UUID]uuid.UUID{bundle.a.TenantID: pa.ID, bundle.b.TenantID: pb.ID}[scopes[i].TenantID]
		p, err := q.ProductGet(ctx, id)
		return p.Name, err
	})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.Equal(t, "anvil", results[0])
	require.ErrorContains(t, errs[1], "single statement")
	require.ErrorContains(t, errs[2], "single statement")
	require.ErrorContains(t, errs[3], "deterministic")
	require.NoError(t, errs[4])
	require.Equal(t, "hammock", results[4])
	require.Equal(t, map[int]int{0: 2, 1: 2, 2: 1, 3: 2, 4: 2}, calls, "unit 2 was refused when recorded, before sending")
	requireCleanConnection(t, bundle.app, pid)
}

// Every scope passes One's checks before anything is sent or fn is called.
func TestEachRefusesAScopeWithoutTenantOrRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	for _, tc := range []struct {
		bad  db.Scope
		want error
	}{
		{db.Scope{Role: dbtype.RoleAdmin}, db.ErrNoTenant},
		{db.Scope{TenantID: bundle.a.TenantID}, db.ErrNoRole},
		{db.Scope{TenantID: bundle.a.TenantID, Role: "superuser"}, db.ErrNoRole},
	} {
		called := 0
		_, errs, err := db.Each(ctx, bundle.app, []db.Scope{bundle.a, tc.bad, bundle.b}, func(i int, q *dbsqlc.Queries) (int, error) {
			called++
			_, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "never"})
			return 0, err
		})
		require.ErrorIs(t, err, tc.want)
		require.ErrorContains(t, err, "scope 1")
		require.Zero(t, called, "fn is not called")
		for i := range errs {
			require.ErrorIs(t, errs[i], tc.want, "every unit has the call's error")
		}
	}
	require.Empty(t, listProducts(t, bundle.app, bundle.a), "nothing was sent")
	require.Empty(t, listProducts(t, bundle.app, bundle.b))
}

// n units cost one round trip (one batch) once the connection has prepared
// the statements, as One does.
func TestEachIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	tenants := keyedTenants(t, bundle, 8)
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
	batches := &batchCounter{}
	cfg.ConnConfig.Tracer = batches
	pool, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	scopes := make([]db.Scope, len(tenants))
	for i, kt := range tenants {
		scopes[i] = kt.auth
	}
	run := func() {
		_, errs, err := db.Each(ctx, pool, scopes, func(i int, q *dbsqlc.Queries) (dbsqlc.APIKeyAuthenticateRow, error) {
			return q.APIKeyAuthenticate(ctx, tenants[i].key)
		})
		require.NoError(t, err)
		for i := range errs {
			require.NoError(t, errs[i])
		}
	}
	run() // the first use of a statement on a connection prepares it
	mu.Lock()
	before := trips
	mu.Unlock()
	batchesBefore, queriesBefore := batches.counts()
	run()
	mu.Lock()
	require.Equal(t, 1, trips-before, "%d units in one round trip", len(scopes))
	mu.Unlock()
	b, q := batches.counts()
	require.Equal(t, 1, b-batchesBefore, "one batch")
	require.Equal(t, 0, q-queriesBefore, "no statement outside it")

	// A failed unit costs the ROLLBACK's round trip more. pgx drops every
	// statement of a batch that failed from its cache, so the connection's
	// next batch deallocates and prepares them again (two more).
	create := func(price int64) int {
		mu.Lock()
		before := trips
		mu.Unlock()
		_, errs, err := db.Each(ctx, pool, []db.Scope{tenants[0].admin, tenants[1].admin}, func(i int, q *dbsqlc.Queries) (dbsqlc.Product, error) {
			return q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "counted", Price: price})
		})
		require.NoError(t, err)
		if price < 0 {
			require.ErrorIs(t, errs[0], db.ErrInvalid)
			require.ErrorIs(t, errs[1], db.ErrNotRun)
		}
		mu.Lock()
		defer mu.Unlock()
		return trips - before
	}
	create(1)
	require.Equal(t, 1, create(1))
	require.Equal(t, 2, create(-1), "the batch and the ROLLBACK")
	require.Equal(t, 3, create(1), "deallocate, prepare, the batch")
	require.Equal(t, 1, create(1))
}

// batchCounter is a pgx tracer that counts batches and lone statements.
type batchCounter struct {
	mu               sync.Mutex
	batches, queries int
}

func (c *batchCounter) counts() (batches, queries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batches, c.queries
}

func (c *batchCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	c.queries++
	c.mu.Unlock()
	return ctx
}

func (c *batchCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *batchCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.mu.Lock()
	c.batches++
	c.mu.Unlock()
	return ctx
}

func (c *batchCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *batchCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
