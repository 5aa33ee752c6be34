package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func TestSafetyCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)

	require.NoError(t, db.CheckSafety(ctx, db.New(bundle.app)), "the app role on the migrated schema is safe")

	var se *db.SafetyError
	err := db.CheckSafety(ctx, db.New(bundle.admin))
	require.ErrorAs(t, err, &se, "a superuser connection is refused")
	require.Contains(t, err.Error(), "superuser")

	_, err = bundle.admin.Exec(ctx, "alter table products no force row level security")
	require.NoError(t, err)
	err = db.CheckSafety(ctx, db.New(bundle.app))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "table products does not FORCE ROW LEVEL SECURITY")
	_, err = bundle.admin.Exec(ctx, "alter table products force row level security")
	require.NoError(t, err)

	_, err = bundle.admin.Exec(ctx, "grant truncate on users to rowfence_app")
	require.NoError(t, err)
	err = db.CheckSafety(ctx, db.New(bundle.app))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "TRUNCATE, REFERENCES or TRIGGER on table users")
	_, err = bundle.admin.Exec(ctx, "revoke truncate on users from rowfence_app")
	require.NoError(t, err)

	_, err = bundle.admin.Exec(ctx, "create table notes (tenant_id uuid, body text); grant select on notes to rowfence_app")
	require.NoError(t, err)
	err = db.CheckSafety(ctx, db.New(bundle.app))
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "table notes does not ENABLE ROW LEVEL SECURITY")
	_, err = bundle.admin.Exec(ctx, "drop table notes")
	require.NoError(t, err)
	require.NoError(t, db.CheckSafety(ctx, db.New(bundle.app)))
}

// Roles are cluster-wide, so these change a private copy: a role made for
// this test, granted the app's privileges, then widened.
func TestSafetyCheckRefusesRoleThatBypassesRLSOrOwns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	role := "rf_probe_" + bundle.tdb.Name
	for _, stmt := range []string{
		"create role " + role + " login bypassrls",
		"grant rowfence_app to " + role,
		"grant select on products, users to " + role,
	} {
		_, err := bundle.admin.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	t.Cleanup(func() {
		_, _ = bundle.admin.Exec(context.Background(), "drop owned by "+role+"; drop role "+role)
	})
	conn, err := bundle.admin.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "set role "+role)
	require.NoError(t, err)
	defer conn.Exec(ctx, "reset role")
	err = db.CheckSafety(ctx, db.New(conn))
	require.ErrorContains(t, err, "has BYPASSRLS")

	_, err = conn.Exec(ctx, "reset role; alter role "+role+" nobypassrls; grant rowfence_owner to "+role+"; set role "+role)
	require.NoError(t, err)
	err = db.CheckSafety(ctx, db.New(conn))
	require.ErrorContains(t, err, "owned by the serving role")
}
