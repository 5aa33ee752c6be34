package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/jobs/riverschema"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
)

// Any role may NOTIFY any channel of its database: no privilege governs
// NOTIFY or pg_notify. River's notifier obeyed "pause" and "cancel" on
// river.river_control from whoever sent them, so the app role could stall
// every tenant's exports (0.4 s became 54 s) and cancel another tenant's
// running export. The job runner listens to nothing (River's PollOnly), so
// nothing the app role notifies reaches it (docs/SECURITY.md, "Beyond the
// transaction").

type reachFixture struct {
	tdb          *pgtest.DB
	app, super   *pgxpool.Pool
	acme, globex lifecycle.Onboarded
}

func newReachFixture(t *testing.T) reachFixture {
	t.Helper()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner := tdb.OwnerPool(t)
	f := reachFixture{tdb: tdb, app: tdb.AppPool(t, 2), super: tdb.AdminPool(t)}
	var err error
	f.acme, err = lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	f.globex, err = lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "globex", Name: "Globex", AdminEmail: "a@globex.example"})
	require.NoError(t, err)
	return f
}

func (f reachFixture) requestExport(t *testing.T, o lifecycle.Onboarded) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	e, err := db.One(ctx, f.app, db.Scope{TenantID: o.Tenant.ID, Role: dbtype.RoleAdmin},
		func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
			return q.ExportCreate(ctx, exportRequest(o.Admin.ID))
		})
	require.NoError(t, err)
	return e.ID
}

func (f reachFixture) exportStatus(t *testing.T, o lifecycle.Onboarded, id uuid.UUID) dbtype.ExportStatus {
	t.Helper()
	ctx := context.Background()
	st, err := db.One(ctx, f.app, db.Scope{TenantID: o.Tenant.ID, Role: dbtype.RoleAdmin},
		func(q *dbsqlc.Queries) (dbsqlc.ExportDownloadInfoRow, error) { return q.ExportDownloadInfo(ctx, id) })
	require.NoError(t, err)
	return st.Status
}

// notify sends payload on channel as the app role, with the NOTIFY
// statement (which no REVOKE can take away) and with pg_notify.
func (f reachFixture) notify(ctx context.Context, channel, payload string) error {
	if _, err := f.app.Exec(ctx, fmt.Sprintf("NOTIFY %s, %s", pgx.Identifier{channel}.Sanitize(), quote(payload))); err != nil {
		return err
	}
	_, err := f.app.Exec(ctx, "select pg_notify($1, $2)", channel, payload)
	return err
}

func quote(s string) string { return "'" + s + "'" }

// blockExports holds an exclusive lock on users (as the superuser) until the
// returned function is called: an export job then waits, running, in the
// middle of its snapshot.
func (f reachFixture) blockExports(t *testing.T) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := f.super.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "lock table users in access exclusive mode")
	require.NoError(t, err)
	done := false
	release = func() {
		if !done {
			done = true
			require.NoError(t, tx.Rollback(ctx))
		}
	}
	t.Cleanup(release)
	return release
}

// runningExportJob waits for the export job to be running and returns its id.
func (f reachFixture) runningExportJob(t *testing.T) int64 {
	t.Helper()
	var id int64
	require.Eventually(t, func() bool {
		err := f.super.QueryRow(context.Background(),
			"select id from river.river_job where kind = 'tenant_export' and state = 'running'").Scan(&id)
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "the export job runs")
	return id
}

func TestAppRoleCannotPauseTheJobs(t *testing.T) {
	t.Parallel()
	f := newReachFixture(t)
	start(t, f.tdb, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// As observed: "pause all queues", again and again, as the app role.
	go func() {
		for ctx.Err() == nil {
			_ = f.notify(ctx, "river.river_control", `{"action":"pause","queue":"*"}`)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	id := f.requestExport(t, f.acme)
	began := time.Now()
	require.Eventually(t, func() bool { return f.exportStatus(t, f.acme, id) == dbtype.ExportStatusDone }, 5*time.Second, 20*time.Millisecond,
		"the app role's pause notifications must not stall the exports")
	t.Logf("export done in %s under a stream of pause notifications", time.Since(began).Round(time.Millisecond))
}

func TestAppRoleCannotCancelAnotherTenantsExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReachFixture(t)
	start(t, f.tdb, 0)
	release := f.blockExports(t)
	id := f.requestExport(t, f.acme)
	job := f.runningExportJob(t)
	require.Eventually(t, func() bool { return f.exportStatus(t, f.acme, id) == dbtype.ExportStatusRunning }, 10*time.Second, 20*time.Millisecond)
	// globex's request path, holding the app role, cancels acme's export.
	for range 5 {
		require.NoError(t, f.notify(ctx, "river.river_control", fmt.Sprintf(`{"action":"cancel","job_id":%d,"queue":"default"}`, job)))
		time.Sleep(100 * time.Millisecond)
	}
	release()
	require.Eventually(t, func() bool { return f.exportStatus(t, f.acme, id) == dbtype.ExportStatusDone }, 10*time.Second, 20*time.Millisecond,
		"acme's export finishes: the app role's cancel notification is not obeyed")
	require.Eventually(t, func() bool {
		var state string
		_ = f.super.QueryRow(ctx, "select state from river.river_job where id = $1", job).Scan(&state)
		return state == "completed"
	}, 10*time.Second, 20*time.Millisecond, "the job completes, not cancelled")
}

// A running export that River does cancel (an operator's JobCancel, through
// the river_job row only the platform role reaches) ends "failed", never
// "pending" with no job behind it.
func TestCancelledExportIsFailedNotPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReachFixture(t)
	start(t, f.tdb, 0)
	release := f.blockExports(t)
	id := f.requestExport(t, f.acme)
	job := f.runningExportJob(t)
	operator, err := river.NewClient(riverpgxv5.New(f.tdb.PlatformPool(t)), &river.Config{Schema: riverschema.Schema})
	require.NoError(t, err)
	_, err = operator.JobCancel(ctx, job)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var state string
		_ = f.super.QueryRow(ctx, "select state from river.river_job where id = $1", job).Scan(&state)
		return state == "cancelled"
	}, 20*time.Second, 20*time.Millisecond, "River cancels the running job")
	release()
	require.Eventually(t, func() bool { return f.exportStatus(t, f.acme, id) == dbtype.ExportStatusFailed }, 10*time.Second, 20*time.Millisecond,
		"a cancelled export is failed, not pending forever")
	e, err := db.One(ctx, f.app, db.Scope{TenantID: f.acme.Tenant.ID, Role: dbtype.RoleAdmin},
		func(q *dbsqlc.Queries) (dbsqlc.ExportGetRow, error) { return q.ExportGet(ctx, id) })
	require.NoError(t, err)
	require.Contains(t, e.Error, "cancelled")
	require.NotNil(t, e.FinishedAt)
}
