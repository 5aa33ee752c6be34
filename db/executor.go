package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db/dbsqlc"
)

// Executor is where a unit of work runs, chosen by whoever holds the larger
// unit: for a scope, each unit in one round trip (One) or a transaction
// (Tx) of its own; or joined to a transaction already open, so that it
// commits or rolls back with everything else in it. The HTTP routes choose it
// (httpapi/routes.go: an idempotent POST's handler joins the transaction that
// also stores its answer) and handlers pass it on explicitly, so a reader sees
// at each call which unit of work a write belongs to. The zero Executor runs
// nothing: ErrNoExecutor.
type Executor struct {
	pool   *pgxpool.Pool
	scope  Scope
	joined *dbsqlc.Queries // the open transaction's queries, when joined
}

// Scoped is the Executor of a scope: OneIn is One, TxIn is Tx.
func Scoped(pool *pgxpool.Pool, s Scope) Executor { return Executor{pool: pool, scope: s} }

// Joined is the Executor of the transaction whose queries q are (those Tx
// passed its fn): OneIn and TxIn run their statements in it, and its owner
// commits or rolls them back.
func Joined(q *dbsqlc.Queries) Executor { return Executor{joined: q} }

// ErrNoExecutor is returned, before anything is sent, by OneIn and TxIn of
// the zero Executor.
var ErrNoExecutor = errors.New("db: no executor: use Scoped or Joined")

// OneIn runs fn, a single statement, through e: One for a scope, or in the
// joined transaction. Errors are mapped (errors.go).
func OneIn[T any](ctx context.Context, e Executor, fn func(q *dbsqlc.Queries) (T, error)) (T, error) {
	switch {
	case e.joined != nil:
		return fn(e.joined)
	case e.pool == nil:
		var zero T
		return zero, ErrNoExecutor
	}
	return One(ctx, e.pool, e.scope, fn)
}

// TxIn runs fn, several statements that stand or fall together, through e:
// Tx for a scope, or in the joined transaction (which fn's error then rolls
// back as a whole). Errors are mapped (errors.go).
func TxIn(ctx context.Context, e Executor, fn func(q *dbsqlc.Queries) error) error {
	switch {
	case e.joined != nil:
		return fn(e.joined)
	case e.pool == nil:
		return ErrNoExecutor
	}
	return Tx(ctx, e.pool, e.scope, fn)
}
