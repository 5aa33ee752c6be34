package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
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
	var slug, name string
	switch action {
	case "create":
		fs.StringVar(&slug, "slug", "", "tenant slug: 3-63 of a-z, 0-9 and -, not starting or ending with -")
		fs.StringVar(&name, "name", "", "display name, 1-200 characters")
	case "list":
	default:
		return usageError{fmt.Sprintf("tenant: unknown action %q (create or list)", action)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	conn, err := connectAdmin(ctx, getenv, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	q := db.New(conn)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")

	if action == "list" {
		list, err := q.TenantList(ctx)
		if err != nil {
			return err
		}
		out := make([]tenantJSON, 0, len(list))
		for _, t := range list {
			out = append(out, toTenantJSON(t))
		}
		return enc.Encode(out)
	}
	if !tenancy.ValidSlug(slug) {
		return usageError{"tenant create: --slug must be 3-63 characters of a-z, 0-9 and -, starting and ending with a letter or digit"}
	}
	if n := len([]rune(name)); n < 1 || n > 200 {
		return usageError{"tenant create: --name must be 1-200 characters"}
	}
	t, err := q.TenantCreate(ctx, db.TenantCreateParams{Slug: slug, Name: name})
	if err != nil {
		if errors.Is(db.MapError(err), db.ErrConflict) {
			return fmt.Errorf("tenant create: a tenant with slug %q already exists", slug)
		}
		return fmt.Errorf("tenant create: %w", err)
	}
	return enc.Encode(toTenantJSON(t))
}
