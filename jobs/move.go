package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
)

// MoveArgs runs one recorded tenant move (cells.RequestMove enqueues it
// with its record, POST /v1/admin/tenants/{id}/move).
type MoveArgs struct {
	MoveID uuid.UUID `json:"move_id"`
}

func (MoveArgs) Kind() string { return cells.MoveJobKind }

// errMoveCancelled is the cause of a move's context ending because its
// record asks for a cancel.
var errMoveCancelled = errors.New("cancelled on request")

// cancelPoll is how often a running move looks at its record for a cancel.
const cancelPoll = 100 * time.Millisecond

type moveWorker struct {
	river.WorkerDefaults[MoveArgs]
	// pool is the catalog as rowfence_platform (the records); movers the
	// cells as superusers (the move itself).
	pool   *pgxpool.Pool
	movers *cells.Movers
	log    *slog.Logger
}

// Timeout: a move takes as long as its copy; its own steps are bounded.
func (w *moveWorker) Timeout(*river.Job[MoveArgs]) time.Duration { return -1 }

// Work runs the move once. A later attempt (the process stopped or
// crashed under the first, or its cleanup failed) never starts the move
// again: it reads the catalog's placement, which the switch alone changes,
// and finishes a move that switched (Move.Finish: done) or undoes one that
// did not (Move.Abort: failed, saying it was interrupted). Both are
// idempotent, so at every step the tenant is served from exactly one cell
// (TestMoveJobSurvivesARestart).
func (w *moveWorker) Work(ctx context.Context, job *river.Job[MoveArgs]) error {
	rec, err := cells.GetMove(ctx, w.pool, job.Args.MoveID)
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(err) // its tenant was deleted, and the record with it
	}
	if err != nil || rec.Ended() {
		return err
	}
	m, err := w.movers.Move(rec.Tenant, rec.From, rec.To)
	if err != nil {
		w.end(ctx, rec, cells.StageFailed, nil, err.Error())
		return river.JobCancel(err)
	}
	if job.Attempt > 1 || rec.State != cells.StagePending {
		return w.recover(ctx, rec, m)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go w.watchCancel(runCtx, cancel, rec.ID)
	m.Stage = func(stage string) {
		if err := cells.SetMoveStage(context.WithoutCancel(ctx), w.pool, rec.ID, stage); err != nil {
			w.log.Warn("tenant move: recording its stage", "move", rec.ID, "stage", stage, "error", err)
		}
	}
	if err := cells.SetMoveStage(ctx, w.pool, rec.ID, cells.StageCopying); err != nil {
		return err
	}
	rep, err := m.Run(runCtx)
	switch {
	case err == nil:
		w.log.Info("tenant moved", "tenant", rec.Slug, "from", rec.From, "to", rec.To, "rows", rep.Rows,
			"copy_ms", rep.Copy.Milliseconds(), "writes_frozen_ms", rep.Frozen.Milliseconds())
		return w.end(ctx, rec, cells.StageDone, &rep, "")
	case ctx.Err() != nil:
		// The process is stopping: the next attempt finishes or undoes it.
		return err
	}
	placed, perr := m.Placement(context.WithoutCancel(ctx))
	if perr != nil {
		return errors.Join(err, perr) // retried: the next attempt recovers it
	}
	if placed == rec.To {
		// Switched, its cleanup failed: the next attempt finishes it.
		return err
	}
	if errors.Is(context.Cause(runCtx), errMoveCancelled) {
		return w.end(ctx, rec, cells.StageCancelled, nil, "cancelled on request before the switch; undone")
	}
	// Run undid it; a failed move is not retried on its own (ask again).
	return w.end(ctx, rec, cells.StageFailed, nil, err.Error())
}

// recover finishes or undoes an interrupted move by the catalog's word.
func (w *moveWorker) recover(ctx context.Context, rec cells.MoveRecord, m *cells.Move) error {
	placed, err := m.Placement(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	if placed == rec.To {
		if err := cells.SetMoveStage(ctx, w.pool, rec.ID, cells.StageSwitched); err != nil {
			return err
		}
		if err := m.Finish(ctx); err != nil {
			return fmt.Errorf("tenant move: finishing an interrupted move: %w", err)
		}
		w.log.Info("tenant move finished after an interruption", "tenant", rec.Slug, "to", rec.To)
		return w.end(ctx, rec, cells.StageDone, nil, "")
	}
	if err := m.Abort(ctx); err != nil {
		return fmt.Errorf("tenant move: undoing an interrupted move: %w", err)
	}
	w.log.Info("tenant move undone after an interruption", "tenant", rec.Slug, "from", rec.From)
	if rec.CancelRequested {
		return w.end(ctx, rec, cells.StageCancelled, nil, "cancelled on request before the switch; undone")
	}
	return w.end(ctx, rec, cells.StageFailed, nil, "interrupted (the process running it stopped) before the switch; undone: the tenant stays in "+rec.From)
}

// watchCancel cancels ctx when the move's record asks for it.
func (w *moveWorker) watchCancel(ctx context.Context, cancel context.CancelCauseFunc, id uuid.UUID) {
	t := time.NewTicker(cancelPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rec, err := cells.GetMove(ctx, w.pool, id)
		if err == nil && rec.CancelRequested {
			cancel(errMoveCancelled)
			return
		}
	}
}

func (w *moveWorker) end(ctx context.Context, rec cells.MoveRecord, stage string, rep *cells.MoveReport, why string) error {
	// Recorded even when the job's context is over.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return cells.EndMove(ectx, w.pool, rec.ID, stage, rep, why)
}
