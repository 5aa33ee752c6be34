// Package lifecycle creates and administers whole tenants: the work that
// sees across tenants and so never runs as the app role on a request's path.
// Each operation is one transaction.
package lifecycle

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
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
	Tenant dbsqlc.Tenant
	Admin  dbsqlc.User
	KeyRow dbsqlc.APIKey
	Key    string
}

// Onboard creates a tenant, its first admin user and that user's first API
// key in one transaction: all three or nothing. pool connects as the
// migrating role (the registry is not the app role's to write); the user and
// key are written under the new tenant's setting and the admin role, as the
// API would, so the policies check them too.
func Onboard(ctx context.Context, pool *pgxpool.Pool, in Tenant) (Onboarded, error) {
	return OnboardIn(ctx, pool, pool, tenancy.DefaultCell, in)
}

// Check applies the onboarding's input rules (the slug's pattern, and
// textrule's for the names and the admin's email; an empty AdminName is
// Onboard's "Admin") before any connection. Errors: *db.Error with Code
// db.ErrInvalid and Field "slug", "name", "admin_email" or "admin_name".
func (in Tenant) Check() error {
	if !tenancy.ValidSlug(in.Slug) {
		return &db.Error{Code: db.ErrInvalid, Field: "slug",
			Message: fmt.Sprintf("slug %q: 3-63 characters of a-z, 0-9 and -, starting and ending with a letter or digit", in.Slug)}
	}
	if in.AdminName == "" {
		in.AdminName = "Admin"
	}
	for _, f := range []struct {
		field, what, value string
		rules              textrule.Field
	}{{"name", "name", in.Name, textrule.TenantName}, {"admin_email", "admin email", in.AdminEmail, textrule.UserEmail}, {"admin_name", "admin name", in.AdminName, textrule.UserName}} {
		if err := f.rules.Check(f.value); err != nil {
			return &db.Error{Code: db.ErrInvalid, Field: f.field, Message: fmt.Sprintf("the %s %v", f.what, err)}
		}
	}
	return nil
}

// OnboardIn is Onboard placing the tenant in cell (package cells): catalog
// is the default cell's pool (the registry of every tenant), target the
// cell's own. In the default cell (target == catalog) it is Onboard's one
// transaction. In another cell it is two: the catalog's row first (it
// claims the slug), then the cell's copy of it with the admin and key; if
// the second fails, the catalog's row is deleted again, so a failed
// onboarding leaves no tenant behind (a crash between the two leaves a
// catalog row whose cell holds nothing: no credential exists for it, and
// deleting it is safe). Both pools connect as the migrating role or
// rowfence_platform.
func OnboardIn(ctx context.Context, catalog, target *pgxpool.Pool, cell string, in Tenant) (Onboarded, error) {
	if in.AdminName == "" {
		in.AdminName = "Admin"
	}
	if err := in.Check(); err != nil {
		return Onboarded{}, err
	}
	var out Onboarded
	id := uuid.New()
	create := dbsqlc.TenantCreateInCellParams{ID: id, Slug: in.Slug, Name: in.Name, Cell: cell}
	separate := target != catalog
	if separate {
		if _, err := db.Unscoped(catalog).TenantCreateInCell(ctx, create); err != nil {
			return Onboarded{}, err
		}
	}
	err := db.Tx(ctx, target, db.Scope{TenantID: id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		var err error
		if out.Tenant, err = q.TenantCreateInCell(ctx, create); err != nil {
			return err
		}
		if out.Admin, err = q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: in.AdminName, Email: in.AdminEmail, Role: dbtype.RoleAdmin}); err != nil {
			return err
		}
		out.KeyRow, out.Key, err = auth.IssueKey(ctx, q, id, out.Admin.ID, dbtype.RoleAdmin, "first admin key", nil)
		return err
	})
	if err != nil { // a slug taken is a db.ErrConflict on its field (db/constraints.go)
		if separate {
			// Undo the catalog's row; context.WithoutCancel: also when the
			// caller gave up, which may be why the cell's part failed.
			_, _ = db.Unscoped(catalog).TenantDelete(context.WithoutCancel(ctx), id)
		}
		return Onboarded{}, err
	}
	return out, nil
}
