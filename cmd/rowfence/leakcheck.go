package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/leakcheck"
)

// leakcheckCmd attacks a running deployment as tenant A against tenant B.
// Exit 1 on a leak; 3 when it could not run (a URL that does not answer,
// a server error while seeding, a database it cannot reach).
type leakcheckCmd struct {
	URL        string `required:"" name:"url" help:"Base URL of the deployment, e.g. http://localhost:8080."`
	Create     bool   `help:"Onboard two fresh tenants through DATABASE_URL (after checking --url answers), instead of --tenant-a/-b and their keys; they are deleted when leakcheck ends, however it ends."`
	TenantA    string `name:"tenant-a" placeholder:"SLUG" help:"Slug of the attacking tenant (its admin key in LEAKCHECK_KEY_A)."`
	TenantB    string `name:"tenant-b" placeholder:"SLUG" help:"Slug of the victim tenant (its admin key in LEAKCHECK_KEY_B)."`
	Mode       string `enum:"header,subdomain,path,token" default:"header" help:"The deployment's TENANT_MODE: header, subdomain, path or token."`
	BaseDomain string `name:"base-domain" help:"The deployment's BASE_DOMAIN (subdomain mode)."`
	DB         string `name:"db" placeholder:"DSN" help:"The serving role's (rowfence_app's) connection string: also try the SQL vectors."`
	Format     string `enum:"text,json" default:"text" help:"Report format: text or json."`
	OpenAPI    string `name:"openapi" placeholder:"URL|FILE" help:"The deployment's OpenAPI document, which lists the resources to attack (default: --url + /openapi.json)."`
}

func (c *leakcheckCmd) Run(r *runEnv) error {
	return runLeakcheck(r.ctx, *c, r.env, r.stdout, r.stderr)
}

// runLeakcheck checks the command line, then that the deployment answers at
// all, and only then onboards tenants (--create) and attacks.
func runLeakcheck(ctx context.Context, opts leakcheckCmd, env config.Config, stdout, stderr io.Writer) error {
	cfg := leakcheck.Config{URL: opts.URL, TenantA: opts.TenantA, TenantB: opts.TenantB, Mode: opts.Mode,
		BaseDomain: opts.BaseDomain, DB: opts.DB, OpenAPI: opts.OpenAPI}
	// Keys come from the environment, not flags, so they stay out of ps.
	cfg.KeyA, cfg.KeyB = env.LeakcheckKeyA, env.LeakcheckKeyB
	var adminURL string
	switch {
	case opts.Create:
		if cfg.TenantA != "" || cfg.TenantB != "" {
			return usageError{"leakcheck: --create makes its own tenants; drop --tenant-a and --tenant-b"}
		}
		dbURL, err := databaseURL(env, "leakcheck --create onboards two tenants as the migrating role")
		if err != nil {
			return err
		}
		adminURL = dbURL
	case cfg.TenantA == "" || cfg.TenantB == "":
		return usageError{"leakcheck: name two tenants (--tenant-a, --tenant-b, with LEAKCHECK_KEY_A and LEAKCHECK_KEY_B), or use --create"}
	case cfg.KeyA == "" || cfg.KeyB == "":
		return usageError{"leakcheck: set LEAKCHECK_KEY_A and LEAKCHECK_KEY_B to admin API keys of the two tenants"}
	}
	if cfg.Mode == "subdomain" && cfg.BaseDomain == "" {
		return usageError{"leakcheck: --mode subdomain needs --base-domain"}
	}
	if _, err := pgxpool.ParseConfig(adminURL); adminURL != "" && err != nil {
		return usageError{"DATABASE_URL: " + err.Error()}
	}
	if err := reachable(ctx, cfg.URL); err != nil {
		return err
	}
	// The resources to attack come from the deployment's OpenAPI document:
	// without a usable one leakcheck cannot run, and creates nothing.
	if _, err := leakcheck.Document(ctx, cfg); err != nil {
		return fmt.Errorf("leakcheck: %w", err)
	}
	if opts.Create {
		cleanup, err := onboardPair(ctx, adminURL, &cfg)
		// However the run ends (a leak, an error, SIGINT or SIGTERM), the
		// tenants it made go, with every row it wrote into them.
		defer cleanup(stderr)
		if err != nil {
			return fmt.Errorf("leakcheck: creating two tenants: %w", err)
		}
	}
	rep, err := leakcheck.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("leakcheck: %w", err)
	}
	if opts.Format == "json" {
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
		return findingError{fmt.Sprintf("leakcheck: %d vector(s) leaked", n)}
	}
	return nil
}

// reachable reports an error (exit 3) unless base answers HTTP at all:
// any status will do, a refused connection, a name that does not resolve,
// a timeout or a malformed answer will not.
func reachable(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Sprintf("leakcheck: --url must be an http:// or https:// URL such as http://localhost:8080, not %q", base)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return usageError{fmt.Sprintf("leakcheck: --url %q: %v", base, err)}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("leakcheck: the deployment at %s does not answer: %w", base, err)
	}
	res.Body.Close()
	return nil
}

// onboardPair is leakcheck.OnboardPair as the migrating role (adminURL);
// cleanup, never nil, also closes its pool.
func onboardPair(ctx context.Context, adminURL string, cfg *leakcheck.Config) (cleanup func(w io.Writer), err error) {
	pool, err := connectAdminPool(ctx, config.Config{DatabaseURL: adminURL}, "")
	if err != nil {
		return func(io.Writer) {}, err
	}
	del, err := leakcheck.OnboardPair(ctx, pool, cfg)
	return func(w io.Writer) { del(w); pool.Close() }, err
}
