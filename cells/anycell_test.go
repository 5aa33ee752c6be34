package cells_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/audit"
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

// grid is a set of cells for a test: the default cell (the catalog) and
// "eu1" are databases of one cluster with wal_level = logical (a
// subscription's source needs it), "us1" a database of pgtest's cluster.
// Every pool connects as a superuser, apart from app.
type grid struct {
	urls  map[string]string
	super map[string]*pgxpool.Pool
	app   map[string]*pgxpool.Pool
	set   *cells.Set
}

func newGrid(t *testing.T) *grid {
	t.Helper()
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"wal_level=logical", "max_replication_slots=10", "max_wal_senders=10"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	conn, err := pgx.Connect(ctx, srv.URL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE eu1")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	us1 := pgtest.New(t)
	g := &grid{urls: map[string]string{cells.Default: srv.URL, "eu1": pgtest.URL(srv.URL, "eu1"), "us1": us1.AdminURL},
		super: map[string]*pgxpool.Pool{}, app: map[string]*pgxpool.Pool{}}
	for _, name := range []string{cells.Default, "eu1"} {
		m, err := migrate.New(g.urls[name], nil)
		require.NoError(t, err)
		_, err = m.Up(ctx)
		require.NoError(t, err)
		m.Close()
		g.app[name] = pool(t, g.urls[name], db.AppRole)
	}
	g.app["us1"] = us1.AppPool(t, 4)
	var all []*cells.Cell
	for name, url := range g.urls {
		g.super[name] = pool(t, url, "")
		all = append(all, &cells.Cell{Name: name, App: g.app[name]})
	}
	g.set, err = cells.NewSet(all...)
	require.NoError(t, err)
	for _, name := range []string{"eu1", "us1"} {
		_, err = cells.Register(ctx, g.super[cells.Default], name, nil)
		require.NoError(t, err)
	}
	return g
}

// onboard creates tenant slug in cell with n products.
func (g *grid) onboard(t *testing.T, slug, cell string, n int) lifecycle.Onboarded {
	t.Helper()
	ctx := context.Background()
	o, err := lifecycle.OnboardIn(ctx, g.super[cells.Default], g.super[cell], cell, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "a@" + slug + ".example"})
	require.NoError(t, err)
	_, err = g.super[cell].Exec(ctx, "INSERT INTO products (tenant_id, name, price) SELECT $1, 'p' || g, g FROM generate_series(1, $2::int) g", o.Tenant.ID, n)
	require.NoError(t, err)
	return o
}

func (g *grid) move(o lifecycle.Onboarded, from, to string, settle time.Duration) *cells.Move {
	return &cells.Move{Tenant: o.Tenant.ID, From: from, To: to, Catalog: g.super[cells.Default], Source: g.super[from], Target: g.super[to],
		SourceConnString: g.urls[from], Settle: settle}
}

func (g *grid) count(t *testing.T, cell, sql string, args ...any) (n int) {
	t.Helper()
	require.NoError(t, g.super[cell].QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// tenantRows counts the rows of tenant id in every table of cell that has a
// tenant_id, and its copy of the tenants row.
func (g *grid) tenantRows(t *testing.T, cell string, id any) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := g.super[cell].Query(ctx, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]int{"tenants": g.count(t, cell, "SELECT count(*) FROM tenants WHERE id = $1", id)}
	for _, table := range tables {
		if n := g.count(t, cell, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()+" WHERE tenant_id = $1", id); n > 0 {
			out[table] = n
		}
	}
	if out["tenants"] == 0 {
		delete(out, "tenants")
	}
	return out
}

// noMoveObjects: no publication, slot or subscription is left in cell, and
// no freeze but the tombstones of tenants the catalog places elsewhere,
// frozen (a late write there gets 503: TestSlowWriteAcrossMoveIsNotLost).
func (g *grid) noMoveObjects(t *testing.T, cell string) {
	t.Helper()
	ctx := context.Background()
	require.Zero(t, g.count(t, cell, `SELECT (SELECT count(*) FROM pg_publication)
		+ (SELECT count(*) FROM pg_replication_slots WHERE database = current_database())
		+ (SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))`), cell)
	rows, err := g.super[cell].Query(ctx, `SELECT DISTINCT substring(tgname FROM '^rf_move_([0-9a-f]{32})'),
		coalesce((SELECT bool_or(p.prosrc LIKE '%RAISE%') FROM pg_proc p WHERE p.proname = substring(tgname FROM '^rf_move_[0-9a-f]{32}')), false)
		FROM pg_trigger WHERE tgname LIKE 'rf\_move\_%'`)
	require.NoError(t, err)
	type tomb struct {
		Hex    string
		Frozen bool
	}
	tombs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tomb])
	require.NoError(t, err)
	for _, tb := range tombs {
		var placed string
		require.NoError(t, g.super[cells.Default].QueryRow(ctx, "SELECT cell FROM tenants WHERE replace(id::text, '-', '') = $1", tb.Hex).Scan(&placed))
		require.NotEqual(t, cell, placed, "%s: a freeze of a tenant placed there", cell)
		require.True(t, tb.Frozen, "%s: a tombstone refuses writes", cell)
	}
}

// load is writers (POST /v1/products) and readers (GET /v1/products) of
// some tenants through one server routing by cell, until stop.
type load struct {
	mu      sync.Mutex
	acked   map[string][]string
	paused  map[string]int
	wrong   []string // answers other than 201/200/503, and foreign rows answered
	stopped atomic.Bool
	wg      sync.WaitGroup
}

// server serves every cell of g, routing by the catalog's placements,
// with tenant caches of ttl.
func (g *grid) server(t *testing.T, ttl time.Duration) *httptest.Server {
	t.Helper()
	catalog := g.app[cells.Default]
	resolver := tenancy.NewResolver(catalog, ttl)
	authn, err := auth.New(auth.Config{Pool: catalog, Tenants: resolver, CacheTTL: ttl, PoolFor: g.set.PoolFor(resolver)})
	require.NoError(t, err)
	h, err := httpapi.NewServer(httpapi.Config{Pool: catalog, Resolver: resolver, Auth: authn, Cells: g.set,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func (g *grid) startLoad(t *testing.T, ttl time.Duration, tenants map[string]lifecycle.Onboarded) *load {
	t.Helper()
	srv := g.server(t, ttl)
	l := &load{acked: map[string][]string{}, paused: map[string]int{}}
	do := func(slug, method, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, srv.URL+"/v1/products", strings.NewReader(body))
		req.Header.Set("X-Tenant-ID", slug)
		req.Header.Set("Authorization", "Bearer "+tenants[slug].Key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	for slug := range tenants {
		l.wg.Go(func() { // writer
			for !l.stopped.Load() {
				res, b := do(slug, "POST", `{"name":"w-`+slug+`","price":1}`)
				l.mu.Lock()
				switch {
				case res != nil && res.StatusCode == 201:
					var p struct{ ID string }
					_ = json.Unmarshal(b, &p)
					l.acked[slug] = append(l.acked[slug], p.ID)
				case res != nil && res.StatusCode == 503 && res.Header.Get("Retry-After") != "":
					l.paused[slug]++
				default:
					l.wrong = append(l.wrong, slug+" POST: "+string(b))
				}
				l.mu.Unlock()
				if res != nil && res.StatusCode == 503 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
		l.wg.Go(func() { // reader: never a row of another tenant
			for !l.stopped.Load() {
				res, b := do(slug, "GET", "")
				var page struct{ Items []struct{ Name string } }
				_ = json.Unmarshal(b, &page)
				l.mu.Lock()
				if res == nil || res.StatusCode != 200 {
					l.wrong = append(l.wrong, slug+" GET: "+string(b))
				}
				for _, p := range page.Items {
					if strings.HasPrefix(p.Name, "w-") && p.Name != "w-"+slug {
						l.wrong = append(l.wrong, slug+" read "+p.Name)
					}
				}
				l.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	return l
}

func (l *load) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// Issue #18: a tenant moves back into the default cell (whose database also
// holds the catalog, and so the tenant's row already), and between two
// cells that are not the default one, online, while it and another tenant
// write and read through the API. No acknowledged write is lost, no row is
// left in two cells, no foreign row is answered, the other tenant never
// pauses, and the catalog's row and the cell's copy of it are right after
// each move (the copy equals the catalog's row, also when the catalog's row
// changed while the tenant was in its old cell).
func TestMoveBetweenAnyCells(t *testing.T) {
	t.Parallel()
	for _, route := range [][]string{{cells.Default, "eu1", cells.Default}, {"eu1", "us1"}} {
		t.Run(strings.Join(route, "-"), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			g := newGrid(t)
			acme := g.onboard(t, "acme", route[0], 3000)
			globex := g.onboard(t, "globex", cells.Default, 10)
			catalog := g.super[cells.Default]
			const ttl = 200 * time.Millisecond
			l := g.startLoad(t, ttl, map[string]lifecycle.Onboarded{"acme": acme, "globex": globex})
			time.Sleep(300 * time.Millisecond)
			for i := 1; i < len(route); i++ {
				// The catalog's row changes while the tenant is in a cell:
				// the copy in its next cell must follow the catalog.
				_, err := catalog.Exec(ctx, "UPDATE tenants SET name = $2, rate_limit = $3 WHERE id = $1", acme.Tenant.ID, "Acme "+route[i], 100+i)
				require.NoError(t, err)
				rep, err := g.move(acme, route[i-1], route[i], 2*ttl).Run(ctx)
				require.NoError(t, err, "%s to %s", route[i-1], route[i])
				t.Logf("%s to %s: copy %s, frozen %s, rows %v", route[i-1], route[i], rep.Copy, rep.Frozen, rep.Rows)
				require.NotZero(t, rep.Rows["products"])
				time.Sleep(300 * time.Millisecond)
			}
			l.stop()
			to := route[len(route)-1]
			t.Logf("acme: %d acked, %d paused; globex: %d acked, %d paused", len(l.acked["acme"]), l.paused["acme"], len(l.acked["globex"]), l.paused["globex"])
			require.Empty(t, l.wrong, "only 201/200 or 503 with Retry-After, and never a foreign row")
			require.Zero(t, l.paused["globex"], "the other tenant never paused")
			require.NotEmpty(t, l.acked["acme"])
			ids := l.acked["acme"]
			require.Equal(t, len(ids), g.count(t, to, "SELECT count(*) FROM products WHERE id = ANY($1::uuid[]) AND tenant_id = $2", ids, acme.Tenant.ID), "no acknowledged write lost")
			require.Equal(t, 3000+len(ids), g.count(t, to, "SELECT count(*) FROM products WHERE tenant_id = $1", acme.Tenant.ID))
			for cell := range g.urls {
				rows := g.tenantRows(t, cell, acme.Tenant.ID)
				switch {
				case cell == to && cell == cells.Default, cell == to:
					require.Equal(t, 1, rows["tenants"], "%s: %v", cell, rows)
					require.NotZero(t, rows["users"])
				case cell == cells.Default:
					require.Equal(t, map[string]int{"tenants": 1}, rows, "the catalog's row only")
				default:
					require.Empty(t, rows, "nothing of the tenant is left in %s", cell)
				}
				g.noMoveObjects(t, cell)
			}
			var placed, status, name string
			require.NoError(t, catalog.QueryRow(ctx, "SELECT cell, status, name FROM tenants WHERE id = $1", acme.Tenant.ID).Scan(&placed, &status, &name))
			require.Equal(t, []string{to, "active", "Acme " + to}, []string{placed, status, name})
			if to != cells.Default {
				var catalogRow, copyRow string
				require.NoError(t, catalog.QueryRow(ctx, "SELECT to_jsonb(t)::text FROM tenants t WHERE id = $1", acme.Tenant.ID).Scan(&catalogRow))
				require.NoError(t, g.super[to].QueryRow(ctx, "SELECT to_jsonb(t)::text FROM tenants t WHERE id = $1", acme.Tenant.ID).Scan(&copyRow))
				require.JSONEq(t, catalogRow, copyRow, "the cell's copy is the catalog's row")
			}
			// globex never left the default cell.
			require.Equal(t, 10+len(l.acked["globex"]), g.count(t, cells.Default, "SELECT count(*) FROM products WHERE tenant_id = $1", globex.Tenant.ID))
		})
	}
}

// get answers GET /v1/products as o: the status and the problem's type
// ("" for a success).
func get(t *testing.T, srv *httptest.Server, slug string, o lifecycle.Onboarded) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/products", nil)
	req.Header.Set("X-Tenant-ID", slug)
	req.Header.Set("Authorization", "Bearer "+o.Key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var p struct{ Type string }
	_ = json.NewDecoder(res.Body).Decode(&p)
	return res.StatusCode, p.Type
}

// Issue #16 item 4 in any cell (#18): a tenant placed in a cell other than
// the default one is archived and restored there. Its archive lives in its
// cell (no row of it reaches the catalog's database), its live rows leave
// the cell's tables, and while it is archived its requests get 409
// tenant-archived through an instance serving every cell (the catalog says
// so), not 404s. Restore puts the rows back in its cell. Each command
// completes when rerun after a crash between its cell's step and the
// catalog's (simulated by putting the catalog's status back).
func TestArchiveAndRestoreInAnyCell(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrid(t)
	acme := g.onboard(t, "acme", "eu1", 500)
	catalog, eu1 := g.super[cells.Default], g.super["eu1"]
	srv := g.server(t, time.Millisecond)
	status := func(p *pgxpool.Pool) (s string) {
		require.NoError(t, p.QueryRow(ctx, "SELECT status FROM tenants WHERE id = $1", acme.Tenant.ID).Scan(&s))
		return s
	}

	_, err := lifecycle.ArchiveIn(ctx, catalog, eu1, "acme")
	require.ErrorIs(t, err, lifecycle.ErrNotSuspended)
	_, err = lifecycle.SetStatus(ctx, catalog, acme.Tenant.ID, "suspended", 0)
	require.NoError(t, err)
	a, err := lifecycle.ArchiveIn(ctx, catalog, eu1, "acme")
	require.NoError(t, err)
	require.Equal(t, 500, a.Counts["products"])
	require.Equal(t, []string{"archived", "archived"}, []string{status(catalog), status(eu1)})
	require.Equal(t, map[string]int{"tenants": 1, "exports": 1, "export_chunks": g.count(t, "eu1", "SELECT count(*) FROM export_chunks")},
		g.tenantRows(t, "eu1", acme.Tenant.ID), "only the archive is left in the cell")
	require.Equal(t, map[string]int{"tenants": 1}, g.tenantRows(t, cells.Default, acme.Tenant.ID), "the catalog holds no row of it but its own")
	time.Sleep(10 * time.Millisecond)
	code, typ := get(t, srv, "acme", acme)
	require.Equal(t, 409, code)
	require.Contains(t, typ, "tenant-archived")

	// A crash after the cell's step: the catalog still says suspended.
	_, err = catalog.Exec(ctx, "UPDATE tenants SET status = 'suspended' WHERE id = $1", acme.Tenant.ID)
	require.NoError(t, err)
	a, err = lifecycle.ArchiveIn(ctx, catalog, eu1, "acme")
	require.NoError(t, err, "a rerun completes it")
	require.Equal(t, 500, a.Counts["products"])
	require.Equal(t, "archived", status(catalog))

	imp, err := lifecycle.RestoreIn(ctx, catalog, eu1, "acme")
	require.NoError(t, err)
	require.Equal(t, 500, imp.Counts["products"])
	require.Equal(t, []string{"active", "active"}, []string{status(catalog), status(eu1)})
	require.Equal(t, 500, g.count(t, "eu1", "SELECT count(*) FROM products WHERE tenant_id = $1", acme.Tenant.ID))
	require.Zero(t, g.count(t, "eu1", "SELECT count(*) FROM exports WHERE kind = 'archive'"))
	time.Sleep(10 * time.Millisecond)
	code, _ = get(t, srv, "acme", acme)
	require.Equal(t, 200, code, "its key works again, in its cell")

	// A crash after the cell's restore: the catalog still says archived.
	_, err = catalog.Exec(ctx, "UPDATE tenants SET status = 'archived' WHERE id = $1", acme.Tenant.ID)
	require.NoError(t, err)
	_, err = lifecycle.RestoreIn(ctx, catalog, eu1, "acme")
	require.NoError(t, err, "a rerun completes it")
	require.Equal(t, "active", status(catalog))
	_, err = lifecycle.RestoreIn(ctx, catalog, eu1, "acme")
	require.ErrorIs(t, err, lifecycle.ErrNotArchived)
}

// An archived tenant moves with its archive (the archive is rows of its
// own tenant tables, exports and export_chunks), so a cell can be retired
// with archived tenants in it, and it is restored in its new cell. Before,
// Move refused an archived tenant (restore worked in the default cell only).
func TestMoveAnArchivedTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrid(t)
	acme := g.onboard(t, "acme", cells.Default, 500)
	catalog := g.super[cells.Default]
	_, err := lifecycle.SetStatus(ctx, catalog, acme.Tenant.ID, "suspended", 0)
	require.NoError(t, err)
	_, err = lifecycle.ArchiveIn(ctx, catalog, catalog, "acme")
	require.NoError(t, err)
	for _, hop := range [][2]string{{cells.Default, "eu1"}, {"eu1", "us1"}} {
		rep, err := g.move(acme, hop[0], hop[1], 0).Run(ctx)
		require.NoError(t, err, "%s to %s", hop[0], hop[1])
		require.Zero(t, rep.Rows["products"])
		require.Equal(t, int64(1), rep.Rows["exports"], "the archive moves")
	}
	for _, cell := range []string{cells.Default, "eu1"} {
		require.Zero(t, g.count(t, cell, "SELECT count(*) FROM exports")+g.count(t, cell, "SELECT count(*) FROM export_chunks"), cell)
	}
	var copyStatus string
	require.NoError(t, g.super["us1"].QueryRow(ctx, "SELECT status FROM tenants WHERE id = $1", acme.Tenant.ID).Scan(&copyStatus))
	require.Equal(t, "archived", copyStatus)
	imp, err := lifecycle.RestoreIn(ctx, catalog, g.super["us1"], "acme")
	require.NoError(t, err)
	require.Equal(t, 500, imp.Counts["products"])
	require.Equal(t, 500, g.count(t, "us1", "SELECT count(*) FROM products WHERE tenant_id = $1", acme.Tenant.ID))
	code, _ := get(t, g.server(t, time.Millisecond), "acme", acme)
	require.Equal(t, 200, code)
}

// replicationRole creates, in g's logical cluster, a login role for the
// subscription's connection to a source cell: REPLICATION (the walsender),
// BYPASSRLS when bypass (the initial copy's COPY must read the tenant's rows
// past FORCE ROW LEVEL SECURITY), SELECT on the tenant tables of the default
// cell and eu1 (the copy reads them), no superuser. It returns the source
// URL of cell for it (docs/SCALING.md, "The replication role").
func (g *grid) replicationRole(t *testing.T, name string, bypass bool) func(cell string) string {
	t.Helper()
	ctx := context.Background()
	attrs := "LOGIN REPLICATION NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE"
	if bypass {
		attrs += " BYPASSRLS"
	}
	_, err := g.super[cells.Default].Exec(ctx, "CREATE ROLE "+name+" "+attrs+" PASSWORD 'replication-secret'")
	require.NoError(t, err)
	for _, cell := range []string{cells.Default, "eu1"} {
		_, err := g.super[cell].Exec(ctx, `DO $$ DECLARE r record; BEGIN
			FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			         WHERE n.nspname = 'public' AND c.relkind = 'r'
			           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
			LOOP EXECUTE format('GRANT SELECT ON %s TO `+name+`', r.t); END LOOP; END $$`)
		require.NoError(t, err)
	}
	return func(cell string) string {
		u, err := url.Parse(g.urls[cell])
		require.NoError(t, err)
		u.User = url.UserPassword(name, "replication-secret")
		return u.String()
	}
}

// Issue #18: the subscription's connection to the source needs no
// superuser (PostgreSQL 15 docs, 31.9 "Security": the replication role
// needs REPLICATION and LOGIN, SELECT on the published tables for the
// initial copy, and SUPERUSER or BYPASSRLS for the publisher's row security
// not to apply). A move works with such a role; one without BYPASSRLS
// copies nothing past forced RLS, which the verification catches, and the
// move is undone. The role can never serve: serve's safety check refuses
// it and the audit lists it as a login that bypasses RLS.
func TestMoveWithAReplicationRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrid(t)
	acme := g.onboard(t, "acme", cells.Default, 500)

	bound := g.replicationRole(t, "rf_repl_bound", false)
	m := g.move(acme, cells.Default, "eu1", 0)
	m.SourceConnString = bound(cells.Default)
	_, err := m.Run(ctx)
	require.ErrorIs(t, err, cells.ErrVerify, "bound by RLS, the initial copy sees no row")
	require.Empty(t, g.tenantRows(t, "eu1", acme.Tenant.ID), "undone")
	g.noMoveObjects(t, "eu1")

	// A tenant table it may not read (one added after the role's grants):
	// the initial copy fails in the target, over and over; the move says so
	// instead of waiting for ever, and is undone.
	unread := g.replicationRole(t, "rf_repl_unread", true)
	_, err = g.super[cells.Default].Exec(ctx, "REVOKE SELECT ON products FROM rf_repl_unread")
	require.NoError(t, err)
	m = g.move(acme, cells.Default, "eu1", 0)
	m.SourceConnString = unread(cells.Default)
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err = m.Run(wait)
	require.ErrorContains(t, err, "initial copy")
	require.NoError(t, wait.Err(), "failed, not timed out")
	require.Empty(t, g.tenantRows(t, "eu1", acme.Tenant.ID), "undone")
	g.noMoveObjects(t, "eu1")

	source := g.replicationRole(t, "rowfence_replication", true)
	for _, hop := range [][2]string{{cells.Default, "eu1"}, {"eu1", cells.Default}} {
		m := g.move(acme, hop[0], hop[1], 0)
		m.SourceConnString = source(hop[0])
		rep, err := m.Run(ctx)
		require.NoError(t, err, "%s to %s", hop[0], hop[1])
		require.Equal(t, int64(500), rep.Rows["products"])
	}
	var super bool
	require.NoError(t, g.super[cells.Default].QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = 'rowfence_replication'").Scan(&super))
	require.False(t, super)

	p := pool(t, source(cells.Default), "")
	require.Error(t, db.CheckSafety(ctx, db.Unscoped(p)), "serve refuses to serve as it")
	rep, err := audit.Run(ctx, g.super[cells.Default], audit.Options{})
	require.NoError(t, err)
	flagged := false
	for _, f := range rep.Findings {
		if f.Check == "login-bypasses-rls" && f.Object == "rowfence_replication" {
			flagged = !f.Accepted
		}
	}
	require.True(t, flagged, "the audit lists it as a login that bypasses RLS")
}
