package db

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The transactions Stream begins: one consistent snapshot, read only (an
// export) or read-write (an archive, which deletes what it read; a row
// changed meanwhile fails it with a serialization error).
const (
	BeginSnapshot      = "begin isolation level repeatable read read only"
	BeginSnapshotWrite = "begin isolation level repeatable read"
)

// Stream runs fn with the connection itself inside one transaction for the
// scope, begun by begin (BeginSnapshot, BeginSnapshotWrite), committed when fn returns nil and rolled back
// otherwise. It is for work that must not hold a result in memory: reading
// a tenant's rows one at a time (pgx.Rows streams them from the socket) for
// an export. The settings are setScopeSQL's, transaction-local as always
// (leak vector 2); RLS binds every statement fn sends. fn must not commit,
// roll back or change the settings. Errors are mapped (errors.go).
func Stream(ctx context.Context, pool *pgxpool.Pool, s Scope, begin string, fn func(conn *pgx.Conn) error) error {
	if err := s.check(); err != nil {
		return err
	}
	pc, err := acquire(ctx, pool, s)
	if err != nil {
		return err
	}
	defer pc.Release() // released inside a transaction (an error below): pgxpool destroys the connection
	conn := pc.Conn()
	ctx = withScope(ctx, s)
	if _, err := conn.Exec(ctx, begin); err != nil {
		return mapError(err)
	}
	if _, err := conn.Exec(ctx, setScopeSQL, s.TenantID.String(), string(s.Role), s.timeoutSetting()); err != nil {
		_, _ = conn.Exec(ctx, "rollback")
		return mapError(err)
	}
	if err := fn(conn); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "rollback")
		return mapError(err)
	}
	tag, err := conn.Exec(ctx, "commit")
	if err != nil {
		return mapError(err)
	}
	if tag.String() == "ROLLBACK" {
		return ErrRolledBack
	}
	return nil
}
