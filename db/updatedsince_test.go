package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// captured is a dbsqlc.DBTX that runs nothing: it keeps the statement a
// generated method would send, so a test can EXPLAIN exactly that text.
type captured struct{ sql string }

var errCaptured = errors.New("captured, not run")

func (c *captured) Exec(_ context.Context, sql string, _ ...any) (pgconn.CommandTag, error) {
	c.sql = sql
	return pgconn.CommandTag{}, errCaptured
}

func (c *captured) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	c.sql = sql
	return nil, errCaptured
}

func (c *captured) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	c.sql = sql
	return nil
}

// The ?updated_since= lists (ProductListUpdated, UserListUpdated) are keyset
// lists like the others: as the app role, in a tenant with many rows, their
// generic plan (the one db.One runs them with, genericPlan) walks the
// (tenant_id, updated_at, id) index: no Seq Scan, no Sort of the tenant's
// rows. The tenant comes from the RLS policy, never from the statement.
func TestUpdatedSinceListsWalkAnIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	for _, tenant := range []uuid.UUID{bundle.a.TenantID, bundle.b.TenantID} {
		_, err := bundle.admin.Exec(ctx, `
			insert into products (tenant_id, name, price, created_at, updated_at)
			select $1, 'p' || i, i, now() - i * interval '1 second', now() - (i % 977) * interval '1 minute'
			from generate_series(1, 20000) i`, tenant)
		require.NoError(t, err)
		_, err = bundle.admin.Exec(ctx, `
			insert into users (tenant_id, name, email, role, created_at, updated_at)
			select $1, 'u' || i, 'u' || i || '@example.com', 'viewer', now() - i * interval '1 second', now() - (i % 977) * interval '1 minute'
			from generate_series(1, 20000) i`, tenant)
		require.NoError(t, err)
	}
	_, err := bundle.admin.Exec(ctx, "analyze products; analyze users")
	require.NoError(t, err)

	var c captured
	q := dbsqlc.New(&c)
	for _, st := range []struct {
		name, index string
		run         func()
	}{
		// The creation-ordered lists, as the yardstick of this test.
		{"ProductList", "products_tenant_created_idx", func() { _, _ = q.ProductList(ctx, dbsqlc.ProductListParams{}) }},
		{"UserList", "users_tenant_created_idx", func() { _, _ = q.UserList(ctx, dbsqlc.UserListParams{}) }},
		{"ProductListUpdated", "products_tenant_updated_idx", func() { _, _ = q.ProductListUpdated(ctx, dbsqlc.ProductListUpdatedParams{}) }},
		{"UserListUpdated", "users_tenant_updated_idx", func() { _, _ = q.UserListUpdated(ctx, dbsqlc.UserListUpdatedParams{}) }},
	} {
		t.Run(st.name, func(t *testing.T) {
			st.run()
			_, conditions, _ := strings.Cut(strings.ToLower(c.sql), " from ")
			require.NotContains(t, conditions, "tenant_id", "RLS names the tenant")
			plan := explainGeneric(t, bundle, c.sql, "'2026-01-01T00:00:00Z'", "'00000000-0000-0000-0000-000000000000'", "21")
			require.NotContains(t, plan, "Seq Scan", plan)
			require.NotContains(t, plan, "Sort", plan)
			require.Contains(t, plan, st.index, plan)
			require.True(t, db.GenericPlan(st.name), "a keyset list with LIMIT runs its generic plan (db/scope.go)")
		})
	}
}

// explainGeneric is the generic plan of sql as the app role in tenant a,
// with its parameters as literals (EXPLAIN EXECUTE takes no bind parameters).
func explainGeneric(t *testing.T, bundle *testBundle, sql string, args ...string) string {
	t.Helper()
	ctx := context.Background()
	tx, err := bundle.app.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', $2, true), set_config('plan_cache_mode', 'force_generic_plan', true)",
		bundle.a.TenantID.String(), string(bundle.a.Role))
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "prepare plan_under_test as "+sql, pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	rows, err := tx.Query(ctx, fmt.Sprintf("explain execute plan_under_test(%s)", strings.Join(args, ", ")), pgx.QueryExecModeSimpleProtocol)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "deallocate plan_under_test", pgx.QueryExecModeSimpleProtocol) // prepared statements outlive the transaction
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}
