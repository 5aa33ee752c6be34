package cells_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

// moveAPI is twoCells served through /v1/admin with moves on: the handler's
// URL, a platform admin key, the catalog's platform pool (for the job
// runner) and the movers (superuser pools of both cells).
type moveAPI struct {
	src              *pgserver.Server
	srcSuper         *pgxpool.Pool
	tgt              *pgtest.DB
	tgtSuper         *pgxpool.Pool
	tenants          map[string]lifecycle.Onboarded
	url, offURL, key string
	platform         *pgxpool.Pool
	movers           *cells.Movers
}

func newMoveAPI(t *testing.T) *moveAPI {
	t.Helper()
	ctx := context.Background()
	a := &moveAPI{}
	a.src, a.srcSuper, a.tgt, a.tgtSuper, a.tenants = twoCells(t)
	srcApp := pool(t, a.src.URL, db.AppRole)
	a.platform = pool(t, a.src.URL, db.PlatformRole)
	var err error
	_, a.key, err = auth.IssuePlatformKey(ctx, dbsqlc.New(a.platform), "test")
	require.NoError(t, err)
	a.movers, err = cells.OpenMovers([]cells.URL{{Name: cells.Default, URL: a.src.URL}, {Name: "eu1", URL: a.tgt.AdminURL}}, 0)
	require.NoError(t, err)
	t.Cleanup(a.movers.Close)
	require.NoError(t, a.movers.CheckSuperusers(ctx))
	set, err := cells.NewSet(&cells.Cell{Name: cells.Default, App: srcApp}, &cells.Cell{Name: "eu1", App: a.tgt.AppPool(t, 2)})
	require.NoError(t, err)
	serve := func(moves func(string) bool) string {
		resolver := tenancy.NewResolver(srcApp, time.Second)
		authn, err := auth.New(auth.Config{Pool: srcApp, Tenants: resolver, PoolFor: set.PoolFor(resolver)})
		require.NoError(t, err)
		h, err := httpapi.NewServer(httpapi.Config{Pool: srcApp, Resolver: resolver, Auth: authn, Cells: set,
			PlatformPool: a.platform, Platform: auth.NewPlatform(a.platform, 0), MoveCells: moves,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	a.url, a.offURL = serve(a.movers.Reachable), serve(nil)
	return a
}

// runner starts the job runner of an instance configured for moves.
func (a *moveAPI) runner(t *testing.T) *jobs.Runner {
	t.Helper()
	r, err := jobs.Start(context.Background(), jobs.Config{Pool: a.platform, Movers: a.movers, PollEvery: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.StopAndCancel(context.Background()) })
	return r
}

func (a *moveAPI) call(t *testing.T, base, method, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out, res.Header
}

// await polls the move at path until it ended, and returns its record.
func (a *moveAPI) await(t *testing.T, path string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		status, rec, _ := a.call(t, a.url, "GET", path, "")
		require.Equal(t, 200, status, rec)
		switch rec["state"] {
		case "done", "failed", "cancelled":
			return rec
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the move at %s did not end", path)
	return nil
}

func (a *moveAPI) count(t *testing.T, p *pgxpool.Pool, sql string, args ...any) (n int) {
	t.Helper()
	require.NoError(t, p.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// oneCell asserts that the tenant is served from exactly one cell: the
// catalog places it in cell, its rows are there and not in the other, and
// no replication object or freeze is left in either.
func (a *moveAPI) oneCell(t *testing.T, tenant uuid.UUID, cell string, products int) {
	t.Helper()
	var placed string
	require.NoError(t, a.srcSuper.QueryRow(context.Background(), "SELECT cell FROM tenants WHERE id = $1", tenant).Scan(&placed))
	require.Equal(t, cell, placed)
	in, out := a.srcSuper, a.tgtSuper
	if cell == "eu1" {
		in, out = out, in
	}
	require.Equal(t, products, a.count(t, in, "SELECT count(*) FROM products WHERE tenant_id = $1", tenant))
	require.Zero(t, a.count(t, out, "SELECT count(*) FROM products WHERE tenant_id = $1", tenant))
	require.Zero(t, a.count(t, out, "SELECT count(*) FROM users WHERE tenant_id = $1", tenant))
	require.Zero(t, a.count(t, a.srcSuper, "SELECT (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_replication_slots)"))
	// A freeze in the tenant's cell only as a move's tombstone: never.
	require.Zero(t, a.count(t, in, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'rf\\_move\\_' || replace($1::text, '-', '') || '%'", tenant))
	require.Zero(t, a.count(t, a.tgtSuper, "SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"))
}

// Issue #18 item 3 through the admin API: POST /v1/admin/tenants/{id}/move
// answers 202 with the move's record and Location, the move runs in a River
// job of the instance configured for moves, GET shows it through to done
// (rows per table, copy_ms, writes_frozen_ms), a second move of the same
// tenant meanwhile is a 409, a cancel after the switch is a 409, a cancel
// before it undoes the move, and bad input of every kind is a 4xx naming
// it, never a 500.
func TestAdminMovesATenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newMoveAPI(t)
	acme, globex := a.tenants["acme"].Tenant.ID, a.tenants["globex"].Tenant.ID
	movePath := func(id uuid.UUID) string { return "/v1/admin/tenants/" + id.String() + "/move" }

	// Bad input: a 4xx problem naming what is wrong, and nothing recorded.
	for _, c := range []struct {
		base, path, body string
		status           int
		says             string
	}{
		{a.url, movePath(uuid.New()), `{"to":"eu1"}`, 404, "no such tenant"},
		{a.url, "/v1/admin/tenants/acme/move", `{"to":"eu1"}`, 400, "UUID"},
		{a.url, movePath(acme), `{"to":"nosuch"}`, 422, "registered"},
		{a.url, movePath(acme), `{"to":"default"}`, 422, "already"},
		{a.url, movePath(acme), `{"to":"Bad Name"}`, 422, "cell's name"},
		{a.url, movePath(acme), `{}`, 422, "to"},
		{a.url, movePath(acme), `{"to":"eu1","from":"x"}`, 400, "from"},
		{a.url, movePath(acme), `{"to":`, 400, ""},
		{a.offURL, movePath(acme), `{"to":"eu1"}`, 409, "TENANT_MOVES"},
	} {
		status, body, _ := a.call(t, c.base, "POST", c.path, c.body)
		require.Equal(t, c.status, status, "%s %s: %v", c.path, c.body, body)
		raw, _ := json.Marshal(body)
		require.Contains(t, string(raw), c.says, c.body)
	}
	_, err := a.srcSuper.Exec(ctx, "UPDATE tenants SET status = 'deleting', purge_after = now() + interval '1 day' WHERE id = $1", globex)
	require.NoError(t, err)
	status, body, _ := a.call(t, a.url, "POST", movePath(globex), `{"to":"eu1"}`)
	require.Equal(t, 409, status, body)
	require.Contains(t, body["detail"], "being deleted")
	_, err = a.srcSuper.Exec(ctx, "UPDATE tenants SET status = 'active', purge_after = NULL WHERE id = $1", globex)
	require.NoError(t, err)
	require.Zero(t, a.count(t, a.srcSuper, "SELECT count(*) FROM tenant_moves"), "no bad request recorded a move")

	// A move, queued before any runner works the queue: a second one is a
	// 409 while the first is open.
	status, rec, hdr := a.call(t, a.url, "POST", movePath(acme), `{"to":"eu1"}`)
	require.Equal(t, 202, status, rec)
	loc := hdr.Get("Location")
	require.Equal(t, "/v1/admin/moves/"+rec["id"].(string), loc)
	require.Equal(t, "pending", rec["state"])
	require.Equal(t, "default", rec["from"])
	require.Equal(t, "eu1", rec["to"])
	status, body, _ = a.call(t, a.url, "POST", movePath(acme), `{"to":"eu1"}`)
	require.Equal(t, 409, status, body)
	require.Contains(t, body["detail"], "in progress")

	a.runner(t)
	done := a.await(t, loc)
	require.Equal(t, "done", done["state"], done)
	require.Equal(t, float64(5000), done["rows"].(map[string]any)["products"])
	require.NotNil(t, done["copy_ms"])
	require.NotNil(t, done["writes_frozen_ms"])
	a.oneCell(t, acme, "eu1", 5000)
	status, body, _ = a.call(t, a.url, "DELETE", loc, "")
	require.Equal(t, 409, status, body)
	require.Contains(t, body["detail"], "switched")

	// Cancelled right away: undone, globex stays where it was.
	status, rec, hdr = a.call(t, a.url, "POST", movePath(globex), `{"to":"eu1"}`)
	require.Equal(t, 202, status, rec)
	status, body, _ = a.call(t, a.url, "DELETE", hdr.Get("Location"), "")
	require.Equal(t, 202, status, body)
	require.Equal(t, true, body["cancel_requested"])
	ended := a.await(t, hdr.Get("Location"))
	require.Equal(t, "cancelled", ended["state"], ended)
	a.oneCell(t, globex, cells.Default, 0)
	require.Equal(t, 1, a.count(t, a.srcSuper, "SELECT count(*) FROM users WHERE tenant_id = $1", globex))

	status, list, _ := a.call(t, a.url, "GET", "/v1/admin/moves?limit=1", "")
	require.Equal(t, 200, status, list)
	require.Len(t, list["items"], 1)
	require.Equal(t, rec["id"] != nil, true)
	require.NotNil(t, list["next_cursor"])
	status, list, _ = a.call(t, a.url, "GET", "/v1/admin/moves?limit=1&cursor="+list["next_cursor"].(string), "")
	require.Equal(t, 200, status, list)
	require.Len(t, list["items"], 1)
	status, _, _ = a.call(t, a.url, "GET", "/v1/admin/moves/"+uuid.NewString(), "")
	require.Equal(t, 404, status)
}

// A crash at any step leaves the tenant served from exactly one cell: the
// process running a move stops under it (its job's context cancelled
// mid-copy), another starts, and the job's next attempt undoes the move
// (or, had it switched, finishes it) and says so in the record.
func TestMoveJobSurvivesARestart(t *testing.T) {
	t.Parallel()
	a := newMoveAPI(t)
	acme := a.tenants["acme"].Tenant.ID
	first := a.runner(t)
	status, rec, hdr := a.call(t, a.url, "POST", "/v1/admin/tenants/"+acme.String()+"/move", `{"to":"eu1"}`)
	require.Equal(t, 202, status, rec)
	loc := hdr.Get("Location")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, rec, _ = a.call(t, a.url, "GET", loc, "")
		if rec["state"] != "pending" || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, "copying", rec["state"], "stopped mid-copy")
	require.NoError(t, first.StopAndCancel(context.Background()))
	a.runner(t) // the process starts again
	ended := a.await(t, loc)
	t.Logf("after the restart: %v", ended)
	require.Equal(t, "failed", ended["state"])
	require.Contains(t, ended["error"], "interrupted")
	a.oneCell(t, acme, cells.Default, 5000)
}
