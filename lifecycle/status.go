package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/tenancy"
)

// ErrNotFound: no such tenant (a db.ErrNotFound).
var ErrNotFound = &db.Error{Code: db.ErrNotFound, Message: "no such tenant"}

// ErrDeleting: a tenant marked for deletion can only be reactivated first
// (suspending it would silently cancel the deletion). A db.ErrConflict.
var ErrDeleting = &db.Error{Code: db.ErrConflict, Message: "the tenant is being deleted; set its status to active first to cancel that"}

// ErrArchived: an archived tenant's rows are in its archive, so its status
// changes only by Restore (or it is deleted now, with Delete). Made active
// or suspended, it would be served empty, Restore would refuse it, and a
// second Archive would replace its archive with its empty live tables. A
// db.ErrConflict.
var ErrArchived = &db.Error{Code: db.ErrConflict, Message: "the tenant is archived: restore it first (rowfence tenant restore), or delete it now"}

// notFound says ErrNotFound for a tenant that was not found.
func notFound(err error) error {
	if errors.Is(err, db.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// SetStatus suspends (dbtype.TenantStatusSuspended), reactivates
// (dbtype.TenantStatusActive) or marks a tenant for deletion after grace
// (dbtype.TenantStatusDeleting). Running servers apply it within
// TENANT_CACHE_TTL. Errors: ErrNotFound, ErrDeleting, ErrArchived.
func SetStatus(ctx context.Context, pool dbsqlc.DBTX, id uuid.UUID, status dbtype.TenantStatus, grace time.Duration) (dbsqlc.Tenant, error) {
	cur, err := db.Unscoped(pool).TenantGet(ctx, id)
	if err != nil {
		return dbsqlc.Tenant{}, notFound(err)
	}
	switch {
	case cur.Status == dbtype.TenantStatusArchived:
		return dbsqlc.Tenant{}, ErrArchived
	case cur.Status == dbtype.TenantStatusDeleting && status == dbtype.TenantStatusSuspended:
		return dbsqlc.Tenant{}, ErrDeleting
	}
	// The parameter is text (queries/platform.sql says why).
	p := dbsqlc.TenantUpdateParams{ID: id, Status: (*string)(&status)}
	if status == dbtype.TenantStatusDeleting {
		at := time.Now().Add(grace)
		p.PurgeAfter = &at
	}
	t, err := db.Unscoped(pool).TenantUpdate(ctx, p)
	return t, notFound(err)
}

// Delete deletes a tenant now, and with it every row it owns in every tenant
// table (their foreign keys to tenants cascade). Other tenants' rows are
// not touched: TestDeleteRemovesOnlyThatTenant counts every table.
func Delete(ctx context.Context, pool dbsqlc.DBTX, id uuid.UUID) error {
	_, err := db.Unscoped(pool).TenantDelete(ctx, id)
	return notFound(err)
}

// Purge deletes tenant id, as Delete does, if it is marked for deletion and
// its grace period is over, and returns its slug; purged is false (and err
// nil) when it is not due or already gone. The check is part of the DELETE
// statement (queries/platform.sql, TenantPurge), so a tenant reactivated
// while the purge runs is never deleted. q is any tenant's or no tenant's
// queries: the tenants registry has no tenant policy. Both the CLI's
// `tenant purge` (PurgeDue) and the purge job (package jobs) delete through it.
func Purge(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID) (slug string, purged bool, err error) {
	slug, err = q.TenantPurge(ctx, id)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return slug, true, nil
}

// InCell deletes tenant id's copy in the cell named cell (never the
// default one) and, through its foreign keys, every row it owns there. A
// tenant already gone from the cell is not an error.
type InCell func(ctx context.Context, cell string, id uuid.UUID) error

// PurgeInCells is Purge for a tenant in any cell: q is a transaction on the
// catalog (the default cell). The catalog's row is deleted first, which
// locks it: a reactivation waits and then finds no tenant; then inCell
// deletes the tenant's rows in its cell. If that fails, err says so and the
// caller rolls q back: the tenant stays due, for the next purge. Without
// this, a purge deleted the catalog's row only and left the tenant's rows
// in its cell for ever (TestTenantCommandsInAnotherCell, TestPurgeJobInAnotherCell).
func PurgeInCells(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID, inCell InCell) (slug string, purged bool, err error) {
	t, err := q.TenantGet(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if slug, purged, err = Purge(ctx, q, id); err != nil || !purged || t.Cell == tenancy.DefaultCell || t.Cell == "" {
		return slug, purged, err
	}
	if inCell == nil {
		return "", false, fmt.Errorf("tenant %s is in cell %q, which this purge cannot reach", t.Slug, t.Cell)
	}
	if err := inCell(ctx, t.Cell, id); err != nil && !errors.Is(err, db.ErrNotFound) {
		return "", false, fmt.Errorf("tenant %s in cell %q: %w", t.Slug, t.Cell, err)
	}
	return slug, true, nil
}

// PurgeDue purges every tenant whose grace period is over, each in its own
// catalog transaction with PurgeInCells, and returns their slugs. pool is
// the catalog's (the default cell's). serve's purge job does the same, one
// tenant per job.
func PurgeDue(ctx context.Context, pool *pgxpool.Pool, inCell InCell) ([]string, error) {
	var purged []string
	for {
		due, err := db.Unscoped(pool).TenantPurgeDue(ctx)
		if err != nil {
			return purged, err
		}
		if len(due) == 0 {
			return purged, nil
		}
		for _, t := range due {
			var slug string
			var ok bool
			err := db.UnscopedTx(ctx, pool, func(q *dbsqlc.Queries) (err error) {
				slug, ok, err = PurgeInCells(ctx, q, t.ID, inCell)
				return err
			})
			if err != nil {
				return purged, err
			}
			if ok {
				purged = append(purged, slug)
			}
		}
	}
}
