package db_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/pgserver"
)

// The pooling property: many goroutines, hundreds of tenants, random
// operations over a pool far smaller than the number of goroutines, so
// connections pass from tenant to tenant constantly. No answer may ever hold
// another tenant's row, and afterwards every tenant holds exactly the rows
// its own successful writes left.

type ledger struct {
	mu   sync.Mutex
	live map[uuid.UUID]map[uuid.UUID]bool // tenant -> product ids created and not deleted
	ever map[uuid.UUID]uuid.UUID          // product id -> tenant that created it
}

func (l *ledger) created(tenant, id uuid.UUID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.live[tenant][id] = true
	l.ever[id] = tenant
}

func (l *ledger) deleted(tenant, id uuid.UUID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.live[tenant], id)
}

// pick returns one of tenant's live ids, if any.
func (l *ledger) pick(rng *rand.Rand, tenant uuid.UUID) (uuid.UUID, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.live[tenant])
	if n == 0 {
		return uuid.Nil, false
	}
	i := rng.IntN(n)
	for id := range l.live[tenant] {
		if i == 0 {
			return id, true
		}
		i--
	}
	return uuid.Nil, false
}

func propertyRun(t *testing.T, pool *pgxpool.Pool, admin *pgxpool.Pool, tenants []db.Scope, workers, ops int) {
	t.Helper()
	ctx := context.Background()
	l := &ledger{live: map[uuid.UUID]map[uuid.UUID]bool{}, ever: map[uuid.UUID]uuid.UUID{}}
	for _, s := range tenants {
		l.live[s.TenantID] = map[uuid.UUID]bool{}
	}
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			errc <- propertyWorker(ctx, rng, pool, tenants, l, ops)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(t, err)
	}

	// Every write landed in its own tenant, and only the writes that succeeded.
	rows, err := admin.Query(ctx, "select tenant_id, id from products")
	require.NoError(t, err)
	type row struct{ Tenant, ID uuid.UUID }
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	got := map[uuid.UUID]map[uuid.UUID]bool{}
	for _, r := range all {
		if got[r.Tenant] == nil {
			got[r.Tenant] = map[uuid.UUID]bool{}
		}
		got[r.Tenant][r.ID] = true
	}
	for _, s := range tenants {
		want := l.live[s.TenantID]
		if len(want) == 0 {
			require.Empty(t, got[s.TenantID])
			continue
		}
		require.Equal(t, want, got[s.TenantID], "tenant %s", s.TenantID)
	}
}

func propertyWorker(ctx context.Context, rng *rand.Rand, pool *pgxpool.Pool, tenants []db.Scope, l *ledger, ops int) error {
	mine := func(s db.Scope, p dbsqlc.Product) error {
		if p.TenantID != s.TenantID {
			return fmt.Errorf("LEAK: tenant %s received product %s of tenant %s", s.TenantID, p.ID, p.TenantID)
		}
		return nil
	}
	for i := range ops {
		s := tenants[rng.IntN(len(tenants))]
		switch rng.IntN(6) {
		case 0, 1: // create
			p, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
				return q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: fmt.Sprintf("p%d", i), Price: int64(i)})
			})
			if err != nil {
				return err
			}
			if err := mine(s, p); err != nil {
				return err
			}
			l.created(s.TenantID, p.ID)
		case 2: // list
			items, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
				return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 100})
			})
			if err != nil {
				return err
			}
			for _, p := range items {
				if err := mine(s, p); err != nil {
					return err
				}
			}
		case 3: // get one of ours, then one of another tenant's
			if id, ok := l.pick(rng, s.TenantID); ok {
				p, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(ctx, id) })
				if err != nil && !errors.Is(err, db.ErrNotFound) { // a concurrent delete may have won
					return err
				}
				if err == nil {
					if err := mine(s, p); err != nil {
						return err
					}
				}
			}
			other := tenants[rng.IntN(len(tenants))]
			if id, ok := l.pick(rng, other.TenantID); ok && other != s {
				p, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(ctx, id) })
				if err == nil {
					return fmt.Errorf("LEAK: tenant %s read product %s of tenant %s", s.TenantID, p.ID, other.TenantID)
				}
				if !errors.Is(err, db.ErrNotFound) {
					return err
				}
			}
		case 4: // update
			if id, ok := l.pick(rng, s.TenantID); ok {
				name := fmt.Sprintf("u%d", i)
				p, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
					return q.ProductUpdate(ctx, dbsqlc.ProductUpdateParams{ID: id, Name: &name})
				})
				if err != nil && !errors.Is(err, db.ErrNotFound) {
					return err
				}
				if err == nil {
					if err := mine(s, p); err != nil {
						return err
					}
				}
			}
		case 5: // delete
			if id, ok := l.pick(rng, s.TenantID); ok {
				_, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ProductDelete(ctx, id) })
				switch {
				case err == nil:
					l.deleted(s.TenantID, id)
				case !errors.Is(err, db.ErrNotFound):
					return err
				}
			}
		}
	}
	return nil
}

func manyTenants(t *testing.T, admin *pgxpool.Pool, n int) []db.Scope {
	t.Helper()
	out := make([]db.Scope, 0, n)
	for i := range n {
		out = append(out, db.Scope{TenantID: createTenant(t, admin, fmt.Sprintf("prop-%03d", i)), Role: dbtype.RoleAdmin})
	}
	return out
}

func TestPoolingPropertyPoolOfTwo(t *testing.T) {
	t.Parallel()
	bundle := setup(t, 2)
	tenants := manyTenants(t, bundle.admin, 200)
	propertyRun(t, bundle.app, bundle.admin, tenants, 16, 150)
}

// The same through PgBouncer in transaction pooling mode with two server
// connections: the implicit transaction of db.One's pipeline keeps the setting
// and the statement on one server connection, and nothing outlives it.
func TestPoolingPropertyThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	bouncer, err := pgserver.StartPgBouncer(ctx, bundle.tdb.AppURL, 2)
	require.NoError(t, err, "make test installs pgbouncer through .ci/run; install it with apt-get install -y pgbouncer")
	defer bouncer.Stop()

	cfg, err := pgxpool.ParseConfig(bouncer.URL)
	require.NoError(t, err)
	cfg.MaxConns = 8
	// Transaction pooling cannot keep server-side prepared statements
	// (PgBouncer < 1.21): statements are parsed unnamed in each pipeline.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()

	// The hazard is real here: a session-level setting made by one client is
	// seen by another client that lands on the same server connection.
	a := createProduct(t, bundle.app, bundle.a, "a's")
	leak, err := pgserver.StartPgBouncer(ctx, bundle.tdb.AppURL, 1)
	require.NoError(t, err)
	defer leak.Stop()
	c1, err := pgx.Connect(ctx, leak.URL)
	require.NoError(t, err)
	defer c1.Close(ctx)
	c2, err := pgx.Connect(ctx, leak.URL)
	require.NoError(t, err)
	defer c2.Close(ctx)
	_, err = c1.Exec(ctx, "select set_config('app.tenant_id', $1, false), set_config('app.role', 'viewer', false)", pgx.QueryExecModeExec, a.TenantID.String())
	require.NoError(t, err)
	var seen int
	require.NoError(t, c2.QueryRow(ctx, "select count(*) from products", pgx.QueryExecModeExec).Scan(&seen))
	require.Equal(t, 1, seen, "control: a session-level setting leaks to another PgBouncer client")

	tenants := manyTenants(t, bundle.admin, 200)
	propertyRun(t, pool, bundle.admin, tenants, 16, 150)
}
