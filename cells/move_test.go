package cells_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func pool(t *testing.T, url, user string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	if user != "" {
		cfg.ConnConfig.User, cfg.ConnConfig.Password = user, ""
	}
	p, err := db.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// twoCells starts a cluster with wal_level = logical whose database is the
// default cell (and the catalog), migrated, with tenants acme (5000
// products) and globex, and a second cell eu1 (a database of pgtest's
// cluster). The pools connect as superusers.
func twoCells(t *testing.T) (src *pgserver.Server, srcSuper *pgxpool.Pool, tgt *pgtest.DB, tgtSuper *pgxpool.Pool, tenants map[string]lifecycle.Onboarded) {
	t.Helper()
	ctx := context.Background()
	src, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"wal_level=logical", "max_replication_slots=10", "max_wal_senders=10"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Stop(context.Background()) })
	m, err := migrate.New(src.URL, nil)
	require.NoError(t, err)
	_, err = m.Up(ctx)
	require.NoError(t, err)
	m.Close()
	tgt = pgtest.New(t)

	srcSuper, tgtSuper = pool(t, src.URL, ""), pool(t, tgt.AdminURL, "")
	_, err = cells.Register(ctx, srcSuper, "eu1", nil)
	require.NoError(t, err)
	tenants = map[string]lifecycle.Onboarded{}
	for _, slug := range []string{"acme", "globex"} {
		tenants[slug], err = lifecycle.Onboard(ctx, srcSuper, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "a@" + slug + ".example"})
		require.NoError(t, err)
	}
	_, err = srcSuper.Exec(ctx, "INSERT INTO products (tenant_id, name, price) SELECT $1, 'p' || g, g FROM generate_series(1, 5000) g", tenants["acme"].Tenant.ID)
	require.NoError(t, err)

	return src, srcSuper, tgt, tgtSuper, tenants
}

// Issue #18 items 3 and 4: a tenant moves online from the default cell (a
// cluster with wal_level = logical, which also holds the catalog) to
// another cell (a database of a second cluster) while it and another tenant
// write through the API. No acknowledged write is lost, no row is left in
// two cells, the other tenant's writes never pause, and the moved tenant's
// writes pause (503) only between the freeze and the switch.
func TestMoveATenantOnline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, srcSuper, tgt, tgtSuper, tenants := twoCells(t)
	acme := tenants["acme"].Tenant.ID
	srcApp, tgtApp := pool(t, src.URL, db.AppRole), tgt.AppPool(t, 4)
	set, err := cells.NewSet(&cells.Cell{Name: cells.Default, App: srcApp}, &cells.Cell{Name: "eu1", App: tgtApp})
	require.NoError(t, err)
	const ttl = 200 * time.Millisecond
	resolver := tenancy.NewResolver(srcApp, ttl)
	authn, err := auth.New(auth.Config{Pool: srcApp, Tenants: resolver, CacheTTL: ttl, PoolFor: set.PoolFor(resolver)})
	require.NoError(t, err)
	h, err := httpapi.NewServer(httpapi.Config{Pool: srcApp, Resolver: resolver, Auth: authn, Cells: set,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	type writer struct {
		acked       []string
		unavailable int
		longest     time.Duration
		other       int // answers neither 201 nor 503
	}
	writers := map[string]*writer{"acme": {}, "globex": {}}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for slug, w := range writers {
		wg.Go(func() {
			last := time.Now()
			for i := 0; !stop.Load(); i++ {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/products", strings.NewReader(`{"name":"w","price":1}`))
				req.Header.Set("X-Tenant-ID", slug)
				req.Header.Set("Authorization", "Bearer "+tenants[slug].Key)
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					w.other++
					continue
				}
				var body struct{ ID string }
				_ = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				switch res.StatusCode {
				case 201:
					w.acked = append(w.acked, body.ID)
					w.longest = max(w.longest, time.Since(last))
					last = time.Now()
				case 503:
					require.NotEmpty(t, res.Header.Get("Retry-After"))
					w.unavailable++
					time.Sleep(20 * time.Millisecond)
				default:
					w.other++
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	move := &cells.Move{Tenant: acme, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper,
		SourceConnString: src.URL, Settle: 2 * ttl}
	rep, err := move.Run(ctx)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // the writer goes on in the new cell
	stop.Store(true)
	wg.Wait()
	t.Logf("copy %s, writes frozen %s, rows %v; acme: %d acked, %d answered 503, longest gap between acked writes %s; globex: %d acked, longest gap %s",
		rep.Copy, rep.Frozen, rep.Rows, len(writers["acme"].acked), writers["acme"].unavailable, writers["acme"].longest,
		len(writers["globex"].acked), writers["globex"].longest)

	count := func(p *pgxpool.Pool, sql string, args ...any) (n int) {
		require.NoError(t, p.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	require.Zero(t, writers["acme"].other+writers["globex"].other, "only 201 or 503")
	require.Zero(t, writers["globex"].unavailable, "the other tenant never paused")
	ids := writers["acme"].acked
	require.Equal(t, len(ids), count(tgtSuper, "SELECT count(*) FROM products WHERE id = ANY($1::uuid[])", ids), "no acknowledged write lost")
	require.Equal(t, 5000+len(ids), count(tgtSuper, "SELECT count(*) FROM products WHERE tenant_id = $1", acme))
	for _, table := range []string{"products", "users", "api_keys", "exports", "export_chunks", "idempotency_keys"} {
		require.Zero(t, count(srcSuper, "SELECT count(*) FROM "+table+" WHERE tenant_id = $1", acme), "no %s row left in the source", table)
		require.Zero(t, count(tgtSuper, "SELECT count(*) FROM "+table+" WHERE tenant_id <> $1", acme), "no other tenant's %s row in the target", table)
	}
	require.Equal(t, 1, count(srcSuper, "SELECT count(*) FROM tenants WHERE id = $1 AND cell = 'eu1'", acme), "the catalog places it in eu1")
	require.Equal(t, 1, count(tgtSuper, "SELECT count(*) FROM tenants WHERE id = $1 AND cell = 'eu1'", acme))
	require.Zero(t, count(srcSuper, "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_replication_slots)"),
		"no replication object is left")
	tomb := "rf_move_" + strings.ReplaceAll(acme.String(), "-", "")
	require.Equal(t, count(srcSuper, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'rf\\_move\\_%'"),
		count(srcSuper, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE $1 || '%'", tomb), "only the moved tenant's tombstone is left in the source")
	require.Equal(t, 1, count(srcSuper, "SELECT count(*) FROM pg_proc WHERE proname = $1 AND prosrc LIKE '%RAISE%'", tomb), "frozen: a late write gets 503")
	require.Zero(t, count(tgtSuper, "SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"))
	// A move from where the tenant no longer is changes nothing.
	_, err = (&cells.Move{Tenant: acme, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper}).Run(ctx)
	require.ErrorIs(t, err, db.ErrConflict)
	require.Equal(t, 5000+len(ids), count(tgtSuper, "SELECT count(*) FROM products WHERE tenant_id = $1", acme))
	_, err = (&cells.Move{Tenant: uuid.New(), From: "eu1", To: cells.Default, Catalog: srcSuper, Source: tgtSuper, Target: srcSuper}).Run(ctx)
	require.Error(t, err, "no such tenant")
}

// Issue #18 item 3: a move can be cancelled at any point, and whatever the
// point, the tenant is served from exactly one cell: its rows are in the
// cell the catalog names and nowhere else, and no replication object or
// freeze is left behind.
func TestMoveCancelledLeavesOneCell(t *testing.T) {
	t.Parallel()
	for _, after := range []time.Duration{0, 50 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			t.Parallel()
			src, srcSuper, _, tgtSuper, tenants := twoCells(t)
			acme := tenants["acme"].Tenant.ID
			ctx, cancel := context.WithTimeout(context.Background(), after)
			defer cancel()
			move := &cells.Move{Tenant: acme, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper,
				SourceConnString: src.URL}
			_, err := move.Run(ctx)
			bg := context.Background()
			count := func(p *pgxpool.Pool, sql string, args ...any) (n int) {
				require.NoError(t, p.QueryRow(bg, sql, args...).Scan(&n))
				return n
			}
			var placed string
			require.NoError(t, srcSuper.QueryRow(bg, "SELECT cell FROM tenants WHERE id = $1", acme).Scan(&placed))
			t.Logf("cancelled after %s: %v; placed in %s", after, err, placed)
			if placed == cells.Default {
				require.Error(t, err)
				require.Equal(t, 5000, count(srcSuper, "SELECT count(*) FROM products WHERE tenant_id = $1", acme))
				require.Zero(t, count(tgtSuper, "SELECT count(*) FROM products"))
				require.Zero(t, count(tgtSuper, "SELECT count(*) FROM tenants"))
			} else {
				require.Zero(t, count(srcSuper, "SELECT count(*) FROM products WHERE tenant_id = $1", acme))
				require.Equal(t, 5000, count(tgtSuper, "SELECT count(*) FROM products"))
			}
			require.Zero(t, count(srcSuper, "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'rf_move_%')"))
			require.Zero(t, count(tgtSuper, "SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"))
			// Writes work again in the source (no freeze left).
			_, err = srcSuper.Exec(bg, "INSERT INTO products (tenant_id, name, price) VALUES ($1, 'after', 1)", tenants["globex"].Tenant.ID)
			require.NoError(t, err)
		})
	}
}

// A tenant's export in progress when it moves: its River job stays behind
// in the source cell (where it then finds no export and cancels), so the
// target's copy of the export must not stay pending or running for ever
// (it would show as in progress and never finish). Finish marks it failed,
// saying why; a done export moves with its chunks and stays done.
func TestMoveFailsExportsInProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, srcSuper, _, tgtSuper, tenants := twoCells(t)
	acme := tenants["acme"]
	var pending, done uuid.UUID
	require.NoError(t, srcSuper.QueryRow(ctx, "INSERT INTO exports (tenant_id, requested_by) VALUES ($1, $2) RETURNING id",
		acme.Tenant.ID, acme.Admin.ID).Scan(&pending))
	require.NoError(t, srcSuper.QueryRow(ctx, `INSERT INTO exports (tenant_id, requested_by, status, bytes, chunks, finished_at)
		VALUES ($1, $2, 'done', 1, 1, now()) RETURNING id`, acme.Tenant.ID, acme.Admin.ID).Scan(&done))
	_, err := srcSuper.Exec(ctx, "INSERT INTO export_chunks (tenant_id, export_id, seq, data) VALUES ($1, $2, 0, 'x')", acme.Tenant.ID, done)
	require.NoError(t, err)
	move := &cells.Move{Tenant: acme.Tenant.ID, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper,
		SourceConnString: src.URL}
	_, err = move.Run(ctx)
	require.NoError(t, err)
	status := func(id uuid.UUID) (s string) {
		require.NoError(t, tgtSuper.QueryRow(ctx, "SELECT status FROM exports WHERE id = $1", id).Scan(&s))
		return s
	}
	require.Equal(t, "failed", status(pending), "an export in progress does not outlive its job")
	require.Equal(t, "done", status(done))
	var chunks int
	require.NoError(t, tgtSuper.QueryRow(ctx, "SELECT count(*) FROM export_chunks WHERE export_id = $1", done).Scan(&chunks))
	require.Equal(t, 1, chunks)
}

// Two runs of one tenant's move at once undo each other's steps: a rescued
// River attempt beside the first (from review: River rescues a job still
// running after its timeout), or `tenant move --cleanup` beside a move in
// progress, whose Abort deletes what the target holds while the copy fills
// it. Run, Abort and Finish take the tenant's move lock and do not wait
// for it.
func TestMoveLockRefusesASecondRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, srcSuper, _, tgtSuper, tenants := twoCells(t)
	acme := tenants["acme"].Tenant.ID
	holder, err := srcSuper.Acquire(ctx)
	require.NoError(t, err)
	defer holder.Release()
	_, err = holder.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended('rowfence.move:' || $1::text, 0))", acme)
	require.NoError(t, err)

	m := &cells.Move{Tenant: acme, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper, SourceConnString: src.URL}
	_, err = m.Run(ctx)
	require.ErrorIs(t, err, cells.ErrMoveRunning)
	require.ErrorIs(t, m.Abort(ctx), cells.ErrMoveRunning)
	require.ErrorIs(t, m.Finish(ctx), cells.ErrMoveRunning)
	var n int
	require.NoError(t, srcSuper.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_replication_slots)").Scan(&n))
	require.Zero(t, n, "nothing was started")

	_, err = holder.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	require.NoError(t, err)
	_, err = m.Run(ctx)
	require.NoError(t, err, "the lock's holder gone, the move runs")
}
