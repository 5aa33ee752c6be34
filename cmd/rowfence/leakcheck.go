package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/leakcheck"
)

// runLeakcheck attacks a running deployment as tenant A against tenant B and
// exits non-zero on any leak.
func runLeakcheck(ctx context.Context, args []string, env config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("leakcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg leakcheck.Config
	fs.StringVar(&cfg.URL, "url", "", "base URL of the deployment, e.g. http://localhost:8080 (required)")
	fs.StringVar(&cfg.TenantA, "tenant-a", "", "slug of the attacking tenant")
	fs.StringVar(&cfg.TenantB, "tenant-b", "", "slug of the victim tenant")
	create := fs.Bool("create", false, "onboard two fresh tenants through DATABASE_URL instead of --tenant-a/-b and their keys")
	fs.StringVar(&cfg.Mode, "mode", "header", "the deployment's TENANT_MODE: header, subdomain, path or token")
	fs.StringVar(&cfg.BaseDomain, "base-domain", "", "the deployment's BASE_DOMAIN (subdomain mode)")
	fs.StringVar(&cfg.DB, "db", "", "the app role's connection string: also try the SQL vectors")
	fs.StringVar(&cfg.OpenAPI, "openapi", "", "URL or file of the deployment's OpenAPI document, which lists the resources to attack (default: --url + /openapi.json)")
	format := fs.String("format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Keys come from the environment, not flags, so they stay out of ps.
	cfg.KeyA, cfg.KeyB = env.LeakcheckKeyA, env.LeakcheckKeyB
	switch {
	case cfg.URL == "":
		return usageError{"leakcheck: --url is required"}
	case *create:
		if cfg.TenantA != "" || cfg.TenantB != "" {
			return usageError{"leakcheck: --create makes its own tenants; drop --tenant-a and --tenant-b"}
		}
		url, err := databaseURL(env, "leakcheck --create onboards two tenants as the migrating role")
		if err != nil {
			return err
		}
		cfg.AdminDB, cfg.KeyA, cfg.KeyB = url, "", ""
	case cfg.TenantA == "" || cfg.TenantB == "":
		return usageError{"leakcheck: name two tenants (--tenant-a, --tenant-b, with LEAKCHECK_KEY_A and LEAKCHECK_KEY_B), or use --create"}
	case cfg.KeyA == "" || cfg.KeyB == "":
		return usageError{"leakcheck: set LEAKCHECK_KEY_A and LEAKCHECK_KEY_B to admin API keys of the two tenants"}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Sprintf("leakcheck: --format must be text or json, not %q", *format)}
	}
	rep, err := leakcheck.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("leakcheck: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			leakcheck.Report
			Leaks int `json:"leaks"`
		}{rep, rep.Leaks()}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "resources (from the OpenAPI document): %s\n", strings.Join(rep.Resources, ", "))
		for _, s := range rep.Skipped {
			fmt.Fprintf(stdout, "not attacked: %s\n", s)
		}
		for _, r := range rep.Results {
			verdict := "pass"
			if !r.Pass {
				verdict = "LEAK"
			}
			fmt.Fprintf(stdout, "%-4s  %-52s %s\n", verdict, r.Vector, r.Detail)
		}
		fmt.Fprintf(stdout, "\n%d vectors, %d leak(s)\n", len(rep.Results), rep.Leaks())
	}
	if n := rep.Leaks(); n > 0 {
		return fmt.Errorf("leakcheck: %d vector(s) leaked", n)
	}
	return nil
}
