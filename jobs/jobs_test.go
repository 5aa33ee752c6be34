package jobs_test

import (
	"bytes"
	"context"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// exportRequest is what POST /v1/exports asks for, with room to spare.
func exportRequest(by uuid.UUID) dbsqlc.ExportCreateParams {
	return dbsqlc.ExportCreateParams{RequestedBy: by, RetentionSeconds: 3600, MaxCount: 100, MaxBytes: 1 << 40}
}

// platformPool is serve's platform pool: six connections, since an export
// job holds two (cmd/rowfence/serve.go).
func platformPool(t *testing.T, tdb *pgtest.DB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(tdb.PlatformURL)
	require.NoError(t, err)
	cfg.MaxConns = 6
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func start(t *testing.T, tdb *pgtest.DB, purgeEvery time.Duration) {
	t.Helper()
	r, err := jobs.Start(context.Background(), jobs.Config{Pool: platformPool(t, tdb), PurgeEvery: purgeEvery, PollEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
}

// An export requested by a tenant's admin (as the app role) is written by
// the job under that tenant's setting: its rows and nobody else's.
func TestExportJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, app := tdb.OwnerPool(t), tdb.AppPool(t, 2)
	acme, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	_, err = lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "globex", Name: "Globex", AdminEmail: "a@globex.example"})
	require.NoError(t, err)
	start(t, tdb, 0)

	sc := db.Scope{TenantID: acme.Tenant.ID, Role: dbtype.RoleAdmin}
	e, err := db.One(ctx, app, sc, func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
		return q.ExportCreate(ctx, exportRequest(acme.Admin.ID))
	})
	require.NoError(t, err)
	require.Equal(t, dbtype.ExportStatusPending, e.Status)
	var got dbsqlc.ExportDownloadInfoRow
	require.Eventually(t, func() bool {
		got, err = db.One(ctx, app, sc, func(q *dbsqlc.Queries) (dbsqlc.ExportDownloadInfoRow, error) { return q.ExportDownloadInfo(ctx, e.ID) })
		return err == nil && got.Status == dbtype.ExportStatusDone
	}, 20*time.Second, 50*time.Millisecond)
	content, err := io.ReadAll(lifecycle.NewChunkReader(ctx, db.Scoped(app, sc), e.ID, got.Chunks))
	require.NoError(t, err)
	require.Equal(t, got.Bytes, int64(len(content)))
	require.Contains(t, string(content), `"email":"a@acme.example"`)
	require.NotContains(t, string(content), "globex", "the job ran under acme's setting")
	// It is a valid export: it imports.
	imp, err := lifecycle.Import(ctx, owner, "acme-restored", "", bytes.NewReader(content))
	require.NoError(t, err)
	require.Equal(t, 1, imp.Counts["users"])
}

// Jobs fail closed: without a tenant, or naming an export of another tenant,
// a job is cancelled and writes nothing.
func TestJobsWithoutTheirTenantFailClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, app, super := tdb.OwnerPool(t), tdb.AppPool(t, 2), tdb.AdminPool(t)
	acme, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	globex, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "globex", Name: "Globex", AdminEmail: "a@globex.example"})
	require.NoError(t, err)
	// globex's export, requested while no worker runs: its own job waits.
	gsc := db.Scope{TenantID: globex.Tenant.ID, Role: dbtype.RoleAdmin}
	ge, err := db.One(ctx, app, gsc, func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
		return q.ExportCreate(ctx, exportRequest(globex.Admin.ID))
	})
	require.NoError(t, err)
	_, err = super.Exec(ctx, "delete from river.river_job where kind = 'tenant_export'")
	require.NoError(t, err)
	// Forged jobs: no tenant; and acme's tenant with globex's export.
	for _, args := range []string{
		`{"export_id":"` + ge.ID.String() + `"}`,
		`{"tenant_id":"` + acme.Tenant.ID.String() + `","export_id":"` + ge.ID.String() + `"}`,
		`{}`,
	} {
		_, err = super.Exec(ctx, "insert into river.river_job (kind, args, queue, max_attempts) values ('tenant_export', $1, 'default', 1)", args)
		require.NoError(t, err)
	}
	_, err = super.Exec(ctx, "insert into river.river_job (kind, args, queue, max_attempts) values ('tenant_purge', '{}', 'default', 1)")
	require.NoError(t, err)
	start(t, tdb, 0)
	require.Eventually(t, func() bool {
		var n int
		_ = super.QueryRow(ctx, "select count(*) from river.river_job where state = 'cancelled'").Scan(&n)
		return n == 4
	}, 20*time.Second, 50*time.Millisecond, "every forged job is cancelled")
	var errs string
	require.NoError(t, super.QueryRow(ctx, "select string_agg(errors::text, ' ') from river.river_job").Scan(&errs))
	require.Contains(t, errs, "without a tenant")
	require.Contains(t, errs, "has no pending export")
	st, err := db.One(ctx, app, gsc, func(q *dbsqlc.Queries) (dbsqlc.ExportDownloadInfoRow, error) { return q.ExportDownloadInfo(ctx, ge.ID) })
	require.NoError(t, err)
	require.Equal(t, dbtype.ExportStatusPending, st.Status, "globex's export was not touched")
	require.Zero(t, st.Chunks)
}

// The app role cannot reach River's tables at all.
func TestRiverIsOutOfTheAppRolesReach(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	app := tdb.AppPool(t, 1)
	for _, stmt := range []string{"select count(*) from river.river_job", "insert into river.river_job (kind, args) values ('x', '{}')",
		"select count(*) from river.river_leader"} {
		_, err := app.Exec(ctx, stmt)
		require.ErrorContains(t, err, "permission denied", stmt)
	}
}

// The purge: a periodic job finds tenants whose grace period is over and
// enqueues one purge job each, which deletes that tenant under its setting.
func TestPurgeJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	doomed, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "doomed", Name: "D", AdminEmail: "a@doomed.example"})
	require.NoError(t, err)
	spared, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "spared", Name: "S", AdminEmail: "a@spared.example"})
	require.NoError(t, err)
	_, err = lifecycle.SetStatus(ctx, owner, doomed.Tenant.ID, dbtype.TenantStatusDeleting, -time.Second)
	require.NoError(t, err)
	_, err = lifecycle.SetStatus(ctx, owner, spared.Tenant.ID, dbtype.TenantStatusDeleting, time.Hour)
	require.NoError(t, err)
	start(t, tdb, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		var n int
		_ = super.QueryRow(ctx, "select count(*) from tenants where slug = 'doomed'").Scan(&n)
		return n == 0
	}, 20*time.Second, 50*time.Millisecond)
	var users int
	require.NoError(t, super.QueryRow(ctx, "select count(*) from users where tenant_id = $1", doomed.Tenant.ID).Scan(&users))
	require.Zero(t, users)
	var status string
	require.NoError(t, super.QueryRow(ctx, "select status from tenants where slug = 'spared'").Scan(&status))
	require.Equal(t, "deleting", status, "still in its grace period")
}

// Expired idempotency keys are deleted, tenant by tenant, under each
// tenant's own setting; live ones stay.
func TestIdempotencyCleanupJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	for _, slug := range []string{"acme", "globex"} {
		o, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "a@" + slug + ".example"})
		require.NoError(t, err)
		for key, expires := range map[string]string{"old": "now() - interval '1 minute'", "live": "now() + interval '1 hour'"} {
			_, err := super.Exec(ctx, `insert into idempotency_keys (tenant_id, key, request_hash, status, response_body, expires_at)
				values ($1, $2, sha256('x'), 201, '{}', `+expires+`)`, o.Tenant.ID, key)
			require.NoError(t, err)
		}
	}
	start(t, tdb, 0)
	require.Eventually(t, func() bool {
		var n int
		_ = super.QueryRow(ctx, "select count(*) from idempotency_keys where key = 'old'").Scan(&n)
		return n == 0
	}, 20*time.Second, 50*time.Millisecond)
	var live int
	require.NoError(t, super.QueryRow(ctx, "select count(*) from idempotency_keys where key = 'live'").Scan(&live))
	require.Equal(t, 2, live)
}

// An export job holds two connections at once (lifecycle.WriteExport), so
// River's workers need two each: with two connections for two workers, two
// tenants' exports at once each took one and waited for the other for ever
// (the job timeout, 30 minutes). Seen in a cell's platform pool, opened
// with two connections (cmd/rowfence/cells.go). Start refuses such a pool;
// with four, two exports at once finish.
func TestTwoExportsAtOnceNeedFourConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, app, super := tdb.OwnerPool(t), tdb.AppPool(t, 2), tdb.AdminPool(t)
	poolOf := func(conns int32) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(tdb.PlatformURL)
		require.NoError(t, err)
		cfg.MaxConns = conns
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		return p
	}
	_, err := jobs.Start(ctx, jobs.Config{Pool: poolOf(2)})
	require.ErrorContains(t, err, "4 connections")

	var scopes []db.Scope
	var exports []uuid.UUID
	for _, slug := range []string{"acme", "globex"} {
		o, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "a@" + slug + ".example"})
		require.NoError(t, err)
		// Enough rows that the two exports overlap.
		_, err = super.Exec(ctx, "INSERT INTO products (tenant_id, name, price) SELECT $1, 'p' || g, g FROM generate_series(1, 30000) g", o.Tenant.ID)
		require.NoError(t, err)
		sc := db.Scope{TenantID: o.Tenant.ID, Role: dbtype.RoleAdmin}
		e, err := db.One(ctx, app, sc, func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
			return q.ExportCreate(ctx, exportRequest(o.Admin.ID))
		})
		require.NoError(t, err)
		scopes, exports = append(scopes, sc), append(exports, e.ID)
	}
	r, err := jobs.Start(ctx, jobs.Config{Pool: poolOf(4), PollEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(sctx)
	})
	require.Eventually(t, func() bool {
		for i, sc := range scopes {
			got, err := db.One(ctx, app, sc, func(q *dbsqlc.Queries) (dbsqlc.ExportDownloadInfoRow, error) {
				return q.ExportDownloadInfo(ctx, exports[i])
			})
			if err != nil || got.Status != dbtype.ExportStatusDone {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond)
}
