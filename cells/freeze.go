package cells

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/rowfence/rowfence/db"
)

// freezeTriggers are the names of the freeze's two triggers on each tenant
// table: one on INSERT OR UPDATE whose WHEN reads NEW, one on UPDATE OR
// DELETE whose WHEN reads OLD (a trigger's WHEN may not read OLD on INSERT
// nor NEW on DELETE: PostgreSQL 15 docs, CREATE TRIGGER). The second is
// the name of the single trigger earlier versions made, so that Abort and
// Finish drop that one too.
func (m *Move) freezeTriggers() [2]string { return [2]string{m.name() + "_new", m.name()} }

// freezeFunction is the statement that makes the freeze's trigger function,
// frozen (it raises db.FrozenSQLState: 503 with Retry-After) or not (it
// returns the row unchanged). The triggers' WHEN clauses call it for the
// moved tenant's rows only, so other tenants' writes never run it.
func (m *Move) freezeFunction(frozen bool) string {
	body := "RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;"
	if frozen {
		body = fmt.Sprintf("RAISE EXCEPTION 'tenant %s is being moved' USING ERRCODE = '%s';", m.Tenant, db.FrozenSQLState)
	}
	return fmt.Sprintf("CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$ BEGIN %s END $f$",
		m.name(), body)
}

// freezeLockTimeout bounds how long CREATE TRIGGER waits for a table's
// lock (SHARE ROW EXCLUSIVE, which conflicts with every write and with
// VACUUM) before it gives up and tries again: while it waits, every other
// tenant's write to the table queues behind it.
const freezeLockTimeout = 50 * time.Millisecond

// prepareFreeze makes the freeze's function, unfrozen, and its triggers on
// every tenant table of the source, one table per transaction; each waits
// at most freezeLockTimeout at a time for the table's lock.
func (m *Move) prepareFreeze(ctx context.Context, tables []string) error {
	if _, err := m.Source.Exec(ctx, m.freezeFunction(false)); err != nil {
		return err
	}
	names := m.freezeTriggers()
	id := m.Tenant.String() // a UUID: safe as a literal
	for _, t := range tables {
		table := pgx.Identifier{t}.Sanitize()
		for {
			err := pgx.BeginFunc(ctx, m.Source, func(tx pgx.Tx) error {
				for _, stmt := range []string{
					fmt.Sprintf("SET LOCAL lock_timeout = %d", freezeLockTimeout.Milliseconds()),
					fmt.Sprintf("CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW WHEN (NEW.tenant_id = '%s') EXECUTE FUNCTION %s()",
						names[0], table, id, m.name()),
					fmt.Sprintf("CREATE OR REPLACE TRIGGER %s BEFORE UPDATE OR DELETE ON %s FOR EACH ROW WHEN (OLD.tenant_id = '%s') EXECUTE FUNCTION %s()",
						names[1], table, id, m.name()),
				} {
					if _, err := tx.Exec(ctx, stmt); err != nil {
						return err
					}
				}
				return nil
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // lock_not_available
				if err != nil {
					return fmt.Errorf("%s: %w", t, err)
				}
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(freezeLockTimeout):
			}
		}
	}
	return nil
}

// waitForWriters returns once every transaction of the source that held a
// write lock (ROW EXCLUSIVE) on a tenant table when it was called has
// ended. Such a transaction may have written the tenant's rows before the
// freeze and commit after the catch-up's marker, past the verification,
// so that its rows would stay behind in the source; it may also still run
// the unfrozen function, holding its locks already (a backend reads the
// catalog's invalidations when it takes a new lock, at the latest); any
// later writer runs the frozen one. This is the wait CREATE TRIGGER made
// for its lock, without queueing other tenants' writes behind it; CREATE
// INDEX CONCURRENTLY waits on virtual transaction ids the same way.
func (m *Move) waitForWriters(ctx context.Context, tables []string) error {
	var vxids []string
	if err := m.Source.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT l.virtualtransaction), '{}') FROM pg_locks l
		WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.relation IN (SELECT to_regclass(quote_ident(t)) FROM unnest($1::text[]) t)
		  AND l.pid IS DISTINCT FROM pg_backend_pid()`, tables).Scan(&vxids); err != nil {
		return err
	}
	if len(vxids) == 0 {
		return nil
	}
	return m.untilEvery(ctx, min(m.Poll, frozenPoll), func() (bool, error) {
		var running bool
		err := m.Source.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY($1))", vxids).Scan(&running)
		return !running, err
	})
}

// Checksum is a table's count and checksum of the moved tenant's rows (a
// format string: the table's quoted name; $1 the tenant): the
// sum, exact (numeric), of a 64-bit hash of each row (hash_record_extended,
// PostgreSQL 14+, which combines each column's own extended hash function:
// no text of the row is made, three times as fast as hashing its text, 0.33
// against 1.0 s for 1,000,000 products). It needs no sort, unlike an md5 of
// the rows in order, so it costs one scan per table. Two multisets of rows
// that differ in count, or in a row whose values are not equal by their
// types' equality, differ in it too, unless two 64-bit hashes collide (about
// 2^-64 for rows that are not made to collide); values equal by their type
// but written differently (numeric 1.0 and 1.00) hash alike, and logical
// replication carries values as text, so it keeps such spellings anyway. A
// tenant could craft colliding rows of its own, but not make the replication
// change one of its rows into another, and the check is against a copy gone
// wrong, not against the tenant. A column type without an extended hash
// function fails the move before its switch (it is undone).
const Checksum = "SELECT count(*), coalesce(sum(hash_record_extended(x, 0)), 0)::text FROM %s x WHERE tenant_id = $1"

// verify compares the count and checksum of every table on both sides,
// all at once (each side runs one query per table, as far as its pool
// allows). Errors: ErrVerify naming the first table that differs.
func (m *Move) verify(ctx context.Context, tables []string) (map[string]int64, error) {
	type sums struct {
		n   int64
		sum string
	}
	src, tgt := make([]sums, len(tables)), make([]sums, len(tables))
	g, gctx := errgroup.WithContext(ctx)
	for i, t := range tables {
		q := fmt.Sprintf(Checksum, pgx.Identifier{t}.Sanitize())
		g.Go(func() error { return m.Source.QueryRow(gctx, q, m.Tenant).Scan(&src[i].n, &src[i].sum) })
		g.Go(func() error { return m.Target.QueryRow(gctx, q, m.Tenant).Scan(&tgt[i].n, &tgt[i].sum) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("move: verify: %w", err)
	}
	rows := map[string]int64{}
	for i, t := range tables {
		if src[i] != tgt[i] {
			return nil, fmt.Errorf("move: %s: %d rows against %d, checksums equal: %t: %w", t, src[i].n, tgt[i].n, src[i].sum == tgt[i].sum, ErrVerify)
		}
		rows[t] = src[i].n
	}
	return rows, nil
}
