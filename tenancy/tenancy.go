// Package tenancy says what a tenant identifier is (a slug or a tenant UUID)
// and resolves one through the database's tenant_lookup function, the app
// role's only, deliberate, view of the tenant registry. Which tenant a
// request is for is decided by its credential (package auth); the tenant a
// request names must match it (httpapi/tenant.go).
package tenancy

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db/dbtype"
)

// Tenant is the tenant a request runs for.
type Tenant struct {
	ID     uuid.UUID
	Slug   string
	Status dbtype.TenantStatus
	// Limits overrides the server's defaults for this tenant.
	Limits Limits
	// Cell names the cell (a PostgreSQL database, package cells) that holds
	// the tenant's rows, from the catalog's placement (tenants.cell). Empty
	// means the default cell, so a single-database deployment's tenant is
	// what it always was.
	Cell string
}

// DefaultCell is the catalog's name for the default cell: the database
// DATABASE_URL names, which also holds the catalog
// (sql/migrations/00021_cells.sql).
const DefaultCell = "default"

// Limits are a tenant's overrides of the server's limits; a zero field means
// "the server's default" (the tenants table stores NULL).
type Limits struct {
	RatePerSecond    float64       // requests per second, refilling the bucket
	Burst            int           // bucket size
	MaxConcurrency   int           // requests of the tenant doing database work at once
	StatementTimeout time.Duration // statement_timeout of the tenant's SQL
}

var (
	// ErrMalformed: the value is neither a tenant slug nor a tenant UUID.
	ErrMalformed = errors.New("X-Tenant-ID must be a tenant slug or a tenant UUID")
	// ErrUnknown: no tenant has that slug or id.
	ErrUnknown = errors.New("tenant not found")
)

// ValidSlug reports whether s is a well-formed tenant slug: the format the
// tenants table enforces (tenants_slug_format),
// ^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$ (3 to 63 bytes; lower-case letters,
// digits and inner hyphens). Checked byte by byte: it runs on every request
// that names its tenant, where the regular expression cost a
// microsecond (FuzzValidSlug holds the two equal).
func ValidSlug(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Key names a tenant by id or by slug; exactly one is set.
type Key struct {
	ID   uuid.UUID
	Slug string
}

func (k Key) String() string {
	if k.Slug != "" {
		return k.Slug
	}
	return k.ID.String()
}

// ParseKey reads a tenant identifier: a slug, or a UUID in its canonical
// 36-character form (either case). Anything else is ErrMalformed.
func ParseKey(raw string) (Key, error) {
	if len(raw) == 36 && strings.Count(raw, "-") == 4 {
		id, err := uuid.Parse(raw)
		if err != nil || id == uuid.Nil {
			return Key{}, ErrMalformed
		}
		return Key{ID: id}, nil
	}
	if !ValidSlug(raw) {
		return Key{}, ErrMalformed
	}
	return Key{Slug: raw}, nil
}

type ctxKey struct{}

// WithTenant returns ctx carrying t.
func WithTenant(ctx context.Context, t Tenant) context.Context {
	return WithTenantRef(ctx, &t)
}

// WithTenantRef returns ctx carrying *t, which must not change afterwards.
// For a caller that keeps the tenant anyway (the API's per-request
// record): no copy of it, one allocation less than WithTenant.
func WithTenantRef(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// FromContext returns the request's tenant; ok is false outside a tenant.
func FromContext(ctx context.Context) (t Tenant, ok bool) {
	if ref, _ := ctx.Value(ctxKey{}).(*Tenant); ref != nil {
		return *ref, true
	}
	return Tenant{}, false
}
