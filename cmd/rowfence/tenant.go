package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"time"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/tenancy"
)

// runTenant administers the tenant registry. It connects with DATABASE_URL:
// creating and listing tenants sees across tenants, which the app role cannot.
func runTenant(ctx context.Context, args []string, env config.Config, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"tenant: missing action (create, list, limits, suspend, activate, delete, purge, export, import, archive or restore)"}
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
	case "limits":
		return runTenantLimits(ctx, fs, args, env, stdout)
	case "suspend", "activate", "delete", "purge", "export", "import", "archive", "restore":
		return runTenantLifecycle(ctx, action, fs, args, env, stdout, stderr)
	default:
		return usageError{fmt.Sprintf("tenant: unknown action %q (create, list, limits, suspend, activate, delete, purge, export, import, archive or restore)", action)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if action == "list" {
		conn, err := connectAdmin(ctx, env, "tenant administration connects as the migrating role")
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		list, err := db.Unscoped(conn).TenantList(ctx)
		if err != nil {
			return err
		}
		out := make([]httpapi.TenantJSON, 0, len(list))
		for _, t := range list {
			out = append(out, httpapi.RenderTenant(t))
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
	pool, err := connectAdminPool(ctx, env, "tenant administration connects as the migrating role")
	if err != nil {
		return err
	}
	defer pool.Close()
	o, err := lifecycle.Onboard(ctx, pool, in)
	switch {
	case errors.Is(err, db.ErrConflict): // the slug: Onboard's one unique value
		return fmt.Errorf("tenant create: a tenant with slug %q already exists", in.Slug)
	case err != nil:
		return fmt.Errorf("tenant create: %w", err)
	}
	fmt.Fprintln(stderr, "tenant created; its admin's API key is printed once and cannot be shown again")
	return enc.Encode(httpapi.RenderOnboarded(o))
}

// plainEmail is a light check; the database checks the length again.
func plainEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && addr.Name == "" && len(s) <= 254
}

// runTenantLimits sets or clears a tenant's own limits; flags left out keep
// their value, "default" clears one (NULL: the server's default). Running
// servers apply it within TENANT_CACHE_TTL.
func runTenantLimits(ctx context.Context, fs *flag.FlagSet, args []string, env config.Config, stdout io.Writer) error {
	slug := fs.String("slug", "", "the tenant (required)")
	rate := fs.String("rate", "", "requests per second (> 0), or default")
	burst := fs.String("burst", "", "token bucket size (1-1000000), or default")
	conc := fs.String("concurrency", "", "requests doing database work at once (1-10000), or default")
	timeout := fs.String("statement-timeout", "", "statement_timeout of its SQL, e.g. 2s (1ms-1h), or default")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
