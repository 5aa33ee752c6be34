package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/tenancy"
)

// Statuses a tenant can have (tenants.status).
const (
	StatusActive    = tenancy.StatusActive
	StatusSuspended = tenancy.StatusSuspended
	// StatusDeleting: marked for deletion; its requests are refused, its
	// data kept until purge_after, when PurgeDue deletes it. Setting the
	// status back to active before then cancels the deletion.
	StatusDeleting = "deleting"
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

// SetStatus suspends (StatusSuspended), reactivates (StatusActive) or marks
// a tenant for deletion after grace (StatusDeleting). Running servers apply
// it within TENANT_CACHE_TTL.
func SetStatus(ctx context.Context, pool db.DBTX, id uuid.UUID, status string, grace time.Duration) (db.Tenant, error) {
	if status == StatusSuspended {
		cur, err := db.Unscoped(pool).TenantGet(ctx, id)
		if err != nil {
			return db.Tenant{}, notFound(err)
		}
		if cur.Status == StatusDeleting {
			return db.Tenant{}, ErrDeleting
		}
	}
	p := db.TenantUpdateParams{ID: id, Status: &status}
	if status == StatusDeleting {
		at := time.Now().Add(grace)
		p.PurgeAfter = &at
	}
	t, err := db.Unscoped(pool).TenantUpdate(ctx, p)
	return t, notFound(err)
}

// Delete deletes a tenant now, and with it every row it owns in every tenant
// table (their foreign keys to tenants cascade). Other tenants' rows are
// not touched: TestDeleteRemovesOnlyThatTenant counts every table.
func Delete(ctx context.Context, pool db.DBTX, id uuid.UUID) error {
	_, err := db.Unscoped(pool).TenantDelete(ctx, id)
	return notFound(err)
}

// PurgeDue deletes every tenant whose grace period is over and returns
// their slugs. It is the deletion job; serve runs it periodically.
func PurgeDue(ctx context.Context, pool db.DBTX) ([]string, error) {
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
			if err := Delete(ctx, pool, t.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return purged, err
			}
			purged = append(purged, t.Slug)
		}
	}
}
