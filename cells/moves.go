package cells

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
)

// The stages of a move as its record (tenant_moves.state,
// sql/migrations/00022_tenant_moves.sql) and GET /v1/admin/moves/{id} name
// them. pending → copying → frozen → switched → done; failed and cancelled
// end a move before its switch, with the tenant still served from its
// source cell.
const (
	StagePending   = "pending"   // recorded, its job not started yet
	StageCopying   = "copying"   // the initial copy (publication, slot, subscription)
	StageFrozen    = "frozen"    // writes answer 503 while the target catches up and is verified
	StageSwitched  = "switched"  // the catalog places the tenant in To; cleanup left
	StageDone      = "done"      // cleaned up
	StageFailed    = "failed"    // undone (error says why)
	StageCancelled = "cancelled" // undone on request
)

// MoveJobKind and MoveQueue are the River job that runs a recorded move
// (package jobs) and its queue. Only an instance configured for moves
// (TENANT_MOVES, with superuser connections to the cells) works that queue,
// so no other instance ever picks a move up.
const (
	MoveJobKind = "tenant_move"
	MoveQueue   = "tenant_moves"
)

// MoveRecord is one move as the catalog records it.
type MoveRecord struct {
	ID     uuid.UUID `json:"id"`
	Tenant uuid.UUID `json:"tenant_id"`
	Slug   string    `json:"slug"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	State  string    `json:"state"`
	// CancelRequested: DELETE /v1/admin/moves/{id} asked for it to stop; it
	// stops (cancelled) unless it switched first (then it completes).
	CancelRequested bool             `json:"cancel_requested"`
	Rows            map[string]int64 `json:"rows"`
	CopyMs          *int64           `json:"copy_ms"`
	WritesFrozenMs  *int64           `json:"writes_frozen_ms"`
	Error           string           `json:"error"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
	FinishedAt      *time.Time       `json:"finished_at"`
}

// Ended reports whether the move is over (done, failed or cancelled).
func (r MoveRecord) Ended() bool {
	return r.State == StageDone || r.State == StageFailed || r.State == StageCancelled
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const moveColumns = `m.id, m.tenant, t.slug, m.from_cell, m.to_cell, m.state, m.cancel_requested, m.rows, m.copy_ms,
	m.writes_frozen_ms, m.error, m.created_at, m.updated_at, m.finished_at`

func scanMove(row pgx.CollectableRow) (MoveRecord, error) {
	var r MoveRecord
	var rows []byte
	err := row.Scan(&r.ID, &r.Tenant, &r.Slug, &r.From, &r.To, &r.State, &r.CancelRequested, &rows, &r.CopyMs,
		&r.WritesFrozenMs, &r.Error, &r.CreatedAt, &r.UpdatedAt, &r.FinishedAt)
	if err == nil && rows != nil {
		err = json.Unmarshal(rows, &r.Rows)
	}
	return r, err
}

// moveQuery runs a statement returning tenant_moves rows as m (joined to
// tenants as t in the statement) and collects them.
func moveQuery(ctx context.Context, q querier, sql string, args ...any) ([]MoveRecord, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, db.MapError(err)
	}
	out, err := pgx.CollectRows(rows, scanMove)
	return out, db.MapError(err)
}

func oneMove(recs []MoveRecord, err error) (MoveRecord, error) {
	if err != nil {
		return MoveRecord{}, err
	}
	if len(recs) == 0 {
		return MoveRecord{}, &db.Error{Code: db.ErrNotFound, Message: "no such move"}
	}
	return recs[0], nil
}

// RequestMove records a move of tenant to the cell to and enqueues its job,
// in one transaction on catalog (the default cell, as rowfence_platform).
// reachable says which cells the movers can reach (nil: any). Errors:
// db.ErrNotFound (no such tenant); db.ErrInvalid on field "to" (not a
// registered cell, not reachable for moves, or where the tenant is
// already); db.ErrConflict (the tenant is archived or being deleted, or a
// move of it is in progress: one at a time).
func RequestMove(ctx context.Context, catalog *pgxpool.Pool, tenant uuid.UUID, to string, reachable func(string) bool) (MoveRecord, error) {
	var rec MoveRecord
	err := pgx.BeginFunc(ctx, catalog, func(tx pgx.Tx) error {
		var placed, status string
		err := tx.QueryRow(ctx, "SELECT cell, status FROM tenants WHERE id = $1 FOR UPDATE", tenant).Scan(&placed, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return &db.Error{Code: db.ErrNotFound, Message: "no such tenant"}
		}
		if err != nil {
			return err
		}
		switch {
		case status == "archived":
			return &db.Error{Code: db.ErrConflict, Message: "the tenant is archived: restore it before moving it"}
		case status == "deleting":
			return &db.Error{Code: db.ErrConflict, Message: "the tenant is being deleted: reactivate it before moving it"}
		case !ValidName(to):
			return &db.Error{Code: db.ErrInvalid, Field: "to", Message: "must be a cell's name: 2-32 characters of a-z, 0-9 and -, starting with a letter"}
		case to == placed:
			return &db.Error{Code: db.ErrInvalid, Field: "to", Message: fmt.Sprintf("the tenant is in cell %s already", to)}
		}
		var registered bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM cells WHERE name = $1)", to).Scan(&registered); err != nil {
			return err
		}
		if !registered {
			return &db.Error{Code: db.ErrInvalid, Field: "to", Message: fmt.Sprintf("no cell %q is registered", to)}
		}
		for _, c := range []string{placed, to} {
			if reachable != nil && !reachable(c) {
				return &db.Error{Code: db.ErrInvalid, Field: "to",
					Message: fmt.Sprintf("cell %q is not configured for moves on this instance (CELLS)", c)}
			}
		}
		recs, err := moveQuery(ctx, tx, `WITH m AS (INSERT INTO tenant_moves (tenant, from_cell, to_cell) VALUES ($1, $2, $3) RETURNING *)
			SELECT `+moveColumns+` FROM m JOIN tenants t ON t.id = m.tenant`, tenant, placed, to)
		if err != nil {
			var e *db.Error
			if errors.As(err, &e) && e.Constraint == "tenant_moves_one_at_a_time" {
				return &db.Error{Code: db.ErrConflict, Message: "a move of this tenant is in progress: one at a time"}
			}
			return err
		}
		rec = recs[0]
		// Its job, in the same transaction: no record without a job. Many
		// attempts: a retry after a restart finishes or undoes the move.
		args, _ := json.Marshal(map[string]any{"move_id": rec.ID})
		_, err = tx.Exec(ctx, `INSERT INTO river.river_job (kind, args, queue, max_attempts) VALUES ($1, $2, $3, 25)`,
			MoveJobKind, args, MoveQueue)
		return err
	})
	return rec, db.MapError(err)
}

// GetMove reads one move's record. Errors: db.ErrNotFound.
func GetMove(ctx context.Context, catalog querier, id uuid.UUID) (MoveRecord, error) {
	return oneMove(moveQuery(ctx, catalog, "SELECT "+moveColumns+" FROM tenant_moves m JOIN tenants t ON t.id = m.tenant WHERE m.id = $1", id))
}

// ListMoves reads up to limit moves after (afterCreatedAt, afterID), in
// creation order (keyset pagination; db.KeysetOrigin and uuid.Nil: from
// the first).
func ListMoves(ctx context.Context, catalog querier, afterCreatedAt time.Time, afterID uuid.UUID, limit int32) ([]MoveRecord, error) {
	return moveQuery(ctx, catalog, "SELECT "+moveColumns+` FROM tenant_moves m JOIN tenants t ON t.id = m.tenant
		WHERE (m.created_at, m.id) > ($1, $2) ORDER BY m.created_at, m.id LIMIT $3`, afterCreatedAt, afterID, limit)
}

// CancelMove asks a move to stop before its switch: a pending one is
// cancelled at once, a running one (copying, frozen) by its job, which
// undoes it (Move.Abort). Errors: db.ErrNotFound; db.ErrConflict once the
// move switched (the tenant is served from its new cell: it cannot be
// undone, only moved back) or ended.
func CancelMove(ctx context.Context, catalog querier, id uuid.UUID) (MoveRecord, error) {
	recs, err := moveQuery(ctx, catalog, `WITH m AS (UPDATE tenant_moves SET cancel_requested = true, updated_at = now(),
			state = CASE WHEN state = 'pending' THEN 'cancelled' ELSE state END,
			finished_at = CASE WHEN state = 'pending' THEN now() END
		WHERE id = $1 AND state IN ('pending', 'copying', 'frozen') RETURNING *)
		SELECT `+moveColumns+" FROM m JOIN tenants t ON t.id = m.tenant", id)
	if err != nil || len(recs) == 1 {
		return oneMove(recs, err)
	}
	rec, err := GetMove(ctx, catalog, id)
	if err != nil {
		return rec, err
	}
	if rec.State == StageSwitched || rec.State == StageDone {
		return rec, &db.Error{Code: db.ErrConflict, Message: "the move switched already: the tenant is served from " + rec.To + "; move it back instead"}
	}
	return rec, &db.Error{Code: db.ErrConflict, Message: "the move ended already (" + rec.State + ")"}
}

// SetMoveStage records that a running move reached stage (not an end).
func SetMoveStage(ctx context.Context, catalog querier, id uuid.UUID, stage string) error {
	_, err := moveQuery(ctx, catalog, `WITH m AS (UPDATE tenant_moves SET state = $2, updated_at = now()
		WHERE id = $1 AND state NOT IN ('done', 'failed', 'cancelled') RETURNING *)
		SELECT `+moveColumns+" FROM m JOIN tenants t ON t.id = m.tenant", id, stage)
	return err
}

// EndMove records a move's end: StageDone with its report, or
// StageFailed or StageCancelled with why.
func EndMove(ctx context.Context, catalog querier, id uuid.UUID, stage string, rep *MoveReport, why string) error {
	var rows []byte
	var copyMs, frozenMs *int64
	if rep != nil && rep.Rows != nil {
		rows, _ = json.Marshal(rep.Rows)
		c, f := rep.Copy.Milliseconds(), rep.Frozen.Milliseconds()
		copyMs, frozenMs = &c, &f
	}
	_, err := moveQuery(ctx, catalog, `WITH m AS (UPDATE tenant_moves SET state = $2, updated_at = now(), finished_at = now(),
			rows = coalesce($3, rows), copy_ms = coalesce($4, copy_ms), writes_frozen_ms = coalesce($5, writes_frozen_ms), error = $6
		WHERE id = $1 RETURNING *)
		SELECT `+moveColumns+" FROM m JOIN tenants t ON t.id = m.tenant", id, stage, rows, copyMs, frozenMs, why)
	return err
}

// Movers are the connections a move needs: each cell's migrating role,
// which must be a superuser (Move says why), by name, and their
// connection strings (the source's is the subscription's). Only the CLI
// (`tenant move`) and the move job hold them; never a request's path.
type Movers struct {
	pools map[string]*pgxpool.Pool
	urls  map[string]string
	// Settle is Move.Settle for the moves made here.
	Settle time.Duration
}

// OpenMovers makes a pool (at most 3 connections, connecting when first
// used) for each of urls (the default cell's among them).
func OpenMovers(urls []URL, settle time.Duration) (*Movers, error) {
	ms := &Movers{pools: map[string]*pgxpool.Pool{}, urls: map[string]string{}, Settle: settle}
	for _, u := range urls {
		cfg, err := pgxpool.ParseConfig(u.URL)
		if err != nil {
			ms.Close()
			return nil, fmt.Errorf("cell %s: %w", u.Name, err)
		}
		cfg.MaxConns = 3
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			ms.Close()
			return nil, fmt.Errorf("cell %s: %w", u.Name, err)
		}
		ms.pools[u.Name], ms.urls[u.Name] = p, u.URL
	}
	if _, ok := ms.pools[Default]; !ok {
		ms.Close()
		return nil, errors.New("movers: no default cell")
	}
	return ms, nil
}

// ErrNotSuperuser: a cell's migrating role is not a superuser, which a move
// needs (PostgreSQL 15: only a superuser owns a subscription that applies
// into tables with FORCE ROW LEVEL SECURITY; docs/SCALING.md).
var ErrNotSuperuser = errors.New("tenant moves need a superuser connection to every cell (DATABASE_URL and CELLS)")

// CheckSuperusers returns ErrNotSuperuser, naming the cell, unless every
// pool connects as a superuser.
func (ms *Movers) CheckSuperusers(ctx context.Context) error {
	for name, p := range ms.pools {
		var super bool
		if err := p.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
			return fmt.Errorf("cell %s: %w", name, err)
		}
		if !super {
			return fmt.Errorf("cell %s: %w", name, ErrNotSuperuser)
		}
	}
	return nil
}

// Catalog is the default cell's pool.
func (ms *Movers) Catalog() *pgxpool.Pool { return ms.pools[Default] }

// Reachable reports whether the movers can reach the cell named name.
func (ms *Movers) Reachable(name string) bool {
	_, ok := ms.pools[name]
	return ok
}

// Move is the move of tenant from one cell to another, ready to Run (or to
// Finish or Abort). Errors: a db.ErrInvalid on field "to" or "from" naming
// a cell the movers cannot reach.
func (ms *Movers) Move(tenant uuid.UUID, from, to string) (*Move, error) {
	for field, c := range map[string]string{"from": from, "to": to} {
		if !ms.Reachable(c) {
			return nil, &db.Error{Code: db.ErrInvalid, Field: field, Message: fmt.Sprintf("cell %q is not configured: add name=url to CELLS", c)}
		}
	}
	return &Move{Tenant: tenant, From: from, To: to, Catalog: ms.pools[Default], Source: ms.pools[from], Target: ms.pools[to],
		SourceConnString: ms.urls[from], Settle: ms.Settle}, nil
}

// Close closes the pools.
func (ms *Movers) Close() {
	for _, p := range ms.pools {
		p.Close()
	}
}
