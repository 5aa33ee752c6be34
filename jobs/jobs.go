// Package jobs runs rowfence's background work on River: tenant exports
// requested through the API, and the purge of tenants whose deletion grace
// period is over. Every job carries its tenant in its arguments and does its
// work under that tenant's setting (db.Scope), like a request; a job without
// a tenant fails closed (it is cancelled, and nothing is read or written).
//
// Jobs run as rowfence_platform, the only role with access to River's schema
// (sql/migrations/00007_jobs.sql): no tenant request can reach River's tables.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/jobs/riverschema"
	"github.com/rowfence/rowfence/lifecycle"
)

// ErrNoTenant: a job's arguments name no tenant. The job is cancelled.
var ErrNoTenant = errors.New("jobs: a job without a tenant is refused")

// ExportArgs is a tenant export, enqueued by the exports table's trigger
// when a tenant's admin requests one.
type ExportArgs struct {
	TenantID uuid.UUID `json:"tenant_id"`
	ExportID uuid.UUID `json:"export_id"`
}

func (ExportArgs) Kind() string { return "tenant_export" }

// PurgeArgs deletes one tenant whose grace period is over.
type PurgeArgs struct {
	TenantID uuid.UUID `json:"tenant_id"`
}

func (PurgeArgs) Kind() string { return "tenant_purge" }

// purgeScanArgs is the periodic job that finds tenants due for deletion and
// enqueues one PurgeArgs job each.
type purgeScanArgs struct{}

func (purgeScanArgs) Kind() string { return "tenant_purge_scan" }

// Config configures the job runner.
type Config struct {
	// Pool connects as rowfence_platform.
	Pool *pgxpool.Pool
	// PurgeEvery is how often tenants due for deletion are looked for
	// (0: never; the CLI's `tenant purge` still works).
	PurgeEvery time.Duration
	// Purged, if set, is told each tenant the purge deleted.
	Purged func(id uuid.UUID)
	// InCell deletes a purged tenant's rows in its cell when that is not
	// the default one (package cells); nil: such a tenant's purge fails and
	// is retried, rather than deleting its catalog row only and leaving its
	// rows in its cell for ever.
	InCell lifecycle.InCell
	Log    *slog.Logger
	// PollEvery is how often workers look for new jobs (default 500ms).
	PollEvery time.Duration
	// ExportMaxBytes bounds the bytes of a tenant's kept exports together
	// (EXPORT_MAX_BYTES; 0: no bound): an export that outgrows what the
	// others leave fails.
	ExportMaxBytes int64
	// ExportCleanupEvery is how often expired exports are deleted (default
	// an hour).
	ExportCleanupEvery time.Duration
	// Movers, when set (TENANT_MOVES; the default cell's runner only), run
	// the tenant moves recorded through /v1/admin: this runner works the
	// cells.MoveQueue queue, one move at a time. Unset, moves stay queued
	// for an instance that has them.
	Movers *cells.Movers
}

// maxWorkers is how many jobs run at once per instance (and per cell).
const maxWorkers = 2

// Runner is a running River client.
type Runner struct {
	client *river.Client[pgx.Tx]
}

// Start starts the workers; Stop them when done.
func Start(ctx context.Context, cfg Config) (*Runner, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 500 * time.Millisecond
	}
	// An export job holds two connections at once (lifecycle.WriteExport):
	// with fewer than two per worker, two exports at once each hold one and
	// wait for another until the job timeout (TestTwoExportsAtOnceNeedFourConnections).
	if cfg.Pool == nil {
		return nil, errors.New("jobs: no pool")
	}
	if need := int32(2 * maxWorkers); cfg.Pool.Config().MaxConns < need {
		return nil, fmt.Errorf("jobs: the pool has %d connections; its %d workers need %d connections (an export job holds two)",
			cfg.Pool.Config().MaxConns, maxWorkers, need)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &exportWorker{pool: cfg.Pool, log: cfg.Log, maxBytes: cfg.ExportMaxBytes})
	river.AddWorker(workers, &exportCleanupWorker{pool: cfg.Pool})
	river.AddWorker(workers, &purgeWorker{pool: cfg.Pool, log: cfg.Log, purged: cfg.Purged, inCell: cfg.InCell})
	river.AddWorker(workers, &purgeScanWorker{pool: cfg.Pool})
	river.AddWorker(workers, &idempotencyCleanupWorker{pool: cfg.Pool})
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}}
	if cfg.Movers != nil {
		river.AddWorker(workers, &moveWorker{pool: cfg.Pool, movers: cfg.Movers, log: cfg.Log})
		queues[cells.MoveQueue] = river.QueueConfig{MaxWorkers: 1}
	}
	rc := &river.Config{
		Schema:            riverschema.Schema,
		Queues:            queues,
		Workers:           workers,
		Logger:            cfg.Log,
		FetchPollInterval: cfg.PollEvery,
		FetchCooldown:     min(cfg.PollEvery, 100*time.Millisecond),
		// An export of a large tenant takes a while; River's default is 1m.
		JobTimeout: 30 * time.Minute,
		// Listen to nothing. Any role may NOTIFY any channel of the
		// database (no privilege governs it), and River's notifier obeys
		// "pause" and "cancel" on river.river_control from whoever sends
		// them: the app role could stall every tenant's jobs and cancel
		// another tenant's export. Polling reads only River's tables, which
		// the app role cannot reach. New jobs wait at most PollEvery,
		// cancellations and pauses made through River at most 2s
		// (docs/SECURITY.md, "Beyond the transaction"). It also works
		// behind a transaction pooler, where a LISTEN would end with its
		// transaction.
		PollOnly: true,
	}
	// Hourly, every tenant's expired idempotency keys go (under its setting).
	rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return idempotencyCleanupArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	if cfg.ExportCleanupEvery <= 0 {
		cfg.ExportCleanupEvery = time.Hour
	}
	rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.ExportCleanupEvery),
		func() (river.JobArgs, *river.InsertOpts) { return exportCleanupArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	if cfg.PurgeEvery > 0 {
		rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.PurgeEvery),
			func() (river.JobArgs, *river.InsertOpts) { return purgeScanArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), rc)
	if err != nil {
		return nil, err
	}
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return &Runner{client: client}, nil
}

// Stop lets running jobs finish (until ctx ends) and stops the workers.
func (r *Runner) Stop(ctx context.Context) error { return r.client.Stop(ctx) }

// StopAndCancel cancels the running jobs' contexts and stops the workers
// (a process going away under its jobs).
func (r *Runner) StopAndCancel(ctx context.Context) error { return r.client.StopAndCancel(ctx) }

func scope(tenant uuid.UUID) db.Scope { return db.Scope{TenantID: tenant, Role: dbtype.RoleAdmin} }

type exportWorker struct {
	river.WorkerDefaults[ExportArgs]
	pool     *pgxpool.Pool
	log      *slog.Logger
	maxBytes int64
}

func (w *exportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	a := job.Args
	if a.TenantID == uuid.Nil || a.ExportID == uuid.Nil {
		return river.JobCancel(ErrNoTenant)
	}
	// Under the job's tenant: an export id of another tenant is not found.
	_, err := db.One(ctx, w.pool, scope(a.TenantID), func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ExportStart(ctx, a.ExportID) })
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("tenant %s has no pending export %s", a.TenantID, a.ExportID))
	}
	if err != nil {
		return err
	}
	t, err := db.Unscoped(w.pool).TenantGet(ctx, a.TenantID)
	if err != nil {
		return w.fail(ctx, job, err)
	}
	// What the tenant's other kept exports leave of its quota.
	var limit int64
	if w.maxBytes > 0 {
		usage, err := db.One(ctx, w.pool, scope(a.TenantID), func(q *dbsqlc.Queries) (dbsqlc.ExportUsageRow, error) { return q.ExportUsage(ctx) })
		if err != nil {
			return w.fail(ctx, job, err)
		}
		if limit = w.maxBytes - usage.Bytes; limit <= 0 {
			return w.fail(ctx, job, river.JobCancel(lifecycle.ErrExportQuota))
		}
	}
	// Streams: the chunks and the done status commit together.
	written, err := lifecycle.WriteExport(ctx, w.pool, t, a.ExportID, limit)
	if errors.Is(err, lifecycle.ErrExportQuota) {
		return w.fail(ctx, job, river.JobCancel(err)) // a retry would outgrow it again
	}
	if err != nil {
		return w.fail(ctx, job, err)
	}
	w.log.Info("tenant export written", "tenant", t.Slug, "export", a.ExportID, "bytes", written.Bytes, "chunks", written.Chunks)
	return nil
}

// fail records the error on the export (failed for good after the last
// attempt, or when River cancelled the job: it is not retried then) and
// returns it, so River retries while attempts remain.
func (w *exportWorker) fail(ctx context.Context, job *river.Job[ExportArgs], cause error) error {
	status := dbtype.ExportStatusPending
	if job.Attempt >= job.MaxAttempts {
		status = dbtype.ExportStatusFailed
	}
	var cancelled *river.JobCancelError
	if errors.As(cause, &cancelled) {
		status = dbtype.ExportStatusFailed
	}
	if errors.Is(context.Cause(ctx), river.ErrJobCancelledRemotely) {
		status, cause = dbtype.ExportStatusFailed, fmt.Errorf("export cancelled: %w", cause)
	}
	// Recorded even when the job's own context is over (its timeout): an
	// export must never stay running with no job behind it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = db.One(fctx, w.pool, scope(job.Args.TenantID), func(q *dbsqlc.Queries) (struct{}, error) {
		return struct{}{}, q.ExportFail(fctx, dbsqlc.ExportFailParams{ID: job.Args.ExportID, Status: status, Error: cause.Error()})
	})
	return cause
}

type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	pool   *pgxpool.Pool
	log    *slog.Logger
	purged func(uuid.UUID)
	inCell lifecycle.InCell
}

func (w *purgeWorker) Work(ctx context.Context, job *river.Job[PurgeArgs]) error {
	id := job.Args.TenantID
	if id == uuid.Nil {
		return river.JobCancel(ErrNoTenant)
	}
	// Under the tenant's setting, like every job; lifecycle.Purge re-checks
	// in its DELETE that the tenant is still due (it may have been
	// reactivated, or given more time, since it was queued).
	type result struct {
		slug   string
		purged bool
	}
	// One transaction: the catalog's row is deleted (and locked) first, and
	// restored by the rollback if the tenant's cell cannot be emptied.
	var res result
	err := db.Tx(ctx, w.pool, scope(id), func(q *dbsqlc.Queries) (err error) {
		res.slug, res.purged, err = lifecycle.PurgeInCells(ctx, q, id, w.inCell)
		return err
	})
	if err != nil {
		return err
	}
	if res.purged {
		w.log.Info("tenant purged: its grace period was over", "tenant", res.slug)
		if w.purged != nil {
			w.purged(id)
		}
	}
	return nil
}

type purgeScanWorker struct {
	river.WorkerDefaults[purgeScanArgs]
	pool *pgxpool.Pool
}

func (w *purgeScanWorker) Work(ctx context.Context, job *river.Job[purgeScanArgs]) error {
	due, err := db.Unscoped(w.pool).TenantPurgeDue(ctx)
	if err != nil {
		return err
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	for _, t := range due {
		_, err := client.Insert(ctx, PurgeArgs{TenantID: t.ID}, &river.InsertOpts{
			UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Minute}})
		if err != nil {
			return err
		}
	}
	return nil
}

// idempotencyCleanupArgs deletes expired idempotency keys, visiting each
// tenant under its own setting.
type idempotencyCleanupArgs struct{}

func (idempotencyCleanupArgs) Kind() string { return "idempotency_cleanup" }

type idempotencyCleanupWorker struct {
	river.WorkerDefaults[idempotencyCleanupArgs]
	pool *pgxpool.Pool
}

func (w *idempotencyCleanupWorker) Work(ctx context.Context, job *river.Job[idempotencyCleanupArgs]) error {
	after := uuid.Nil
	for {
		ids, err := db.Unscoped(w.pool).TenantIDs(ctx, after)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := db.One(ctx, w.pool, scope(id), func(q *dbsqlc.Queries) (int64, error) {
				return q.IdempotencyDeleteAllExpired(ctx)
			}); err != nil {
				return err
			}
		}
		if len(ids) < 1000 {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// exportCleanupArgs deletes expired exports (EXPORT_RETENTION, and those
// DELETE /v1/exports/{id} ended), visiting each tenant under its own
// setting, or only TenantID's: the exports trigger enqueues that one when a
// request deletes an export (00024).
type exportCleanupArgs struct {
	TenantID uuid.UUID `json:"tenant_id"`
}

func (exportCleanupArgs) Kind() string { return "export_cleanup" }

type exportCleanupWorker struct {
	river.WorkerDefaults[exportCleanupArgs]
	pool *pgxpool.Pool
}

func (w *exportCleanupWorker) Work(ctx context.Context, job *river.Job[exportCleanupArgs]) error {
	if job.Args.TenantID != uuid.Nil {
		return deleteExpiredExportsOf(ctx, w.pool, job.Args.TenantID)
	}
	return DeleteExpiredExports(ctx, w.pool)
}

// cleanupChunks is how many chunks (of at most 1 MiB) one transaction of the
// cleanup deletes: a tenant's export of any size goes in transactions of
// bounded size and length.
const cleanupChunks = 64

// deleteExpiredExportsOf deletes the tenant's expired exports under its own
// setting (leak vector 10): their chunks cleanupChunks at a time, each batch
// its own transaction, and, in the batch that finds fewer, the exports. A
// tenant with nothing expired costs one transaction.
func deleteExpiredExportsOf(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) error {
	for {
		var n int64
		err := db.Tx(ctx, pool, scope(tenant), func(q *dbsqlc.Queries) error {
			var err error
			if n, err = q.ExportChunksDeleteExpired(ctx, cleanupChunks); err != nil || n == cleanupChunks {
				return err
			}
			_, err = q.ExportDeleteExpired(ctx)
			return err
		})
		if err != nil || n < cleanupChunks {
			return err
		}
	}
}

// DeleteExpiredExports deletes every tenant's expired exports, each tenant
// under its own setting (deleteExpiredExportsOf). The periodic cleanup job
// runs it.
func DeleteExpiredExports(ctx context.Context, pool *pgxpool.Pool) error {
	after := uuid.Nil
	for {
		ids, err := db.Unscoped(pool).TenantIDs(ctx, after)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := deleteExpiredExportsOf(ctx, pool, id); err != nil {
				return err
			}
		}
		if len(ids) < 1000 {
			return nil
		}
		after = ids[len(ids)-1]
	}
}
