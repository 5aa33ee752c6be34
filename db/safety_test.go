package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/pgtest"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func TestSafetyCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)

	require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(bundle.app)), "the app role on the migrated schema is safe")

	var se *db.SafetyError
	err := db.CheckSafety(ctx, dbsqlc.New(bundle.admin))
	require.ErrorAs(t, err, &se, "a superuser connection is refused")
	require.Contains(t, err.Error(), "superuser")

	_, err = bundle.admin.Exec(ctx, "alter table products no force row level security")
	require.NoError(t, err)
	err = db.CheckSafety(ctx, dbsqlc.New(bundle.app))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "table products does not FORCE ROW LEVEL SECURITY")
	_, err = bundle.admin.Exec(ctx, "alter table products force row level security")
	require.NoError(t, err)

	_, err = bundle.admin.Exec(ctx, "grant truncate on users to rowfence_app")
	require.NoError(t, err)
	err = db.CheckSafety(ctx, dbsqlc.New(bundle.app))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "TRUNCATE, REFERENCES or TRIGGER on table users")
	_, err = bundle.admin.Exec(ctx, "revoke truncate on users from rowfence_app")
	require.NoError(t, err)

	_, err = bundle.admin.Exec(ctx, "create table notes (tenant_id uuid, body text); grant select on notes to rowfence_app")
	require.NoError(t, err)
	err = db.CheckSafety(ctx, dbsqlc.New(bundle.app))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "table notes does not ENABLE ROW LEVEL SECURITY")
	_, err = bundle.admin.Exec(ctx, "drop table notes")
	require.NoError(t, err)
	require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(bundle.app)))
}

// Any role the serving role can become counts as the serving role (issue 14,
// item 1; DESIGN.md, leak vector 11): SET ROLE works for any membership, at
// any depth, INHERIT or not. Roles are cluster-wide, so each kind widens a
// stand-in for rowfence_app (the same attributes and grants, its own name)
// in a database of its own, never rowfence_app itself.
func TestSafetyCheckCountsEveryRoleTheServingRoleCanBecome(t *testing.T) {
	t.Parallel()
	for _, w := range pgtest.RoleWidenings {
		t.Run(w.Name, func(t *testing.T) {
			ctx := context.Background()
			tdb := pgtest.New(t)
			role, url := tdb.StandIn(t, db.AppRole)
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(conn)), "the stand-in, as rowfence_app is, passes")

			admin, err := pgx.Connect(ctx, tdb.AdminURL)
			require.NoError(t, err)
			defer admin.Close(ctx)
			_, err = admin.Exec(ctx, w.Expand(w.SQL, role, tdb.Name))
			require.NoError(t, err)
			var se *db.SafetyError
			err = db.CheckSafety(ctx, dbsqlc.New(conn))
			require.ErrorAs(t, err, &se, "%s: the check must refuse", w.Name)
			require.ErrorContains(t, err, w.Expand(w.Safety, role, tdb.Name))
		})
	}
}

// The attack the check stops, as issue 14 found it: a NOINHERIT login role
// that is a member of the owner role (here through another NOINHERIT role)
// has none of the owner's privileges until it says SET ROLE, and then it
// can switch the policies off and read every tenant.
func TestMembershipIsEnoughToBecomeTheOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	createProduct(t, bundle.app, bundle.a, "anvil")
	createProduct(t, bundle.app, bundle.b, "hammock")
	role, url := bundle.tdb.StandIn(t, db.AppRole)
	_, err := bundle.admin.Exec(ctx, pgtest.RoleWidenings[1].Expand(pgtest.RoleWidenings[1].SQL, role, bundle.tdb.Name))
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	var n int
	require.NoError(t, tx.QueryRow(ctx, "select count(*) from products").Scan(&n))
	require.Zero(t, n, "without a tenant the stand-in sees nothing")
	_, err = tx.Exec(ctx, "set local role rowfence_owner; alter table products no force row level security; alter table products disable row level security")
	require.NoError(t, err, "membership alone lets it become the owner")
	require.NoError(t, tx.QueryRow(ctx, "select count(*) from products").Scan(&n))
	require.Equal(t, 2, n, "and then it reads every tenant")
}

// A connection that logs in as a superuser and only sets its role to the
// serving role (options=-c role=…) can RESET ROLE at any time: its session
// user counts as well.
func TestSafetyCheckCountsTheSessionUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	role, _ := tdb.StandIn(t, db.AppRole)
	cfg, err := pgx.ParseConfig(tdb.AdminURL)
	require.NoError(t, err)
	cfg.RuntimeParams["role"] = role
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var current string
	require.NoError(t, conn.QueryRow(ctx, "select current_user").Scan(&current))
	require.Equal(t, role, current)
	err = db.CheckSafety(ctx, dbsqlc.New(conn))
	require.ErrorContains(t, err, "superuser", "the session's own user is a superuser")
}

// A session-level app.tenant_id or app.role (a startup option: PGOPTIONS,
// which pgx reads from the environment, or options= in the connection
// string) would apply to every statement run outside One and Tx, on every
// connection of the pool (leak vector 2). The safety check refuses it.
func TestSafetyCheckRefusesSessionLevelTenantSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	for _, option := range []string{
		"-c app.tenant_id=" + bundle.a.TenantID.String(),
		"-c app.role=admin",
	} {
		cfg, err := pgxpool.ParseConfig(bundle.tdb.AppURL)
		require.NoError(t, err)
		cfg.ConnConfig.RuntimeParams["options"] = option
		pool, err := db.Open(ctx, cfg)
		require.NoError(t, err)
		err = db.CheckSafety(ctx, dbsqlc.New(pool))
		pool.Close()
		var se *db.SafetyError
		require.ErrorAs(t, err, &se, option)
		require.Contains(t, err.Error(), "session-level", option)
	}
}
