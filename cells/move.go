package cells

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// Move is one tenant's move between cells with PostgreSQL 15 logical
// replication (docs/SCALING.md, "Moving a tenant between cells").
type Move struct {
	Tenant uuid.UUID
	// From and To name the cells; Catalog is the default cell's pool,
	// Source and Target the cells' (the same pool as Catalog for the
	// default cell). All three connect as a superuser: in PostgreSQL 15
	// only a superuser owns a subscription whose apply may write into
	// tables with FORCE ROW LEVEL SECURITY, and the verification reads
	// both sides whole.
	From, To                string
	Catalog, Source, Target *pgxpool.Pool
	// SourceConnString is how the target's subscription reaches the source:
	// a superuser, or a role with LOGIN, REPLICATION, BYPASSRLS and SELECT
	// on the tenant tables (PostgreSQL 15 docs, 31.9 "Security";
	// docs/SCALING.md, "The replication role"). A role bound by RLS copies
	// 0 rows without an error (no policy admits it), which the verification
	// catches; one missing SELECT fails the initial copy, which Run reports.
	SourceConnString string
	// Settle is how long the source stays frozen after the switch, so that
	// no instance writes there from a cached placement: TENANT_CACHE_TTL
	// plus three invalidation heartbeats.
	Settle time.Duration
	// Poll is how often the progress is looked at (default 50ms).
	Poll time.Duration
	// Stage, if set, is told each stage Run reaches: StageCopying,
	// StageFrozen, StageSwitched (moves.go records them).
	Stage func(stage string)
}

// MoveReport says what a move did and how long the tenant's writes paused.
type MoveReport struct {
	Rows   map[string]int64 // per table, verified equal on both sides
	Copy   time.Duration    // from the subscription to every table ready
	Frozen time.Duration    // from the freeze to the switch (writes answer 503)
	// CatchUp and Verify are the parts of Frozen spent waiting for the
	// target to apply everything written before the freeze, and comparing
	// the two copies.
	CatchUp, Verify time.Duration
}

// ErrVerify: the two copies differ after catch-up; nothing was switched.
var ErrVerify = errors.New("the target's copy differs from the source's")

// name is the publication's, slot's, subscription's and trigger's name.
func (m *Move) name() string { return "rf_move_" + strings.ReplaceAll(m.Tenant.String(), "-", "") }

// tenantTables are the tenant tables (every table with a tenant_id) as
// pool's cell lists them, sorted.
// querier is a pool or a transaction of a cell.
type querier interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

func tenantTables(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// rowsOf names the first table of pool's cell holding a row of tenant
// (among tables, and tenants when withRow), or "".
func rowsOf(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, tables []string, withRow bool) (string, error) {
	check := tables
	if withRow {
		check = append([]string{"tenants"}, tables...)
	}
	for _, t := range check {
		q := fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_id = $1)", pgx.Identifier{t}.Sanitize())
		if t == "tenants" {
			q = "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)"
		}
		var found bool
		if err := pool.QueryRow(ctx, q, tenant).Scan(&found); err != nil {
			return "", fmt.Errorf("move: the target's %s: %w", t, err)
		}
		if found {
			return t, nil
		}
	}
	return "", nil
}

// CopyTenant makes cell's copy of tenant's row in tenants equal to the
// catalog's row, every column (the cell column included), inserting it if
// the cell has none. A non-default cell's copy exists for its tenant
// tables' foreign keys and for what runs in the cell (the last-admin
// trigger reads its status, 00020; export headers its slug and name); the
// catalog's row is the one that status, name and limit changes update.
// Both cells are at one migration version (Set.CheckVersions), so the
// columns are the same; they are read from the cell, so a column added
// later is copied too. catalog and cell connect as the migrating role or a
// superuser. Errors: db.ErrNotFound when the catalog has no such tenant.
func CopyTenant(ctx context.Context, catalog, cell dbsqlc.DBTX, tenant uuid.UUID) error {
	var row []byte
	if err := catalog.QueryRow(ctx, "SELECT to_jsonb(t) FROM tenants t WHERE id = $1", tenant).Scan(&row); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tenant %s: %w", tenant, db.ErrNotFound)
		}
		return err
	}
	var cols, excluded string
	if err := cell.QueryRow(ctx, `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum), string_agg('excluded.' || quote_ident(attname), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = 'public.tenants'::regclass AND attnum > 0 AND NOT attisdropped`).Scan(&cols, &excluded); err != nil {
		return err
	}
	_, err := cell.Exec(ctx, fmt.Sprintf(`INSERT INTO public.tenants (%s) SELECT %s FROM jsonb_populate_record(NULL::public.tenants, $1)
		ON CONFLICT (id) DO UPDATE SET (%s) = ROW(%s)`, cols, cols, cols, excluded), row)
	return err
}

// Run moves the tenant. Before the switch any failure, ctx's end included
// (a cancel), undoes everything (Abort) and the tenant stays in From; the
// switch is one catalog row's update; after it, the tenant is served from
// To and what is left is cleanup (Finish), which a rerun of Finish
// completes. So at every step the tenant is served from exactly one cell.
func (m *Move) Run(ctx context.Context) (rep MoveReport, err error) {
	release, err := m.lock(ctx)
	if err != nil {
		return rep, err
	}
	defer release()
	return m.run(ctx)
}

func (m *Move) run(ctx context.Context) (rep MoveReport, err error) {
	if m.Poll <= 0 {
		m.Poll = 50 * time.Millisecond
	}
	if m.From == m.To {
		return rep, &db.Error{Code: db.ErrInvalid, Field: "to", Message: "the tenant is in that cell already"}
	}
	// An archived tenant moves too (a cell being retired may hold some):
	// its archive is rows of its own tables (exports, export_chunks), so it
	// moves with them, and restore works in any cell (lifecycle.RestoreIn).
	placed, err := m.Placement(ctx)
	if err != nil {
		return rep, fmt.Errorf("move: the catalog: %w", err)
	}
	if placed != m.From {
		return rep, &db.Error{Code: db.ErrConflict, Message: fmt.Sprintf("the catalog places the tenant in %s, not %s", placed, m.From)}
	}
	tables, err := tenantTables(ctx, m.Source)
	if err != nil {
		return rep, err
	}
	// Nothing of the tenant may be in the target yet: Abort deletes what
	// the target holds of it. The default cell holds the catalog's row,
	// and only that.
	held, err := rowsOf(ctx, m.Target, m.Tenant, tables, m.To != Default)
	if err != nil {
		return rep, err
	}
	if held != "" {
		return rep, &db.Error{Code: db.ErrConflict, Message: fmt.Sprintf("the target cell holds the tenant's %s already: finish or undo the earlier move first (rowfence tenant move --cleanup)", held)}
	}
	switched := false
	defer func() {
		if err != nil && !switched {
			if aerr := m.abort(context.WithoutCancel(ctx)); aerr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, aerr)
			}
		}
	}()
	// The target's copy of the tenants row (its tables' foreign keys need
	// it) is the catalog's row, not the source's copy: the catalog is what
	// status, name and limit changes update. The default cell's row is the
	// catalog's own. Abort deletes the copy again.
	if m.To != Default {
		if err := CopyTenant(ctx, m.Catalog, m.Target, m.Tenant); err != nil {
			return rep, fmt.Errorf("move: the tenant's row in the target: %w", err)
		}
	}
	// A tombstone of an earlier move out of the target (deleteTenant) would
	// refuse the tenant's writes there after the switch. Nobody writes the
	// tenant there now: the catalog places it in the source.
	if err := m.dropFreeze(ctx, m.Target); err != nil {
		return rep, fmt.Errorf("move: the target's tombstone: %w", err)
	}
	name := m.name()
	id := m.Tenant.String() // a UUID: safe as a literal
	// 1. Publish the tenant's rows only; never TRUNCATE (it ignores row
	// filters and would empty the target's whole table). Not `tenants`:
	// the target's row is the catalog's (above), and in the default cell
	// it is there already, where an initial copy would conflict with it.
	var parts []string
	for _, t := range tables {
		parts = append(parts, fmt.Sprintf("%s WHERE (tenant_id = '%s')", pgx.Identifier{t}.Sanitize(), id))
	}
	if _, err := m.Source.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish = 'insert, update, delete')",
		name, strings.Join(parts, ", "))); err != nil {
		return rep, fmt.Errorf("move: publish: %w", err)
	}
	// 2. The slot apart from the subscription: in one cluster, CREATE
	// SUBSCRIPTION making it would wait for its own transaction.
	if _, err := m.Source.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name); err != nil {
		return rep, fmt.Errorf("move: replication slot: %w", err)
	}
	start := time.Now()
	// synchronous_commit = on: the subscriber confirms a position only once
	// what it applied up to there is flushed; committing asynchronously (the
	// default, off) it confirms the freeze's marker only after the WAL
	// writer's next flush and its own next feedback, up to a second later
	// (PostgreSQL 15 docs, CREATE SUBSCRIPTION, synchronous_commit).
	if _, err := m.Target.Exec(ctx, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, slot_name = %s, synchronous_commit = on)",
		name, quote(m.SourceConnString), name, name)); err != nil {
		return rep, fmt.Errorf("move: subscribe: %w", err)
	}
	m.stage(StageCopying)
	// 3. The initial copy: every table ready.
	if err := m.until(ctx, func() (bool, error) {
		var total, ready, failed int
		err := m.Target.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.srsubstate = 'r'),
				(SELECT coalesce(max(sync_error_count + apply_error_count), 0) FROM pg_stat_subscription_stats WHERE subname = $1)
			FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`, name).Scan(&total, &ready, &failed)
		if err == nil && failed > 0 {
			// A table sync worker that fails (the source connection's role
			// may not read a table, say) is restarted for ever: stop at the
			// first error (pg_stat_subscription_stats, PostgreSQL 15).
			return false, errors.New("the target's subscription failed to copy or apply (the target cell's server log says why; is the source connection's role missing SELECT on a tenant table, or BYPASSRLS?)")
		}
		return total == len(tables) && ready == total, err
	}); err != nil {
		return rep, fmt.Errorf("move: initial copy: %w", err)
	}
	rep.Copy = time.Since(start)
	// 4. Freeze the tenant's writes in the source: triggers that error
	// (db.FrozenSQLState: 503 with Retry-After); a policy would make
	// UPDATE and DELETE do nothing, silently. The triggers are made first,
	// unfrozen (their function returns the row), outside the freeze; the
	// freeze is then one CREATE OR REPLACE FUNCTION.
	if err := m.prepareFreeze(ctx, tables); err != nil {
		return rep, fmt.Errorf("move: freeze: %w", err)
	}
	frozeAt := time.Now()
	if _, err := m.Source.Exec(ctx, m.freezeFunction(true)); err != nil {
		return rep, fmt.Errorf("move: freeze: %w", err)
	}
	// A transaction that held a write lock on a tenant table before the
	// function changed may have written with the unfrozen version and
	// commit after the marker, past the verification: the freeze holds
	// once every such transaction ended (what CREATE TRIGGER waited for,
	// without queueing other tenants' writes behind it).
	if err := m.waitForWriters(ctx, tables); err != nil {
		return rep, fmt.Errorf("move: freeze: %w", err)
	}
	m.stage(StageFrozen)
	// 5. Catch up: a marker in the source's WAL after the freeze, and the
	// slot confirmed past it. The marker is a logical decoding message,
	// which no publication carries: the walsender, idle past it, sends a
	// keepalive, and the subscriber confirms it only once it applied every
	// transaction committed before it (PostgreSQL 15 applies in commit
	// order, one worker per subscription). Polled more often than the copy:
	// each poll here is a part of the pause.
	caughtAt := time.Now()
	var lsn string
	if err := m.Source.QueryRow(ctx, "SELECT pg_logical_emit_message(true, $1, 'frozen')::text", name).Scan(&lsn); err != nil {
		return rep, fmt.Errorf("move: marker: %w", err)
	}
	if err := m.untilEvery(ctx, min(m.Poll, frozenPoll), func() (bool, error) {
		var done bool
		err := m.Source.QueryRow(ctx, "SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1", name, lsn).Scan(&done)
		return done, err
	}); err != nil {
		return rep, fmt.Errorf("move: catch-up: %w", err)
	}
	verifyAt := time.Now()
	rep.CatchUp = verifyAt.Sub(caughtAt)
	// 6. Verify: row counts and a checksum per table, both sides.
	if rep.Rows, err = m.verify(ctx, tables); err != nil {
		return rep, err
	}
	rep.Verify = time.Since(verifyAt)
	// 7. Switch: one row of the catalog.
	tag, err := m.Catalog.Exec(ctx, "UPDATE tenants SET cell = $2 WHERE id = $1 AND cell = $3", m.Tenant, m.To, m.From)
	if err != nil || tag.RowsAffected() != 1 {
		return rep, errors.Join(err, errors.New("move: switch: the placement changed under the move"))
	}
	switched = true
	rep.Frozen = time.Since(frozeAt)
	m.stage(StageSwitched)
	// 8. The source stays frozen while cached placements expire.
	select {
	case <-time.After(m.Settle):
	case <-ctx.Done():
	}
	return rep, m.finish(context.WithoutCancel(ctx))
}

func (m *Move) until(ctx context.Context, done func() (bool, error)) error {
	return m.untilEvery(ctx, m.Poll, done)
}

// frozenPoll is how often the catch-up is looked at inside the freeze.
const frozenPoll = 5 * time.Millisecond

func (m *Move) untilEvery(ctx context.Context, poll time.Duration, done func() (bool, error)) error {
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// unsubscribe drops the subscription, then the slot and the publication,
// in that order (the publication goes last so that nothing replicates the
// deletes that follow); each only if it exists.
func (m *Move) unsubscribe(ctx context.Context) error {
	name := m.name()
	var exists bool
	if err := m.Target.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_subscription WHERE subname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		for _, stmt := range []string{"ALTER SUBSCRIPTION %s DISABLE", "ALTER SUBSCRIPTION %s SET (slot_name = NONE)", "DROP SUBSCRIPTION %s"} {
			if _, err := m.Target.Exec(ctx, fmt.Sprintf(stmt, name)); err != nil {
				return err
			}
		}
	}
	// The walsender may hold the slot a moment after the subscription went.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := m.Source.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				return err
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err := m.Source.Exec(ctx, "DROP PUBLICATION IF EXISTS "+name)
	return err
}

// deleteTenant deletes the tenant's rows from every tenant table of pool's
// cell and, unless that cell is the default one (where the tenants row is
// the catalog's), its copy of the tenants row; with
// session_replication_role = replica, so that the freeze trigger does not
// fire, in one transaction. With tombstone (Finish, in the source) the
// freeze stays, frozen: a request that chose this cell before the switch
// and writes after this (a slowly sent body, a long queue wait: longer than
// Settle) gets 503 with Retry-After and forgets the placement, instead of a
// 201 for a row in a cell nobody reads for this tenant
// (TestSlowWriteAcrossMoveIsNotLost). Without (Abort, in the target), the
// freeze goes too. A tombstone goes when the tenant moves back (Run).
func (m *Move) deleteTenant(ctx context.Context, pool *pgxpool.Pool, cell string, tombstone bool) error {
	tables, err := tenantTables(ctx, pool)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE tenant_id = $1", pgx.Identifier{t}.Sanitize()), m.Tenant); err != nil {
				return err
			}
		}
		if cell != Default {
			if _, err := tx.Exec(ctx, "DELETE FROM tenants WHERE id = $1", m.Tenant); err != nil {
				return err
			}
		}
		if tombstone {
			return nil
		}
		return m.dropFreeze(ctx, tx)
	})
}

// Abort undoes a move that did not switch: the replication objects, the
// freeze and the target's partial copy go; the tenant stays where the
// catalog places it. It refuses unless the catalog places the tenant in
// From: what the target holds of it is deleted, which must never be the
// tenant's live rows.
func (m *Move) Abort(ctx context.Context) error {
	release, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer release()
	return m.abort(ctx)
}

// Placement is the cell the catalog places the move's tenant in now: From
// until the switch, To after it. Errors: the catalog's (pgx.ErrNoRows for a
// tenant it does not know).
func (m *Move) Placement(ctx context.Context) (string, error) {
	var cell string
	err := m.Catalog.QueryRow(ctx, "SELECT cell FROM tenants WHERE id = $1", m.Tenant).Scan(&cell)
	return cell, err
}

func (m *Move) abort(ctx context.Context) error {
	placed, err := m.Placement(ctx)
	if err != nil {
		return err
	}
	switch placed {
	case m.To:
		return errors.New("move: switched already; run Finish")
	case m.From:
	default:
		return fmt.Errorf("move: the catalog places the tenant in %s, neither %s nor %s: nothing to undo", placed, m.From, m.To)
	}
	if err := m.unsubscribe(ctx); err != nil {
		return err
	}
	if err := m.deleteTenant(ctx, m.Target, m.To, false); err != nil {
		return err
	}
	// The source keeps its rows; only the freeze goes.
	return m.dropFreeze(ctx, m.Source)
}

// dropFreeze drops the freeze's triggers and function, or a tombstone's,
// in q's cell (a pool or a transaction), if there are any.
func (m *Move) dropFreeze(ctx context.Context, q querier) error {
	tables, err := tenantTables(ctx, q)
	if err != nil {
		return err
	}
	for _, t := range tables {
		for _, trigger := range m.freezeTriggers() {
			if _, err := q.Exec(ctx, fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", trigger, pgx.Identifier{t}.Sanitize())); err != nil {
				return err
			}
		}
	}
	_, err = q.Exec(ctx, "DROP FUNCTION IF EXISTS "+m.name()+"()")
	return err
}

// Finish completes a move that switched: the replication objects go, the
// target's copy of the tenants row becomes the catalog's row (CopyTenant;
// none in the default cell, where the row is the catalog's own), and the
// source's rows, its copy of the tenants row (unless the source is the
// default cell) and the freeze go. It refuses unless the catalog places
// the tenant in To.
func (m *Move) Finish(ctx context.Context) error {
	release, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer release()
	return m.finish(ctx)
}

func (m *Move) finish(ctx context.Context) error {
	placed, err := m.Placement(ctx)
	if err != nil {
		return err
	}
	if placed != m.To {
		return errors.New("move: not switched; run Abort")
	}
	if err := m.unsubscribe(ctx); err != nil {
		return err
	}
	if m.To != Default {
		// The catalog's row as it is now: its cell, and any status or
		// name change made while the tenant moved.
		if err := CopyTenant(ctx, m.Catalog, m.Target, m.Tenant); err != nil {
			return err
		}
	}
	// An export pending or running when the tenant moved has its job in the
	// source cell's River schema (the exports trigger fires there, not on
	// the subscription's apply), which finds no export once the source's
	// rows go: its copy here would stay in progress for ever. It fails,
	// saying why; one the tenant requested here since has its job here and
	// is left alone (TestMoveFailsExportsInProgress).
	if _, err := m.Target.Exec(ctx, `UPDATE exports e SET status = 'failed', finished_at = now(),
		error = 'the tenant moved to another cell while the export was in progress; request it again'
		WHERE e.tenant_id = $1 AND e.status IN ('pending', 'running')
		  AND NOT EXISTS (SELECT 1 FROM river.river_job j WHERE j.kind = 'tenant_export' AND j.args->>'export_id' = e.id::text
		                    AND j.state NOT IN ('completed', 'cancelled', 'discarded'))`, m.Tenant); err != nil {
		return fmt.Errorf("move: exports in progress: %w", err)
	}
	return m.deleteTenant(ctx, m.Source, m.From, true)
}

// ErrMoveRunning: another Run, Abort or Finish of the tenant's move holds
// its lock (a rescued job beside the first attempt, `tenant move --cleanup`
// beside a move in progress): each would undo the other's steps.
var ErrMoveRunning = &db.Error{Code: db.ErrConflict, Message: "another move of this tenant, or its cleanup, is running: wait for it to end"}

// lock takes the tenant's move lock, a session advisory lock in the
// catalog on a connection of its own (PostgreSQL 15 docs, 9.27.10
// "Advisory Lock Functions"), held until release; it does not wait.
// Errors: ErrMoveRunning when another session holds it.
func (m *Move) lock(ctx context.Context) (release func(), err error) {
	conn, err := pgx.ConnectConfig(ctx, m.Catalog.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("move: the catalog: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended('rowfence.move:' || $1::text, 0))", m.Tenant).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		if err == nil {
			err = ErrMoveRunning
		}
		return nil, err
	}
	// Closing the session releases the lock.
	return func() { _ = conn.Close(context.WithoutCancel(ctx)) }, nil
}

// quote is a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (m *Move) stage(s string) {
	if m.Stage != nil {
		m.Stage(s)
	}
}
