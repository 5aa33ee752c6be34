package db

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db/dbsqlc"
)

// Unscoped returns the queries on d outside any tenant scope: the registry's
// lookups, platform administration and the operator's commands, whose roles'
// policies do not read app.tenant_id. d is a pool, a connection or an open
// pgx.Tx; its errors are mapped as One's are (errors.go). Code outside this
// package gets its *Queries from One, Tx, Snapshot, UnscopedTx or here, never
// from New (TestQueriesComeThroughTheBoundary).
func Unscoped(d dbsqlc.DBTX) *dbsqlc.Queries { return dbsqlc.New(mapped{d}) }

// UnscopedTx runs fn in one transaction of pool outside any tenant scope,
// committed when fn returns nil and rolled back otherwise. Errors, COMMIT's
// included, are mapped.
func UnscopedTx(ctx context.Context, pool *pgxpool.Pool, fn func(q *dbsqlc.Queries) error) error {
	return mapError(pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(Unscoped(tx)) }))
}

// mapped is a DBTX whose errors, those of the rows and row it returns
// included, have passed through mapError.
type mapped struct{ d dbsqlc.DBTX }

func (m mapped) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := m.d.Exec(ctx, sql, args...)
	return tag, mapError(err)
}

func (m mapped) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := m.d.Query(ctx, sql, args...)
	if err != nil {
		if rows != nil {
			rows.Close()
		}
		return nil, mapError(err)
	}
	return mappedRows{rows}, nil
}

func (m mapped) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return mappedRow{m.d.QueryRow(ctx, sql, args...)}
}

type mappedRows struct{ pgx.Rows }

func (r mappedRows) Scan(dest ...any) error { return mapError(r.Rows.Scan(dest...)) }
func (r mappedRows) Err() error             { return mapError(r.Rows.Err()) }

type mappedRow struct{ row pgx.Row }

func (r mappedRow) Scan(dest ...any) error { return mapError(r.row.Scan(dest...)) }
