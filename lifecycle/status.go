package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// ErrNotFound: no such tenant (a db.ErrNotFound).
var ErrNotFound = &db.Error{Code: db.ErrNotFound, Message: "no such tenant"}

// ErrDeleting: a tenant marked for deletion can only be reactivated first
// (suspending it would silently cancel the deletion). A db.ErrConflict.
var ErrDeleting = &db.Error{Code: db.ErrConflict, Message: "the tenant is being deleted; set its status to active first to cancel that"}

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
// TENANT_CACHE_TTL.
func SetStatus(ctx context.Context, pool dbsqlc.DBTX, id uuid.UUID, status dbtype.TenantStatus, grace time.Duration) (dbsqlc.Tenant, error) {
	if status == dbtype.TenantStatusSuspended {
		cur, err := db.Unscoped(pool).TenantGet(ctx, id)
		if err != nil {
			return dbsqlc.Tenant{}, notFound(err)
		}
		if cur.Status == dbtype.TenantStatusDeleting {
			return dbsqlc.Tenant{}, ErrDeleting
		}
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

// PurgeDue purges every tenant whose grace period is over and returns their
// slugs. serve's purge job does the same, one tenant per job.
func PurgeDue(ctx context.Context, pool dbsqlc.DBTX) ([]string, error) {
	var purged []string
	q := db.Unscoped(pool)
	for {
		due, err := q.TenantPurgeDue(ctx)
		if err != nil {
			return purged, err
		}
		if len(due) == 0 {
			return purged, nil
		}
		for _, t := range due {
			slug, ok, err := Purge(ctx, q, t.ID)
			if err != nil {
				return purged, err
			}
			if ok {
				purged = append(purged, slug)
			}
		}
	}
}
