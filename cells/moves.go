package cells

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
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
// (package jobs) and its queue; the trigger that enqueues it
// (tenant_moves_enqueue, 00022) names them too. Only an instance configured for moves
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

// record is a MoveGet or MovePage row as a MoveRecord.
func record(r dbsqlc.MoveGetRow) MoveRecord {
	m := MoveRecord{ID: r.ID, Tenant: r.Tenant, Slug: r.Slug, From: r.FromCell, To: r.ToCell, State: r.State,
		CancelRequested: r.CancelRequested, CopyMs: r.CopyMs, WritesFrozenMs: r.WritesFrozenMs, Error: r.Error,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt}
	if r.Rows != nil {
		_ = json.Unmarshal(r.Rows, &m.Rows) // the job wrote it from a map[string]int64
	}
	return m
}

// RequestMove records a move of tenant to the cell to and enqueues its job,
// in one transaction on catalog (the default cell, as rowfence_platform).
// reachable says which cells the movers can reach (nil: any). Errors:
// db.ErrNotFound (no such tenant); db.ErrInvalid on field "to" (not a
// registered cell, not reachable for moves, or where the tenant is
// already); db.ErrConflict (the tenant is being deleted, or a
// move of it is in progress: one at a time).
func RequestMove(ctx context.Context, catalog *pgxpool.Pool, tenant uuid.UUID, to string, reachable func(string) bool) (MoveRecord, error) {
	var rec MoveRecord
	// Its insert enqueues its job in the same transaction (the trigger
	// tenant_moves_enqueue, 00022): no record without a job.
	err := db.UnscopedTx(ctx, catalog, func(q *dbsqlc.Queries) error {
		t, err := q.MoveTenantForUpdate(ctx, tenant)
		if errors.Is(err, db.ErrNotFound) {
			return &db.Error{Code: db.ErrNotFound, Message: "no such tenant"}
		}
		if err != nil {
			return err
		}
		switch {
		// An archived tenant moves with its archive, as with the CLI
		// (Move.Run): its archive is rows of its own tables.
		case t.Status == dbtype.TenantStatusDeleting:
			return &db.Error{Code: db.ErrConflict, Message: "the tenant is being deleted: reactivate it before moving it"}
		case !ValidName(to):
			return &db.Error{Code: db.ErrInvalid, Field: "to", Message: "must be a cell's name: 2-32 characters of a-z, 0-9 and -, starting with a letter"}
		case to == t.Cell:
			return &db.Error{Code: db.ErrInvalid, Field: "to", Message: fmt.Sprintf("the tenant is in cell %s already", to)}
		}
		registered, err := q.MoveCellRegistered(ctx, to)
		if err != nil {
			return err
		}
		if !registered {
			return &db.Error{Code: db.ErrInvalid, Field: "to", Message: fmt.Sprintf("no cell %q is registered", to)}
		}
		for _, c := range []string{t.Cell, to} {
			if reachable != nil && !reachable(c) {
				return &db.Error{Code: db.ErrInvalid, Field: "to",
					Message: fmt.Sprintf("cell %q is not configured for moves on this instance (CELLS)", c)}
			}
		}
		id, err := q.MoveCreate(ctx, dbsqlc.MoveCreateParams{Tenant: tenant, FromCell: t.Cell, ToCell: to})
		if e, ok := errors.AsType[*db.Error](err); ok && e.Constraint == "tenant_moves_one_at_a_time" {
			return &db.Error{Code: db.ErrConflict, Message: "a move of this tenant is in progress: one at a time"}
		}
		if err != nil {
			return err
		}
		row, err := q.MoveGet(ctx, id)
		if err != nil {
			return err
		}
		rec = record(row)
		return nil
	})
	return rec, err
}

// GetMove reads one move's record. Errors: db.ErrNotFound.
func GetMove(ctx context.Context, catalog dbsqlc.DBTX, id uuid.UUID) (MoveRecord, error) {
	row, err := db.Unscoped(catalog).MoveGet(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		err = &db.Error{Code: db.ErrNotFound, Message: "no such move"}
	}
	return record(row), err
}

// ListMoves reads up to limit moves after (afterCreatedAt, afterID), in
// creation order (keyset pagination; db.KeysetOrigin and uuid.Nil: from
// the first).
func ListMoves(ctx context.Context, catalog dbsqlc.DBTX, afterCreatedAt time.Time, afterID uuid.UUID, limit int32) ([]MoveRecord, error) {
	rows, err := db.Unscoped(catalog).MovePage(ctx, dbsqlc.MovePageParams{AfterCreatedAt: afterCreatedAt, AfterID: afterID, RowLimit: limit})
	out := make([]MoveRecord, 0, len(rows))
	for _, r := range rows {
		out = append(out, record(dbsqlc.MoveGetRow(r)))
	}
	return out, err
}

// CancelMove asks a move to stop before its switch: a pending one is
// cancelled at once, a running one (copying, frozen) by its job, which
// undoes it (Move.Abort). Errors: db.ErrNotFound; db.ErrConflict once the
// move switched (the tenant is served from its new cell: it cannot be
// undone, only moved back) or ended.
func CancelMove(ctx context.Context, catalog dbsqlc.DBTX, id uuid.UUID) (MoveRecord, error) {
	n, err := db.Unscoped(catalog).MoveCancel(ctx, id)
	if err != nil {
		return MoveRecord{}, err
	}
	rec, err := GetMove(ctx, catalog, id)
	switch {
	case err != nil || n == 1:
		return rec, err
	case rec.State == StageSwitched || rec.State == StageDone:
		return rec, &db.Error{Code: db.ErrConflict, Message: "the move switched already: the tenant is served from " + rec.To + "; move it back instead"}
	}
	return rec, &db.Error{Code: db.ErrConflict, Message: "the move ended already (" + rec.State + ")"}
}

// SetMoveStage records that a running move reached stage (not an end).
func SetMoveStage(ctx context.Context, catalog dbsqlc.DBTX, id uuid.UUID, stage string) error {
	return db.Unscoped(catalog).MoveSetStage(ctx, dbsqlc.MoveSetStageParams{ID: id, State: stage})
}

// EndMove records a move's end: StageDone with its report, or
// StageFailed or StageCancelled with why.
func EndMove(ctx context.Context, catalog dbsqlc.DBTX, id uuid.UUID, stage string, rep *MoveReport, why string) error {
	p := dbsqlc.MoveEndParams{ID: id, State: stage, Error: why}
	if rep != nil && rep.Rows != nil {
		p.Rows, _ = json.Marshal(rep.Rows)
		c, f := rep.Copy.Milliseconds(), rep.Frozen.Milliseconds()
		p.CopyMs, p.WritesFrozenMs = &c, &f
	}
	return db.Unscoped(catalog).MoveEnd(ctx, p)
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
