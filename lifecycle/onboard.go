// Package lifecycle creates and administers whole tenants: the work that
// sees across tenants and so never runs as the app role on a request's path.
// Each operation is one transaction.
package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/tenancy"
	"github.com/rowfence/rowfence/textrule"
)

// Tenant is a new tenant's description.
type Tenant struct {
	Slug, Name string
	// AdminEmail and AdminName describe the first admin user.
	AdminEmail, AdminName string
}

// Onboarded is what Onboard created. Key is the admin's API key, which is
// stored only as a hash: show it once.
type Onboarded struct {
	Tenant db.Tenant
	Admin  db.User
	KeyRow db.APIKey
	Key    string
}

// ErrInvalid: a value is refused by the input rules (textrule): nothing
// was written.
var ErrInvalid = errors.New("invalid value")

// ErrSlugTaken: another tenant has the slug.
var ErrSlugTaken = errors.New("a tenant with this slug already exists")

// Onboard creates a tenant, its first admin user and that user's first API
// key in one transaction: all three or nothing. pool connects as the
// migrating role (the registry is not the app role's to write); the user and
// key are written under the new tenant's setting and the admin role, as the
// API would, so the policies check them too.
func Onboard(ctx context.Context, pool *pgxpool.Pool, in Tenant) (Onboarded, error) {
	if !tenancy.ValidSlug(in.Slug) {
		return Onboarded{}, fmt.Errorf("%w: slug %q: 3-63 characters of a-z, 0-9 and -, starting and ending with a letter or digit", ErrInvalid, in.Slug)
	}
	if in.AdminName == "" {
		in.AdminName = "Admin"
	}
	for _, f := range []struct {
		what, value string
		rules       textrule.Field
	}{{"name", in.Name, textrule.TenantName}, {"admin email", in.AdminEmail, textrule.UserEmail}, {"admin name", in.AdminName, textrule.UserName}} {
		if err := f.rules.Check(f.value); err != nil {
			return Onboarded{}, fmt.Errorf("%w: the %s %v", ErrInvalid, f.what, err)
		}
	}
	var out Onboarded
	id := uuid.New()
	err := db.Tx(ctx, pool, db.Scope{TenantID: id, Role: db.RoleAdmin}, func(q *db.Queries) error {
		var err error
		if out.Tenant, err = q.TenantCreate(ctx, db.TenantCreateParams{ID: id, Slug: in.Slug, Name: in.Name}); err != nil {
			return err
		}
		if out.Admin, err = q.UserCreate(ctx, db.UserCreateParams{Name: in.AdminName, Email: in.AdminEmail, Role: db.RoleAdmin}); err != nil {
			return err
		}
		out.KeyRow, out.Key, err = auth.IssueKey(ctx, q, id, out.Admin.ID, db.RoleAdmin, "first admin key", nil)
		return err
	})
	var ce *db.ConstraintError
	if errors.As(err, &ce) && ce.Constraint == "tenants_slug_key" {
		return Onboarded{}, ErrSlugTaken
	}
	if err != nil {
		return Onboarded{}, err
	}
	return out, nil
}
