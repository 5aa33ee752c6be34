package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// These tests speak SQL as the app role, the way a handler bug (or an
// attacker with the app's connection) could, and show PostgreSQL refusing.

// inTenant runs fn in a transaction on one connection with the tenant set.
func inTenant(t *testing.T, pool *pgxpool.Pool, s db.Scope, fn func(tx pgx.Tx) error) error {
	t.Helper()
	ctx := context.Background()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', 'admin', true)", s.TenantID.String()); err != nil {
			return err
		}
		return fn(tx)
	})
}

func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if err != nil && errorsAs(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func TestSQLCrossTenantAsAppRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	pb := createProduct(t, bundle.app, bundle.b, "b's")

	t.Run("read", func(t *testing.T) {
		err := inTenant(t, bundle.app, bundle.a, func(tx pgx.Tx) error {
			var n int
			require.NoError(t, tx.QueryRow(ctx, "select count(*) from products where id = $1", pb.ID).Scan(&n))
			require.Zero(t, n)
			require.NoError(t, tx.QueryRow(ctx, "select count(*) from products where tenant_id = $1", bundle.b.TenantID).Scan(&n))
			require.Zero(t, n, "naming B's tenant_id in a predicate does not widen the policy")
			return nil
		})
		require.NoError(t, err)
	})
	t.Run("update and delete", func(t *testing.T) {
		err := inTenant(t, bundle.app, bundle.a, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, "update products set name = 'x' where id = $1", pb.ID)
			require.NoError(t, err)
			require.Zero(t, tag.RowsAffected())
			tag, err = tx.Exec(ctx, "delete from products where id = $1", pb.ID)
			require.NoError(t, err)
			require.Zero(t, tag.RowsAffected())
			return nil
		})
		require.NoError(t, err)
	})
	t.Run("insert naming the other tenant", func(t *testing.T) {
		err := inTenant(t, bundle.app, bundle.a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "insert into products (tenant_id, name, price) values ($1, 'x', 1)", bundle.b.TenantID)
			return err
		})
		require.Equal(t, "42501", sqlstate(err), "the app role may not even name tenant_id: %v", err)
	})
	t.Run("update moving a row to the other tenant", func(t *testing.T) {
		pa := createProduct(t, bundle.app, bundle.a, "a's")
		err := inTenant(t, bundle.app, bundle.a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "update products set tenant_id = $1 where id = $2", bundle.b.TenantID, pa.ID)
			return err
		})
		require.Equal(t, "42501", sqlstate(err), "%v", err)
	})
	t.Run("truncate", func(t *testing.T) {
		_, err := bundle.app.Exec(ctx, "truncate products")
		require.Equal(t, "42501", sqlstate(err), "TRUNCATE ignores RLS, so the app role has no TRUNCATE (leak vector 7)")
	})
	t.Run("tenants registry", func(t *testing.T) {
		_, err := bundle.app.Exec(ctx, "select * from tenants")
		require.Equal(t, "42501", sqlstate(err), "the app role cannot list tenants")
	})
	got, err := db.One(ctx, bundle.app, bundle.b, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(ctx, pb.ID) })
	require.NoError(t, err)
	require.Equal(t, "b's", got.Name)
	require.Equal(t, bundle.b.TenantID, got.TenantID)
}

// The policy itself, not only the column grants, refuses writes into another
// tenant: the owner has every privilege, but FORCE binds it to the policy.
func TestPolicyWithCheckBindsTheOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	pa := createProduct(t, bundle.app, bundle.a, "a's")
	asOwner := func(fn func(tx pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, bundle.admin, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "set local role rowfence_owner"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', 'admin', true)", bundle.a.TenantID.String()); err != nil {
				return err
			}
			return fn(tx)
		})
	}
	err := asOwner(func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "insert into products (tenant_id, name, price) values ($1, 'x', 1)", bundle.b.TenantID)
		return err
	})
	require.Equal(t, "42501", sqlstate(err))
	require.Contains(t, err.Error(), "row-level security")
	err = asOwner(func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "update products set tenant_id = $1 where id = $2", bundle.b.TenantID, pa.ID)
		return err
	})
	require.Equal(t, "42501", sqlstate(err))
	err = asOwner(func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "select count(*) from products").Scan(&n); err != nil {
			return err
		}
		require.Equal(t, 1, n, "the owner sees only the tenant it set (FORCE, leak vector 1)")
		return nil
	})
	require.NoError(t, err)
}

// With no tenant set there are no rows and writes fail, on a fresh connection
// (setting never defined: NULL) and on a reused one (setting defined, ”).
func TestNoTenantMeansNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	createProduct(t, bundle.app, bundle.a, "a's")
	check := func(t *testing.T, conn *pgx.Conn) {
		var n int
		require.NoError(t, conn.QueryRow(ctx, "select count(*) from products").Scan(&n))
		require.Zero(t, n)
		require.NoError(t, conn.QueryRow(ctx, "select count(*) from users").Scan(&n))
		require.Zero(t, n)
		_, err := conn.Exec(ctx, "insert into products (name, price) values ('x', 1)")
		require.Error(t, err)
		_, err = conn.Exec(ctx, "insert into users (name, email) values ('x', 'x@example.com')")
		require.Error(t, err)
		tag, err := conn.Exec(ctx, "delete from products")
		require.NoError(t, err)
		require.Zero(t, tag.RowsAffected())
	}
	t.Run("fresh connection", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, bundle.tdb.AppURL)
		require.NoError(t, err)
		defer conn.Close(ctx)
		require.Nil(t, tenantSetting(t, conn), "never set: NULL")
		check(t, conn)
	})
	t.Run("reused connection", func(t *testing.T) {
		listProducts(t, bundle.app, bundle.a)
		conn, err := bundle.app.Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		setting := tenantSetting(t, conn)
		require.NotNil(t, setting)
		require.Equal(t, "", *setting)
		check(t, conn.Conn())
	})
	require.Len(t, listProducts(t, bundle.app, bundle.a), 1)
}

// A session-level SET is exactly the leak docs/DESIGN.md warns of ("Known ways
// RLS leaks", vector 2). Show it happens with plain SET, so the test below it
// means something, and that the scoped path never leaves one behind on a pool
// of one connection.
func TestSessionLevelLeakIsImpossibleThroughScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 1)
	createProduct(t, bundle.app, bundle.a, "a's")

	// The hazard, demonstrated on a dedicated connection.
	conn, err := pgx.Connect(ctx, bundle.tdb.AppURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "select set_config('app.tenant_id', $1, false), set_config('app.role', 'viewer', false)", bundle.a.TenantID.String())
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "select count(*) from products").Scan(&n))
	require.Equal(t, 1, n, "a session-level setting persists on the connection")
	conn.Close(ctx)

	// The scoped path: many requests for A and B, then the same connection unscoped.
	for range 20 {
		listProducts(t, bundle.app, bundle.a)
		listProducts(t, bundle.app, bundle.b)
		createProduct(t, bundle.app, bundle.a, "more")
	}
	pooled, err := bundle.app.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, pooled.QueryRow(ctx, "select count(*) from products").Scan(&n))
	pooled.Release()
	require.Zero(t, n)
	require.Empty(t, listProducts(t, bundle.app, bundle.b), "B never saw A's rows")
}
