package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/db"
)

// ErrNotFound: no such tenant.
var ErrNotFound = errors.New("no such tenant")

// ErrDeleting: a tenant marked for deletion can only be reactivated first
// (suspending it would silently cancel the deletion).
var ErrDeleting = errors.New("the tenant is being deleted; activate it first to cancel that")

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return db.MapError(err)
}

// SetStatus suspends (db.TenantStatusSuspended), reactivates
// (db.TenantStatusActive) or marks a tenant for deletion after grace
// (db.TenantStatusDeleting). Running servers apply it within
// TENANT_CACHE_TTL.
func SetStatus(ctx context.Context, pool db.DBTX, id uuid.UUID, status db.TenantStatus, grace time.Duration) (db.Tenant, error) {
	if status == db.TenantStatusSuspended {
		cur, err := db.New(pool).TenantGet(ctx, id)
		if err != nil {
			return db.Tenant{}, notFound(err)
		}
		if cur.Status == db.TenantStatusDeleting {
			return db.Tenant{}, ErrDeleting
		}
	}
	// The parameter is text (queries/platform.sql says why).
	p := db.TenantUpdateParams{ID: id, Status: (*string)(&status)}
	if status == db.TenantStatusDeleting {
		at := time.Now().Add(grace)
		p.PurgeAfter = &at
	}
	t, err := db.New(pool).TenantUpdate(ctx, p)
	return t, notFound(err)
}

// Delete deletes a tenant now, and with it every row it owns in every tenant
// table (their foreign keys to tenants cascade). Other tenants' rows are
// not touched: TestDeleteRemovesOnlyThatTenant counts every table.
func Delete(ctx context.Context, pool db.DBTX, id uuid.UUID) error {
	_, err := db.New(pool).TenantDelete(ctx, id)
	return notFound(err)
}

// PurgeDue deletes every tenant whose grace period is over and returns
// their slugs. It is the deletion job; serve runs it periodically.
func PurgeDue(ctx context.Context, pool db.DBTX) ([]string, error) {
	var purged []string
	for {
		due, err := db.New(pool).TenantPurgeDue(ctx)
		if err != nil {
			return purged, db.MapError(err)
		}
		if len(due) == 0 {
			return purged, nil
		}
		for _, t := range due {
			if err := Delete(ctx, pool, t.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return purged, err
			}
			purged = append(purged, t.Slug)
		}
	}
}
