package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/tenancy"
)

type tenantSuspendCmd struct {
	Slug string `required:"" help:"The tenant."`
}
type tenantActivateCmd struct {
	Slug string `required:"" help:"The tenant."`
}
type tenantDeleteCmd struct {
	Slug  string        `required:"" help:"The tenant."`
	Grace time.Duration `help:"Keep the data this long (refusing the tenant's requests) before the purge deletes it, e.g. 72h; 0 deletes now."`
}
type tenantPurgeCmd struct{}
type tenantExportCmd struct {
	Slug string `required:"" help:"The tenant."`
	Out  string `default:"-" placeholder:"FILE" help:"File to write, never overwritten (- for stdout)."`
}
type tenantImportCmd struct {
	File string `arg:"" type:"existingfile" help:"The export to restore."`
	Slug string `required:"" help:"The tenant to restore into: a new one, or one without rows."`
	Name string `help:"Display name when the import creates the tenant (default: the exported one)."`
}

func (c *tenantSuspendCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "suspend", lifecycleArgs{slug: c.Slug})
}
func (c *tenantActivateCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "activate", lifecycleArgs{slug: c.Slug})
}
func (c *tenantDeleteCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "delete", lifecycleArgs{slug: c.Slug, grace: c.Grace})
}
func (tenantPurgeCmd) Run(r *runEnv) error { return runTenantLifecycle(r, "purge", lifecycleArgs{}) }
func (c *tenantExportCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "export", lifecycleArgs{slug: c.Slug, out: c.Out})
}
func (c *tenantImportCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "import", lifecycleArgs{slug: c.Slug, name: c.Name, file: c.File})
}

type tenantArchiveCmd struct {
	Slug string `required:"" help:"The tenant, suspended first."`
}
type tenantRestoreCmd struct {
	Slug string `required:"" help:"The archived tenant."`
}

func (c *tenantArchiveCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "archive", lifecycleArgs{slug: c.Slug})
}
func (c *tenantRestoreCmd) Run(r *runEnv) error {
	return runTenantLifecycle(r, "restore", lifecycleArgs{slug: c.Slug})
}

// lifecycleArgs are the lifecycle commands' flags and argument.
type lifecycleArgs struct {
	slug, out, name, file string
	grace                 time.Duration
}

// runTenantLifecycle: suspend, activate, delete [--grace], purge, export,
// import, archive and restore, as the migrating role (its connections act as
// rowfence_owner).
func runTenantLifecycle(r *runEnv, action string, a lifecycleArgs) error {
	ctx, env, stdout, stderr := r.ctx, r.env, r.stdout, r.stderr
	slug, out, name, file, grace := a.slug, a.out, a.name, a.file, a.grace
	if action != "purge" && !tenancy.ValidSlug(slug) {
		return usageError{"tenant " + action + ": --slug must be a tenant slug"}
	}
	if grace < 0 {
		return usageError{"tenant delete: --grace must not be negative"}
	}
	pool, err := connectAdminPool(ctx, env, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer pool.Close()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")

	// A tenant placed in another cell (package cells) has its rows there,
	// not in DATABASE_URL's database, which holds only the catalog's row:
	// export, delete, archive and restore act in its cell (the archive is
	// kept there: lifecycle.ArchiveIn says why); import into an existing
	// tenant would act on the wrong database, so it refuses
	// (TestTenantCommandsInAnotherCell).
	cell := cells.Default
	if action != "purge" {
		if t, err := db.Unscoped(pool).TenantBySlug(ctx, slug); err == nil && t.Cell != "" {
			cell = t.Cell
		}
	}
	// The pool of the tenant's cell: pool itself for the default cell.
	cellPool := func() (*pgxpool.Pool, func(), error) {
		if cell == cells.Default {
			return pool, func() {}, nil
		}
		p, err := connectCellAdminPool(ctx, env, cell)
		if err != nil {
			return nil, nil, err
		}
		return p, p.Close, nil
	}
	if cell != cells.Default && action == "import" {
		return fmt.Errorf("tenant %s: %s is in cell %q, and %s works in the default cell only: move it there first (rowfence tenant move --slug %s --to %s)",
			action, slug, cell, action, slug, cells.Default)
	}
	inCell := func(ctx context.Context, name string, id uuid.UUID) error {
		p, err := connectCellAdminPool(ctx, env, name)
		if err != nil {
			return err
		}
		defer p.Close()
		return lifecycle.Delete(ctx, p, id)
	}

	switch action {
	case "purge":
		purged, err := lifecycle.PurgeDue(ctx, pool, inCell)
		if err != nil {
			return fmt.Errorf("tenant purge: %w", err)
		}
		if purged == nil {
			purged = []string{}
		}
		return enc.Encode(map[string]any{"purged": purged})
	case "export":
		w := stdout
		if out != "-" {
			f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("tenant export: %w", err)
			}
			defer f.Close()
			w = f
		}
		src, done, err := cellPool()
		if err != nil {
			return err
		}
		defer done()
		counts, err := lifecycle.Export(ctx, src, slug, w)
		if errors.Is(err, lifecycle.ErrNotFound) {
			return fmt.Errorf("tenant export: no tenant %q", slug)
		}
		if err != nil {
			if out != "-" {
				os.Remove(out) // never leave a partial export that looks whole
			}
			return fmt.Errorf("tenant export: %w", err)
		}
		fmt.Fprintf(stderr, "exported %s: %d users, %d products, %d API keys\n", slug, counts["users"], counts["products"], counts["api_keys"])
		return nil
	case "archive":
		in, done, err := cellPool()
		if err != nil {
			return err
		}
		defer done()
		a, err := lifecycle.ArchiveIn(ctx, pool, in, slug)
		if err != nil {
			return fmt.Errorf("tenant archive: %w", err)
		}
		fmt.Fprintf(stderr, "archived %s: %d users, %d products, %d API keys moved into its archive (%d bytes); its requests get 409 tenant-archived\n",
			slug, a.Counts["users"], a.Counts["products"], a.Counts["api_keys"], a.Bytes)
		return enc.Encode(map[string]any{"tenant": httpapi.RenderTenant(a.Tenant), "archive": a.Archive, "archived": a.Counts, "bytes": a.Bytes})
	case "restore":
		in, done, err := cellPool()
		if err != nil {
			return err
		}
		defer done()
		imp, err := lifecycle.RestoreIn(ctx, pool, in, slug)
		if err != nil {
			return fmt.Errorf("tenant restore: %w (nothing was written)", err)
		}
		fmt.Fprintf(stderr, "restored %s from its archive; running servers serve it again within TENANT_CACHE_TTL (default %s)\n", slug, tenancy.DefaultTTL)
		return enc.Encode(map[string]any{"tenant": httpapi.RenderTenant(imp.Tenant), "restored": imp.Counts})
	case "import":
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("tenant import: %w", err)
		}
		defer f.Close()
		imp, err := lifecycle.Import(ctx, pool, slug, name, f)
		if err != nil {
			return fmt.Errorf("tenant import: %w (nothing was written)", err)
		}
		if imp.KeysSkipped > 0 {
			fmt.Fprintf(stderr, "%d API keys left out: they belong to the exported tenant's id, and %s has another\n", imp.KeysSkipped, slug)
		}
		return enc.Encode(map[string]any{"tenant": httpapi.RenderTenant(imp.Tenant), "imported": imp.Counts, "api_keys_skipped": imp.KeysSkipped})
	}

	t, err := db.Unscoped(pool).TenantBySlug(ctx, slug)
	if err != nil {
		return fmt.Errorf("tenant %s: no tenant %q", action, slug)
	}
	switch {
	case action == "delete" && grace == 0:
		// The cell's rows first: a failure leaves the tenant in the
		// catalog, to be deleted again.
		if cell != cells.Default {
			if err := inCell(ctx, cell, t.ID); err != nil && !errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("tenant delete: in cell %q: %w", cell, err)
			}
		}
		if err := lifecycle.Delete(ctx, pool, t.ID); err != nil {
			return fmt.Errorf("tenant delete: %w", err)
		}
		fmt.Fprintf(stderr, "deleted %s and every row it owned\n", slug)
		return enc.Encode(map[string]any{"deleted": slug})
	case action == "delete":
		t, err = lifecycle.SetStatus(ctx, pool, t.ID, dbtype.TenantStatusDeleting, grace)
	case action == "suspend":
		t, err = lifecycle.SetStatus(ctx, pool, t.ID, dbtype.TenantStatusSuspended, 0)
	default: // activate, also cancelling a pending deletion
		t, err = lifecycle.SetStatus(ctx, pool, t.ID, dbtype.TenantStatusActive, 0)
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", action, err)
	}
	fmt.Fprintf(stderr, "running servers apply it within TENANT_CACHE_TTL (default %s)\n", tenancy.DefaultTTL)
	return enc.Encode(httpapi.RenderTenant(t))
}
