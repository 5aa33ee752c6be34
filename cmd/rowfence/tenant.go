package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/tenancy"
)

// tenantJSON is how the CLI prints a tenant.
type tenantJSON struct {
	ID        uuid.UUID `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

func toTenantJSON(t db.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, CreatedAt: t.CreatedAt.UTC()}
}

// runTenant administers the tenant registry. It connects with DATABASE_URL:
// creating and listing tenants sees across tenants, which the app role cannot.
func runTenant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"tenant: missing action (create or list)"}
	}
	action, args := args[0], args[1:]
	fs := flag.NewFlagSet("tenant "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var in lifecycle.Tenant
	switch action {
	case "create":
		fs.StringVar(&in.Slug, "slug", "", "tenant slug: 3-63 of a-z, 0-9 and -, not starting or ending with - (required)")
		fs.StringVar(&in.Name, "name", "", "display name, 1-200 characters (required)")
		fs.StringVar(&in.AdminEmail, "admin-email", "", "email of the tenant's first admin user (required)")
		fs.StringVar(&in.AdminName, "admin-name", "Admin", "name of the tenant's first admin user")
	case "list":
	default:
		return usageError{fmt.Sprintf("tenant: unknown action %q (create or list)", action)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if action == "list" {
		conn, err := connectAdmin(ctx, getenv, "tenant administration connects as the migrating role")
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		list, err := db.New(conn).TenantList(ctx)
		if err != nil {
			return err
		}
		out := make([]tenantJSON, 0, len(list))
		for _, t := range list {
			out = append(out, toTenantJSON(t))
		}
		return enc.Encode(out)
	}
	switch {
	case !tenancy.ValidSlug(in.Slug):
		return usageError{"tenant create: --slug must be 3-63 characters of a-z, 0-9 and -, starting and ending with a letter or digit"}
	case len([]rune(in.Name)) < 1 || len([]rune(in.Name)) > 200:
		return usageError{"tenant create: --name must be 1-200 characters"}
	case !plainEmail(in.AdminEmail):
		return usageError{"tenant create: --admin-email must be a plain email address such as ops@example.com"}
	case len([]rune(in.AdminName)) < 1 || len([]rune(in.AdminName)) > 200:
		return usageError{"tenant create: --admin-name must be 1-200 characters"}
	}
	pool, err := connectAdminPool(ctx, getenv, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer pool.Close()
	o, err := lifecycle.Onboard(ctx, pool, in)
	switch {
	case errors.Is(err, lifecycle.ErrSlugTaken):
		return fmt.Errorf("tenant create: a tenant with slug %q already exists", in.Slug)
	case err != nil:
		return fmt.Errorf("tenant create: %w", err)
	}
	fmt.Fprintln(stderr, "tenant created; its admin's API key is printed once and cannot be shown again")
	return enc.Encode(struct {
		tenantJSON
		Admin  userJSON   `json:"admin"`
		APIKey apiKeyJSON `json:"api_key"`
	}{toTenantJSON(o.Tenant), toUserJSON(o.Admin), toAPIKeyJSON(o.KeyRow, o.Key)})
}

type userJSON struct {
	ID    uuid.UUID `json:"id"`
	Name  string    `json:"name"`
	Email string    `json:"email"`
	Role  string    `json:"role"`
}

func toUserJSON(u db.User) userJSON {
	return userJSON{ID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role}
}

// plainEmail is a light check; the database checks the length again.
func plainEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && addr.Name == "" && len(s) <= 254
}
