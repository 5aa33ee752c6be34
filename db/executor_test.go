package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// The zero Executor runs nothing; Joined runs in the caller's transaction,
// which then commits or rolls back everything in it.
func TestExecutor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	_, err := db.OneIn(ctx, db.Executor{}, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(ctx, uuid.New()) })
	require.ErrorIs(t, err, db.ErrNoExecutor)
	require.ErrorIs(t, db.TxIn(ctx, db.Executor{}, func(*dbsqlc.Queries) error { return nil }), db.ErrNoExecutor)

	create := func(exec db.Executor, name string) error {
		_, err := db.OneIn(ctx, exec, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
			return q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: name, Price: 1})
		})
		return err
	}
	require.NoError(t, create(db.Scoped(bundle.app, bundle.a), "scoped"))
	errLater := errors.New("the outer unit fails after the joined write")
	err = db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		require.NoError(t, create(db.Joined(q), "joined"))
		require.NoError(t, db.TxIn(ctx, db.Joined(q), func(q *dbsqlc.Queries) error {
			_, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "joined", Price: 2})
			return err
		}))
		return errLater
	})
	require.ErrorIs(t, err, errLater)
	var names []string
	for _, p := range listProducts(t, bundle.app, bundle.a) {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"scoped"}, names, "the joined writes rolled back with the transaction they joined")
}
