package cells_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
)

// Issue #18 item 3: the verification inside the freeze compares a
// checksum of each table's rows, not only their count. A target whose copy
// has the right number of rows but one row changed (here by a trigger that
// the subscription's apply fires, ENABLE REPLICA) refuses the move with
// ErrVerify, and the move is undone: the tenant stays in its cell, whole,
// and may write again.
func TestMoveRefusesACopyWithOneRowChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrid(t)
	acme := g.onboard(t, "acme", cells.Default, 500)
	for _, stmt := range []string{
		`CREATE FUNCTION corrupt() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.name = 'p7' THEN NEW.name := 'p7 changed'; END IF; RETURN NEW; END $$`,
		"CREATE TRIGGER corrupt BEFORE INSERT ON products FOR EACH ROW EXECUTE FUNCTION corrupt()",
		"ALTER TABLE products ENABLE REPLICA TRIGGER corrupt",
	} {
		_, err := g.super["eu1"].Exec(ctx, stmt)
		require.NoError(t, err)
	}
	_, err := g.move(acme, cells.Default, "eu1", 0).Run(ctx)
	require.ErrorIs(t, err, cells.ErrVerify)
	require.ErrorContains(t, err, "products: 500 rows against 500", "the counts agree; the checksum does not")
	var placed string
	require.NoError(t, g.super[cells.Default].QueryRow(ctx, "SELECT cell FROM tenants WHERE id = $1", acme.Tenant.ID).Scan(&placed))
	require.Equal(t, cells.Default, placed)
	require.Empty(t, g.tenantRows(t, "eu1", acme.Tenant.ID), "undone")
	require.Equal(t, 500, g.count(t, cells.Default, "SELECT count(*) FROM products WHERE tenant_id = $1", acme.Tenant.ID))
	g.noMoveObjects(t, cells.Default)
	g.noMoveObjects(t, "eu1")
	_, err = g.super[cells.Default].Exec(ctx, "INSERT INTO products (tenant_id, name, price) VALUES ($1, 'after', 1)", acme.Tenant.ID)
	require.NoError(t, err, "not frozen any more")
}

// The freeze is one CREATE OR REPLACE FUNCTION of the triggers' function
// (made unfrozen before, outside the pause): a transaction that wrote the
// tenant's rows before it may commit after the catch-up's marker, and so
// after the verification (its rows would then stay behind in the source),
// so the move waits for every such writer to end before the marker; a
// write that starts after the freeze is refused (db.FrozenSQLState), and
// other tenants' writes never run the function.
func TestFreezeWaitsForWritersInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrid(t)
	acme := g.onboard(t, "acme", cells.Default, 10)
	globex := g.onboard(t, "globex", cells.Default, 10)
	src := g.super[cells.Default]
	prepare, freeze, wait, err := g.move(acme, cells.Default, "eu1", 0).FreezeSteps(ctx)
	require.NoError(t, err)
	require.NoError(t, prepare())
	insert := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, id uuid.UUID, name string) error {
		_, err := q.Exec(ctx, "INSERT INTO products (tenant_id, name, price) VALUES ($1, $2, 1)", id, name)
		return err
	}
	tx, err := src.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.NoError(t, insert(tx, acme.Tenant.ID, "in flight 1"), "unfrozen")

	require.NoError(t, freeze())
	var pgErr *pgconn.PgError
	require.ErrorAs(t, insert(src, acme.Tenant.ID, "after"), &pgErr)
	require.Equal(t, db.FrozenSQLState, pgErr.Code)
	require.NoError(t, insert(src, globex.Tenant.ID, "other tenant"))

	waited := make(chan error, 1)
	go func() { waited <- wait() }()
	select {
	case err := <-waited:
		t.Fatalf("the wait ended while a writer was in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, tx.Commit(ctx))
	select {
	case err := <-waited:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end with the writer")
	}
}
