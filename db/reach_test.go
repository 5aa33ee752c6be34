package db_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgtest"
)

// What the serving roles could do beyond their own transaction, reaching
// other tenants without reading a row (leak vector 12;
// docs/SECURITY.md, "Beyond the transaction"). Migration 00013 takes back
// what PostgreSQL grants PUBLIC; each statement here worked as either
// serving role before it.
func TestServingRolesCannotReachBeyondTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	for name, pool := range map[string]*pgxpool.Pool{db.AppRole: tdb.AppPool(t, 2), db.PlatformRole: tdb.PlatformPool(t)} {
		t.Run(name, func(t *testing.T) {
			// Another session of the same role: another tenant's request.
			other, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer other.Release()
			pid := other.Conn().PgConn().PID()
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			for _, stmt := range []string{
				fmt.Sprintf("select pg_terminate_backend(%d)", pid),
				fmt.Sprintf("select pg_cancel_backend(%d)", pid),
				"select pg_advisory_lock(5887940537704921958)", // goose's migration lock
				"select pg_try_advisory_lock(5887940537704921958)",
				"select pg_advisory_lock_shared(1)",
				"select pg_try_advisory_lock_shared(1)",
				"select pg_advisory_lock(1, 2)",
				"select pg_try_advisory_lock(1, 2)",
				"select pg_advisory_lock_shared(1, 2)",
				"select pg_try_advisory_lock_shared(1, 2)",
				"create temporary table products (id uuid)",
				"select lo_create(0)",
				"select lo_creat(-1)",
				"select lo_from_bytea(0, 'x')",
				"select query from pg_stat_activity",
				fmt.Sprintf("select * from pg_stat_get_activity(%d)", pid),
				fmt.Sprintf("select pg_stat_get_backend_activity(s) from pg_stat_get_backend_idset() s where pg_stat_get_backend_pid(s) = %d", pid),
			} {
				_, err := conn.Exec(ctx, stmt)
				require.ErrorContains(t, err, "permission denied", stmt)
			}
			require.NoError(t, other.Ping(ctx), "the other session lives")
			// Transaction-level advisory locks stay: they end with the
			// transaction, and the app's idempotency keys take them.
			_, err = conn.Exec(ctx, "begin; select pg_advisory_xact_lock(1); commit")
			require.NoError(t, err)

			reach, err := db.CheckReach(ctx, dbsqlc.New(conn))
			require.NoError(t, err)
			require.Empty(t, reach.Problems)
			var exposed []string
			for _, e := range reach.Exposures {
				exposed = append(exposed, e.Capability)
			}
			// The test cluster has other databases (postgres, template1), which
			// only their owners can close.
			require.Equal(t, []string{"other-databases"}, exposed)
		})
	}
}

// ALTER ROLE <itself> SET needs no privilege: it cannot be closed, so serve
// and /readyz refuse to serve while the serving role has session defaults.
// Observed: the app role could give every later session of itself
// default_transaction_read_only (or a statement_timeout of 1ms), persisting
// across restarts.
func TestSessionDefaultsRefuseToServe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	for name, pool := range map[string]*pgxpool.Pool{db.AppRole: tdb.AppPool(t, 4), db.PlatformRole: tdb.PlatformPool(t)} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(pool)))
			// In this database only: roles are cluster-wide, and other tests
			// share the cluster.
			_, err := pool.Exec(ctx, fmt.Sprintf("alter role %s in database %s set default_transaction_read_only = on",
				name, pgx.Identifier{tdb.Name}.Sanitize()))
			require.NoError(t, err, "no privilege governs ALTER ROLE <itself> SET")
			t.Cleanup(func() {
				_, _ = admin.Exec(context.Background(), fmt.Sprintf("alter role %s in database %s reset all", name, pgx.Identifier{tdb.Name}.Sanitize()))
			})
			// It persists: a new session of the role starts read-only.
			conn, err := pgx.Connect(ctx, roleURL(t, tdb, name))
			require.NoError(t, err)
			var readOnly string
			require.NoError(t, conn.QueryRow(ctx, "show default_transaction_read_only").Scan(&readOnly))
			require.Equal(t, "on", readOnly)
			require.NoError(t, conn.Close(ctx))

			var se *db.SafetyError
			err = db.CheckSafety(ctx, dbsqlc.New(pool))
			require.ErrorAs(t, err, &se)
			require.Contains(t, err.Error(), "role "+name+" has session defaults for database "+tdb.Name+" (default_transaction_read_only=on)")
			require.Contains(t, err.Error(), fmt.Sprintf("ALTER ROLE %s IN DATABASE %s RESET ALL", name, tdb.Name))

			_, err = admin.Exec(ctx, fmt.Sprintf("alter role %s in database %s reset all", name, pgx.Identifier{tdb.Name}.Sanitize()))
			require.NoError(t, err)
			require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(pool)))

			// For every database: seen inside the role's own transaction, and
			// rolled back so that no other test sees it.
			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, "alter role "+name+" set statement_timeout = '1ms'")
			require.NoError(t, err)
			err = db.CheckSafety(ctx, dbsqlc.New(tx))
			require.ErrorContains(t, err, "role "+name+" has session defaults for every database (statement_timeout=1ms)")
			require.ErrorContains(t, err, "ALTER ROLE "+name+" RESET ALL")
		})
	}
}

// A serving role that may create objects (a schema named after itself
// comes first in the default search_path) is refused.
func TestCreatePrivilegeRefusesToServe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, app := tdb.AdminPool(t), tdb.AppPool(t, 2)
	for _, grant := range []string{
		"grant create on schema public to rowfence_app",
		"grant create on database " + pgx.Identifier{tdb.Name}.Sanitize() + " to rowfence_app",
	} {
		_, err := admin.Exec(ctx, grant)
		require.NoError(t, err)
		err = db.CheckSafety(ctx, dbsqlc.New(app))
		require.ErrorContains(t, err, "may create schemas or objects that outlive its transaction", grant)
		_, err = admin.Exec(ctx, strings.Replace(strings.Replace(grant, "grant", "revoke", 1), " to ", " from ", 1))
		require.NoError(t, err)
		require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(app)))
	}
}

// What remains, as docs/SECURITY.md ("Beyond the transaction") lists it:
// each statement here still works as the app role, so that the document
// stays true; the defences are elsewhere (named with each).
func TestWhatRemainsBeyondTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	app := tdb.AppPool(t, 2)
	remaining := []string{
		// No privilege governs NOTIFY: River listens to nothing (jobs).
		`NOTIFY "river.river_control", '{"action":"pause","queue":"*"}'`,
		`select pg_notify('river.river_control', '{"action":"pause","queue":"*"}')`,
		`LISTEN "river.river_insert"`,
		// A role may change its own password: locks out the other instances'
		// new connections; rolled back here (roles are cluster-wide).
		`begin; alter role rowfence_app password 'changed'; rollback`,
		// A table lock in any mode on a table it may UPDATE or DELETE, held
		// until its transaction ends (the request timeout ends it).
		`begin; lock table products in access exclusive mode; rollback`,
	}
	for _, stmt := range remaining {
		_, err := app.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	_, _ = app.Exec(ctx, "UNLISTEN *")
	// PostgreSQL itself refuses these to a role on itself.
	for _, stmt := range []string{
		"alter role rowfence_app set app.tenant_id = '00000000-0000-4000-8000-000000000001'",
		"alter role rowfence_app set session_replication_role = replica",
		"alter role rowfence_app connection limit 0",
		"alter role rowfence_app valid until '2000-01-01'",
		"alter role rowfence_app nologin",
		"alter role all set statement_timeout = '1ms'",
		"alter database " + pgx.Identifier{tdb.Name}.Sanitize() + " set statement_timeout = '1ms'",
	} {
		_, err := app.Exec(ctx, stmt)
		require.Error(t, err, stmt)
	}
}

// The migrations stay runnable by a migrating role that is no superuser:
// what only a superuser may revoke is then left for serve to warn about and
// the audit to report. And a migrating role that is no superuser still
// takes goose's lock in a database whose revokes a superuser made (it has
// the lock functions through rowfence_owner).
func TestMigrationsByANonSuperuser(t *testing.T) {
	if pgtest.Source() != "local" {
		t.Skip("needs a server that trusts a new role's socket connections")
	}
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	role := "rf_migrator_" + tdb.Name
	fresh := tdb.Name + "_fresh"
	for _, stmt := range []string{
		"create role " + role + " login createrole nosuperuser",
		"create database " + fresh + " owner " + role,
	} {
		_, err := admin.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		c := context.Background()
		_, _ = admin.Exec(c, "drop database if exists "+fresh+" with (force)")
		_, _ = admin.Exec(c, "drop owned by "+role)
		_, _ = admin.Exec(c, "drop role if exists "+role)
	})
	migrate := func(dbName string) {
		u, err := url.Parse(pgtest.URL(tdb.AdminURL, dbName))
		require.NoError(t, err)
		u.User = url.User(role)
		m, err := migrate.New(u.String(), nil)
		require.NoError(t, err)
		defer m.Close()
		_, err = m.Up(ctx)
		require.NoError(t, err, "migrating %s as %s", dbName, role)
	}
	// A fresh database, owned by the migrating role.
	migrate(fresh)
	app, err := pgx.Connect(ctx, pgtest.URL(tdb.AppURL, fresh))
	require.NoError(t, err)
	defer app.Close(ctx)
	require.NoError(t, db.CheckSafety(ctx, dbsqlc.New(app)), "exposures warn; they do not refuse")
	reach, err := db.CheckReach(ctx, dbsqlc.New(app))
	require.NoError(t, err)
	var exposed []string
	for _, e := range reach.Exposures {
		exposed = append(exposed, e.Capability)
		require.NotEmpty(t, e.Remedy)
	}
	require.Equal(t, []string{"large-objects", "logical-messages", "other-databases", "session-activity", "session-advisory-locks", "signal-backends"}, exposed,
		"the database's owner took TEMPORARY back; the rest needs a superuser")
	_, err = app.Exec(ctx, "create temporary table products (id uuid)")
	require.ErrorContains(t, err, "permission denied")

	// The test's own database, where the superuser made the revokes: the
	// role (a member of rowfence_owner since migration 00001 above) still
	// takes goose's session lock, through rowfence_owner.
	u, err := url.Parse(tdb.AdminURL)
	require.NoError(t, err)
	u.User = url.User(role)
	migrator, err := pgx.Connect(ctx, u.String())
	require.NoError(t, err)
	defer migrator.Close(ctx)
	var locked, unlocked bool
	require.NoError(t, migrator.QueryRow(ctx, "select pg_try_advisory_lock(5887940537704921958)").Scan(&locked))
	require.True(t, locked)
	require.NoError(t, migrator.QueryRow(ctx, "select pg_advisory_unlock(5887940537704921958)").Scan(&unlocked))
	require.True(t, unlocked)
}

// roleURL connects to tdb as one of the serving roles.
func roleURL(t *testing.T, tdb *pgtest.DB, role string) string {
	t.Helper()
	if role == db.PlatformRole {
		return tdb.PlatformURL
	}
	return tdb.AppURL
}

// A role the serving role can become counts for what reaches past the
// transaction too, as it does for bypassing RLS (leak vector 11 applied to
// vector 12). Observed: after `GRANT pg_monitor TO rowfence_app` (what a
// DBA does for a monitoring agent), the NOINHERIT app role could SET ROLE
// pg_monitor and read every session's statements, other tenants' requests
// among them, while serve logged no warning, /readyz said ready and audit
// 14 was silent: every capability but create-objects was asked of the role
// itself. Each case widens a stand-in (roles are cluster-wide).
func TestReachCountsEveryRoleTheServingRoleCanBecome(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, sql, capability, attack string }{
		{"pg_monitor (pg_read_all_stats)", `GRANT pg_monitor TO {{role}}`,
			"session-activity", "set local role pg_monitor; select query from pg_stat_activity"},
		{"pg_cancel_backend through a role",
			`CREATE ROLE {{role}}_sig NOLOGIN; GRANT EXECUTE ON FUNCTION pg_cancel_backend(integer) TO {{role}}_sig; GRANT {{role}}_sig TO {{role}}`,
			"signal-backends", "set local role {{role}}_sig; select pg_cancel_backend(0)"},
		{"session advisory locks through a role",
			`CREATE ROLE {{role}}_lk NOLOGIN; GRANT EXECUTE ON FUNCTION pg_try_advisory_lock(bigint) TO {{role}}_lk; GRANT {{role}}_lk TO {{role}}`,
			"session-advisory-locks", "set local role {{role}}_lk; select pg_try_advisory_lock(1)"},
		{"TEMPORARY through a role",
			`CREATE ROLE {{role}}_tmp NOLOGIN; GRANT TEMPORARY ON DATABASE {{db}} TO {{role}}_tmp; GRANT {{role}}_tmp TO {{role}}`,
			"temporary-tables", "set local role {{role}}_tmp; create temporary table products (id uuid)"},
		{"large objects through a role",
			`CREATE ROLE {{role}}_lo NOLOGIN; GRANT EXECUTE ON FUNCTION lo_from_bytea(oid, bytea) TO {{role}}_lo; GRANT {{role}}_lo TO {{role}}`,
			"large-objects", "set local role {{role}}_lo; select lo_from_bytea(0, 'x')"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			tdb := pgtest.New(t)
			role, url := tdb.StandIn(t, db.AppRole)
			expand := strings.NewReplacer("{{role}}", role, "{{db}}", pgx.Identifier{tdb.Name}.Sanitize()).Replace
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			capabilities := func() []string {
				reach, err := db.CheckReach(ctx, dbsqlc.New(conn))
				require.NoError(t, err)
				var out []string
				for _, e := range reach.Exposures {
					out = append(out, e.Capability)
				}
				return out
			}
			require.NotContains(t, capabilities(), c.capability, "the stand-in, as rowfence_app is")

			admin, err := pgx.Connect(ctx, tdb.AdminURL)
			require.NoError(t, err)
			defer admin.Close(ctx)
			_, err = admin.Exec(ctx, expand(c.sql))
			require.NoError(t, err)
			// The capability is real: the stand-in uses it through SET ROLE.
			_, err = conn.Exec(ctx, "begin; "+expand(c.attack)+"; rollback")
			require.NoError(t, err, "the stand-in reaches past its transaction through the role")
			require.Contains(t, capabilities(), c.capability, "%s: serve must warn", c.name)
		})
	}
}

// pg_logical_emit_message writes WAL outside every table and its policies,
// and with transactional = false it outlives a rollback; every logical
// decoding consumer of the cluster (logical replication, CDC) receives what
// the app role wrote, and nothing bounds the size. PostgreSQL grants it to
// PUBLIC, and migration 00013 left it there (found by the issue 14 review:
// it was missing from the inventory in docs/SECURITY.md, "Beyond the
// transaction"). Closing it needs a migration (a superuser's REVOKE), like
// large objects.
func TestServingRolesCannotEmitLogicalMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	for name, pool := range map[string]*pgxpool.Pool{db.AppRole: tdb.AppPool(t, 1), db.PlatformRole: tdb.PlatformPool(t)} {
		for _, stmt := range []string{
			"begin; select pg_logical_emit_message(false, 'rowfence', 'outlives the rollback'); rollback",
			"begin; select pg_logical_emit_message(true, 'rowfence', '\\x00'::bytea); rollback",
		} {
			_, err := pool.Exec(ctx, stmt)
			require.ErrorContains(t, err, "permission denied", "%s: %s", name, stmt)
		}
	}
}
