package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/tenancy"
)

// tenantCmd administers the tenant registry. It connects with
// DATABASE_URL: creating and listing tenants sees across tenants, which the
// app role cannot.
type tenantCmd struct {
	Create   tenantCreateCmd   `cmd:"" help:"Create a tenant, its first admin user and API key (printed once)."`
	List     tenantListCmd     `cmd:"" help:"List tenants as JSON."`
	Limits   tenantLimitsCmd   `cmd:"" help:"Set a tenant's own limits (\"default\" clears one: the server's default applies)."`
	Suspend  tenantSuspendCmd  `cmd:"" help:"Refuse a tenant's requests."`
	Activate tenantActivateCmd `cmd:"" help:"Allow a tenant's requests again (also cancels a pending deletion)."`
	Delete   tenantDeleteCmd   `cmd:"" help:"Delete a tenant and every row it owns now, or mark it and purge it after --grace."`
	Purge    tenantPurgeCmd    `cmd:"" help:"Delete the tenants whose grace period is over."`
	Export   tenantExportCmd   `cmd:"" help:"Write a consistent snapshot of a tenant's rows (docs/EXPORT.md)."`
	Import   tenantImportCmd   `cmd:"" help:"Restore an export into a new or empty tenant, all or nothing."`
	Move     tenantMoveCmd     `cmd:"" help:"Move a tenant online to another cell (PostgreSQL logical replication; docs/SCALING.md)."`
	Archive  tenantArchiveCmd  `cmd:"" help:"Move a suspended tenant's rows into its archive; its requests get 409 tenant-archived."`
	Restore  tenantRestoreCmd  `cmd:"" help:"Put an archived tenant's rows back from its archive and make it active."`
}

type tenantCreateCmd struct {
	Slug       string `required:"" help:"Tenant slug: 3-63 of a-z, 0-9 and -, not starting or ending with -."`
	Name       string `required:"" help:"Display name, 1-200 characters."`
	AdminEmail string `required:"" name:"admin-email" help:"Email of the tenant's first admin user."`
	AdminName  string `name:"admin-name" default:"Admin" help:"Name of the tenant's first admin user."`
	Cell       string `placeholder:"CELL|k=v" help:"The cell to place it in: a cell's name, or labels such as region=eu (default: the default cell)."`
}

type tenantListCmd struct{}

func (c *tenantCreateCmd) Run(r *runEnv) error {
	return runTenantCreate(r.ctx, lifecycle.Tenant{Slug: c.Slug, Name: c.Name, AdminEmail: c.AdminEmail, AdminName: c.AdminName},
		c.Cell, r.env, r.stdout, r.stderr)
}

// Run lists every tenant, as the migrating role.
func (tenantListCmd) Run(r *runEnv) error {
	conn, err := connectAdmin(r.ctx, r.env, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	list, err := db.Unscoped(conn).TenantList(r.ctx)
	if err != nil {
		return err
	}
	out := make([]httpapi.TenantJSON, 0, len(list))
	for _, t := range list {
		out = append(out, httpapi.RenderTenant(t))
	}
	enc := json.NewEncoder(r.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func runTenantCreate(ctx context.Context, in lifecycle.Tenant, placement string, env config.Config, stdout, stderr io.Writer) error {
	// Onboarding's own rules, before connecting: a bad flag is a usage error.
	if err := in.Check(); err != nil {
		var e *db.Error
		if errors.As(err, &e) {
			return usageError{fmt.Sprintf("tenant create: --%s: %s", strings.ReplaceAll(e.Field, "_", "-"), e.Message)}
		}
		return err
	}
	pool, err := connectAdminPool(ctx, env, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer pool.Close()
	cell, err := cells.Place(ctx, pool, placement, func(name string) bool {
		return name == cells.Default || slices.ContainsFunc(env.Cells, func(u cells.URL) bool { return u.Name == name })
	})
	if err != nil {
		return usageError{"tenant create: --cell: " + err.Error()}
	}
	target := pool
	if cell != cells.Default {
		if target, err = connectCellAdminPool(ctx, env, cell); err != nil {
			return err
		}
		defer target.Close()
	}
	o, err := lifecycle.OnboardIn(ctx, pool, target, cell, in)
	switch {
	case errors.Is(err, db.ErrConflict): // the slug: Onboard's one unique value
		return fmt.Errorf("tenant create: a tenant with slug %q already exists", in.Slug)
	case err != nil:
		return fmt.Errorf("tenant create: %w", err)
	}
	fmt.Fprintln(stderr, "tenant created; its admin's API key is printed once and cannot be shown again")
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(httpapi.RenderOnboarded(o))
}

// tenantLimitsCmd sets or clears a tenant's own limits; flags left out keep
// their value, "default" clears one (NULL: the server's default). Running
// servers apply it within TENANT_CACHE_TTL.
type tenantLimitsCmd struct {
	Slug             string `required:"" help:"The tenant."`
	Rate             string `placeholder:"R|default" help:"Requests per second (> 0), or default."`
	Burst            string `placeholder:"B|default" help:"Token bucket size (1-1000000), or default."`
	Concurrency      string `placeholder:"N|default" help:"Requests doing database work at once (1-10000), or default."`
	StatementTimeout string `name:"statement-timeout" placeholder:"D|default" help:"statement_timeout of its SQL, e.g. 2s (1ms-1h), or default."`
}

func (c *tenantLimitsCmd) Run(r *runEnv) error {
	ctx, env, stdout := r.ctx, r.env, r.stdout
	slug, rate, burst, conc, timeout := &c.Slug, &c.Rate, &c.Burst, &c.Concurrency, &c.StatementTimeout
	if !tenancy.ValidSlug(*slug) {
		return usageError{"tenant limits: --slug must be a tenant slug"}
	}
	conn, err := connectAdmin(ctx, env, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	q := db.Unscoped(conn)
	cur, err := q.TenantBySlug(ctx, *slug)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("tenant limits: no tenant %q", *slug)
	}
	if err != nil {
		return err
	}
	p := dbsqlc.TenantSetLimitsParams{Slug: *slug, RateLimit: cur.RateLimit, RateBurst: cur.RateBurst,
		MaxConcurrency: cur.MaxConcurrency, StatementTimeoutMs: cur.StatementTimeoutMs}
	setInt := func(name, raw string, lo, hi int64, dst **int32) error {
		switch raw {
		case "":
		case "default":
			*dst = nil
		default:
			v, err := strconv.ParseInt(raw, 10, 32)
			if err != nil || v < lo || v > hi {
				return usageError{fmt.Sprintf("tenant limits: --%s must be an integer from %d to %d, or default", name, lo, hi)}
			}
			v32 := int32(v)
			*dst = &v32
		}
		return nil
	}
	if err := setInt("burst", *burst, 1, 1000000, &p.RateBurst); err != nil {
		return err
	}
	if err := setInt("concurrency", *conc, 1, 10000, &p.MaxConcurrency); err != nil {
		return err
	}
	switch *rate {
	case "":
	case "default":
		p.RateLimit = nil
	default:
		v, err := strconv.ParseFloat(*rate, 64)
		if err != nil || !(v > 0 && v <= 1000000) {
			return usageError{"tenant limits: --rate must be a number of requests per second above 0 (at most 1000000), or default"}
		}
		p.RateLimit = &v
	}
	switch *timeout {
	case "":
	case "default":
		p.StatementTimeoutMs = nil
	default:
		d, err := time.ParseDuration(*timeout)
		if err != nil || d < time.Millisecond || d > time.Hour {
			return usageError{"tenant limits: --statement-timeout must be a duration from 1ms to 1h, or default"}
		}
		ms := int32(d.Milliseconds())
		p.StatementTimeoutMs = &ms
	}
	t, err := q.TenantSetLimits(ctx, p)
	if err != nil {
		return fmt.Errorf("tenant limits: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(httpapi.RenderTenant(t))
}
