package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// asAdmin begins a transaction of the app role under tenant's admin
// settings, as a request (or anyone holding the app role's connection) would.
func asAdmin(t *testing.T, pool *pgxpool.Pool, tenant uuid.UUID, iso pgx.TxIsoLevel) pgx.Tx {
	t.Helper()
	tx, err := pool.BeginTx(context.Background(), pgx.TxOptions{IsoLevel: iso})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(context.Background(), "select set_config('app.tenant_id', $1, true), set_config('app.role', 'admin', true)", tenant.String())
	require.NoError(t, err)
	return tx
}

func requireLastAdmin(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want the last-admin error, got %v", err)
	require.Equal(t, "users_last_admin", pgErr.ConstraintName, pgErr.Message)
	require.ErrorIs(t, db.MapError(err), db.ErrLastAdmin)
}

// Issue #14 item 10: the database keeps every tenant that has an admin with
// at least one, whoever writes the SQL (the rule is a trigger on users, not
// a check in a handler), and a tenant's own deletion still cascades.
func TestTenantKeepsAnAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 4)
	tenant := bundle.a.TenantID
	mk := func(name string, role dbtype.Role) uuid.UUID {
		u, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
			return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: name, Email: name + "@example.com", Role: role})
		})
		require.NoError(t, err)
		return u.ID
	}
	a, member := mk("a", "admin"), mk("m", "member")
	for _, stmt := range []string{
		"update users set role = 'member'",
		"update users set role = 'viewer' where id = $1",
		"delete from users",
		"delete from users where id = $1",
	} {
		tx := asAdmin(t, bundle.app, tenant, pgx.ReadCommitted)
		var args []any
		if strings.HasSuffix(stmt, "$1") {
			args = []any{a}
		}
		_, err := tx.Exec(ctx, stmt, args...)
		requireLastAdmin(t, err)
		require.NoError(t, tx.Rollback(ctx))
	}
	// Members and viewers come and go freely.
	tx := asAdmin(t, bundle.app, tenant, pgx.ReadCommitted)
	_, err := tx.Exec(ctx, "update users set role = 'viewer' where role <> 'admin'")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "delete from users where id = $1", member)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	// Deleting the tenant deletes its last admin with it.
	_, err = bundle.admin.Exec(ctx, "delete from tenants where id = $1", tenant)
	require.NoError(t, err)
	var left int
	require.NoError(t, bundle.admin.QueryRow(ctx, "select count(*) from users where tenant_id = $1", tenant).Scan(&left))
	require.Zero(t, left)
}

// Two admins demoting each other in concurrent transactions: each one's
// check, on its own snapshot, would see the other still an admin. The
// trigger serialises the checks of one tenant, so the second waits for the
// first and then sees its commit.
func TestTenantKeepsAnAdminUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 4)
	var admins [2]uuid.UUID
	for i, name := range []string{"a", "b"} {
		u, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
			return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: name, Email: name + "@example.com", Role: "admin"})
		})
		require.NoError(t, err)
		admins[i] = u.ID
	}
	for _, iso := range []pgx.TxIsoLevel{pgx.ReadCommitted, pgx.RepeatableRead, pgx.Serializable} {
		t.Run(string(iso), func(t *testing.T) {
			_, err := bundle.admin.Exec(ctx, "update users set role = 'admin' where tenant_id = $1", bundle.a.TenantID)
			require.NoError(t, err)
			first := asAdmin(t, bundle.app, bundle.a.TenantID, iso)
			second := asAdmin(t, bundle.app, bundle.a.TenantID, iso)
			// Both take their snapshots while both are admins.
			for _, tx := range []pgx.Tx{first, second} {
				var n int
				require.NoError(t, tx.QueryRow(ctx, "select count(*) from users where role = 'admin'").Scan(&n))
				require.Equal(t, 2, n)
			}
			_, err = first.Exec(ctx, "update users set role = 'member' where id = $1", admins[1])
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() {
				_, err := second.Exec(ctx, "update users set role = 'member' where id = $1", admins[0])
				if err == nil {
					err = second.Commit(ctx)
				}
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("the second demotion did not wait for the first: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			require.NoError(t, first.Commit(ctx))
			err = <-done
			require.Error(t, err, "both admins demoted")
			if iso == pgx.ReadCommitted {
				requireLastAdmin(t, err)
			} else {
				var pgErr *pgconn.PgError
				require.True(t, errors.As(err, &pgErr), "%v", err)
				require.Contains(t, []string{"40001", "23514"}, pgErr.Code, pgErr.Message)
			}
			var n int
			require.NoError(t, bundle.admin.QueryRow(ctx, "select count(*) from users where tenant_id = $1 and role = 'admin'",
				bundle.a.TenantID).Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}
