package cells

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
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
	// a superuser or BYPASSRLS role with REPLICATION. A role bound by RLS
	// would copy 0 rows without an error (the policy sees no tenant).
	SourceConnString string
	// Settle is how long the source stays frozen after the switch, so that
	// no instance writes there from a cached placement: TENANT_CACHE_TTL.
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
}

// ErrVerify: the two copies differ after catch-up; nothing was switched.
var ErrVerify = errors.New("the target's copy differs from the source's")

// name is the publication's, slot's, subscription's and trigger's name.
func (m *Move) name() string { return "rf_move_" + strings.ReplaceAll(m.Tenant.String(), "-", "") }

// tables are the tenant tables (every table with a tenant_id), then
// "tenants", as the source's catalog lists them.
func tenantTables(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Run moves the tenant. Before the switch any failure, ctx's end included
// (a cancel), undoes everything (Abort) and the tenant stays in From; the
// switch is one catalog row's update; after it, the tenant is served from
// To and what is left is cleanup (Finish), which a rerun of Finish
// completes. So at every step the tenant is served from exactly one cell.
func (m *Move) Run(ctx context.Context) (rep MoveReport, err error) {
	if m.Poll <= 0 {
		m.Poll = 50 * time.Millisecond
	}
	switch {
	case m.From == m.To:
		return rep, &db.Error{Code: db.ErrInvalid, Field: "to", Message: "the tenant is in that cell already"}
	case m.To == Default:
		// The catalog holds the tenant's row there already, which the
		// initial copy of tenants would conflict with. Not built yet.
		return rep, &db.Error{Code: db.ErrInvalid, Field: "to", Message: "moving a tenant into the default cell is not supported yet"}
	}
	var placed, status string
	if err := m.Catalog.QueryRow(ctx, "SELECT cell, status FROM tenants WHERE id = $1", m.Tenant).Scan(&placed, &status); err != nil {
		return rep, fmt.Errorf("move: the catalog: %w", err)
	}
	if status == "archived" {
		// Restore works in the default cell only (cmd/rowfence), and no
		// move leads back there yet: its archive would be stranded.
		return rep, &db.Error{Code: db.ErrConflict, Message: "the tenant is archived: restore it (rowfence tenant restore) before moving it"}
	}
	if placed != m.From {
		return rep, &db.Error{Code: db.ErrConflict, Message: fmt.Sprintf("the catalog places the tenant in %s, not %s", placed, m.From)}
	}
	tables, err := tenantTables(ctx, m.Source)
	if err != nil {
		return rep, err
	}
	switched := false
	defer func() {
		if err != nil && !switched {
			if aerr := m.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, aerr)
			}
		}
	}()
	var n int
	if err := m.Target.QueryRow(ctx, "SELECT count(*) FROM tenants WHERE id = $1", m.Tenant).Scan(&n); err != nil || n > 0 {
		return rep, errors.Join(err, &db.Error{Code: db.ErrConflict, Message: "the target cell holds the tenant already"})
	}
	name := m.name()
	id := m.Tenant.String() // a UUID: safe as a literal
	// 1. Publish the tenant's rows only; never TRUNCATE (it ignores row
	// filters and would empty the target's whole table).
	parts := []string{fmt.Sprintf("tenants WHERE (id = '%s')", id)}
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
	if _, err := m.Target.Exec(ctx, fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, slot_name = %s)",
		name, quote(m.SourceConnString), name, name)); err != nil {
		return rep, fmt.Errorf("move: subscribe: %w", err)
	}
	m.stage(StageCopying)
	// 3. The initial copy: every table ready.
	if err := m.until(ctx, func() (bool, error) {
		var total, ready int
		err := m.Target.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.srsubstate = 'r')
			FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`, name).Scan(&total, &ready)
		return total == len(tables)+1 && ready == total, err
	}); err != nil {
		return rep, fmt.Errorf("move: initial copy: %w", err)
	}
	rep.Copy = time.Since(start)
	// 4. Freeze the tenant's writes in the source: a trigger that errors
	// (db.FrozenSQLState: 503 with Retry-After); a policy would make
	// UPDATE and DELETE do nothing, silently. CREATE TRIGGER waits for
	// the writes in flight.
	frozeAt := time.Now()
	if _, err := m.Source.Exec(ctx, fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $f$
		BEGIN
			IF (TG_OP = 'INSERT' AND NEW.tenant_id = '%s') OR (TG_OP <> 'INSERT' AND OLD.tenant_id = '%s') THEN
				RAISE EXCEPTION 'tenant %s is being moved' USING ERRCODE = '%s';
			END IF;
			RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
		END $f$`, name, id, id, id, db.FrozenSQLState)); err != nil {
		return rep, fmt.Errorf("move: freeze: %w", err)
	}
	for _, t := range tables {
		if _, err := m.Source.Exec(ctx, fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()",
			name, pgx.Identifier{t}.Sanitize(), name)); err != nil {
			return rep, fmt.Errorf("move: freeze %s: %w", t, err)
		}
	}
	m.stage(StageFrozen)
	// 5. Catch up: a marker change after the freeze, and the slot past it.
	var lsn string
	if err := m.Source.QueryRow(ctx, "WITH u AS (UPDATE tenants SET name = name WHERE id = $1 RETURNING 1) SELECT pg_current_wal_lsn()::text FROM u", m.Tenant).Scan(&lsn); err != nil {
		return rep, fmt.Errorf("move: marker: %w", err)
	}
	if err := m.until(ctx, func() (bool, error) {
		var done bool
		err := m.Source.QueryRow(ctx, "SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1", name, lsn).Scan(&done)
		return done, err
	}); err != nil {
		return rep, fmt.Errorf("move: catch-up: %w", err)
	}
	// 6. Verify: row counts and a checksum per table, both sides.
	rep.Rows = map[string]int64{}
	for _, t := range append([]string{"tenants"}, tables...) {
		col := "tenant_id"
		if t == "tenants" {
			col = "id"
		}
		q := fmt.Sprintf("SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM %s x WHERE %s = $1",
			pgx.Identifier{t}.Sanitize(), col)
		var sn, tn int64
		var ss, ts string
		if err := m.Source.QueryRow(ctx, q, m.Tenant).Scan(&sn, &ss); err != nil {
			return rep, fmt.Errorf("move: verify %s: %w", t, err)
		}
		if err := m.Target.QueryRow(ctx, q, m.Tenant).Scan(&tn, &ts); err != nil {
			return rep, fmt.Errorf("move: verify %s: %w", t, err)
		}
		if t == "tenants" {
			continue // the copy's cell column differs: set below
		}
		if sn != tn || ss != ts {
			return rep, fmt.Errorf("move: %s: %d rows against %d: %w", t, sn, tn, ErrVerify)
		}
		rep.Rows[t] = sn
	}
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
	return rep, m.Finish(context.WithoutCancel(ctx))
}

func (m *Move) until(ctx context.Context, done func() (bool, error)) error {
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.Poll):
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
// fire, in one transaction. Then it drops the freeze.
func (m *Move) deleteTenant(ctx context.Context, pool *pgxpool.Pool, cell string) error {
	tables, err := tenantTables(ctx, pool)
	if err != nil {
		return err
	}
	name := m.name()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE tenant_id = $1", pgx.Identifier{t}.Sanitize()), m.Tenant); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", name, pgx.Identifier{t}.Sanitize())); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "DROP FUNCTION IF EXISTS "+name+"()"); err != nil {
			return err
		}
		if cell != Default {
			_, err := tx.Exec(ctx, "DELETE FROM tenants WHERE id = $1", m.Tenant)
			return err
		}
		return nil
	})
}

// Abort undoes a move that did not switch: the replication objects, the
// freeze and the target's partial copy go; the tenant stays where the
// catalog places it. It refuses once the catalog places the tenant in To.
func (m *Move) Abort(ctx context.Context) error {
	var placed string
	if err := m.Catalog.QueryRow(ctx, "SELECT cell FROM tenants WHERE id = $1", m.Tenant).Scan(&placed); err != nil {
		return err
	}
	if placed == m.To {
		return errors.New("move: switched already; run Finish")
	}
	if err := m.unsubscribe(ctx); err != nil {
		return err
	}
	if err := m.deleteTenant(ctx, m.Target, m.To); err != nil {
		return err
	}
	// The source keeps its rows; only the freeze goes.
	return m.dropFreeze(ctx, m.Source)
}

func (m *Move) dropFreeze(ctx context.Context, pool *pgxpool.Pool) error {
	tables, err := tenantTables(ctx, pool)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := pool.Exec(ctx, fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", m.name(), pgx.Identifier{t}.Sanitize())); err != nil {
			return err
		}
	}
	_, err = pool.Exec(ctx, "DROP FUNCTION IF EXISTS "+m.name()+"()")
	return err
}

// Finish completes a move that switched: the replication objects go, the
// target's copy of the tenants row names its cell, and the source's rows
// (and freeze) go. It refuses unless the catalog places the tenant in To.
func (m *Move) Finish(ctx context.Context) error {
	var placed string
	if err := m.Catalog.QueryRow(ctx, "SELECT cell FROM tenants WHERE id = $1", m.Tenant).Scan(&placed); err != nil {
		return err
	}
	if placed != m.To {
		return errors.New("move: not switched; run Abort")
	}
	if err := m.unsubscribe(ctx); err != nil {
		return err
	}
	if m.To != Default {
		if _, err := m.Target.Exec(ctx, "UPDATE tenants SET cell = $2 WHERE id = $1", m.Tenant, m.To); err != nil {
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
	return m.deleteTenant(ctx, m.Source, m.From)
}

// quote is a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (m *Move) stage(s string) {
	if m.Stage != nil {
		m.Stage(s)
	}
}
