//go:build dev

// The dev command is compiled only with the dev build tag (make run: go run
// -tags dev ./cmd/rowfence dev): it links the PostgreSQL starter (pgserver,
// and through it testcontainers and the Docker client) and the demo seed,
// whose API keys and platform admin key the README publishes. The binary
// that `make build` makes has neither (nodev.go; docs/SECURITY.md, "Demo
// credentials and dev tooling").
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/sql/seed"
)

// seedExistingFlag is the only way to let dev seed its public keys into a
// PostgreSQL it did not start itself: DATABASE_URL's, or a --data directory
// without pgserver's marker. Long on purpose: it says what it does.
const seedExistingFlag = "seed-public-keys-into-existing-database"

// devCmd is `make run`: start PostgreSQL (a Docker container, or a local
// cluster kept in .pgdata), migrate, seed the demo tenants, print example
// requests and the operator commands' connection strings, and serve as the
// app role. It seeds only a server it created, unless told otherwise with
// --seed-public-keys-into-existing-database.
type devCmd struct {
	Data         string `default:".pgdata" placeholder:"DIR" help:"Where the local cluster is kept between runs."`
	SeedExisting bool   `name:"seed-public-keys-into-existing-database" help:"Also seed the public demo keys into a server dev did not create: DATABASE_URL's, or a --data cluster of someone else's (never one with real data)."`
}

func (c *devCmd) Run(r *runEnv) error {
	ctx, env, stdout, log := r.ctx, r.env, r.stdout, r.log
	dataDir, seedExisting := &c.Data, &c.SeedExisting
	envURL := env.DatabaseURL
	if envURL != "" && !*seedExisting {
		return usageError{fmt.Sprintf("dev: DATABASE_URL is set (%s), but dev seeds public demo credentials "+
			"(the README's API keys and a platform admin key) and so seeds only a PostgreSQL it starts itself; "+
			"unset DATABASE_URL to use a local cluster in %s (make run), or pass --%s to seed that server anyway "+
			"(never one holding real data)", pgserver.Redact(envURL), *dataDir, seedExistingFlag)}
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{EnvURL: envURL, DataDir: *dataDir, Log: log, OwnClusterOnly: !*seedExisting})
	if errors.Is(err, pgserver.ErrForeignCluster) {
		return usageError{fmt.Sprintf("dev: %v; dev seeds public demo credentials only into a cluster it created: "+
			"choose another --data directory (make clean-data deletes .pgdata), or pass --%s to seed this one anyway "+
			"(never one holding real data)", err, seedExistingFlag)}
	}
	if err != nil {
		return err
	}
	defer srv.Stop(context.Background())

	appPassword, platformPassword := env.AppDatabasePassword, env.PlatformDatabasePassword
	if srv.Source != "env" {
		// Our own server: give the login roles fresh passwords for this run.
		if appPassword == "" {
			appPassword = randomHex(16)
		}
		if platformPassword == "" {
			platformPassword = randomHex(16)
		}
	}
	m, err := migrate.New(srv.URL, log)
	if err != nil {
		return err
	}
	// No platform password (DATABASE_URL's server, none set): platform
	// administration stays off.
	err = migrateUp(ctx, m, appPassword, platformPassword)
	m.Close()
	if err != nil {
		return err
	}
	if err := seedDemo(ctx, srv.URL); err != nil {
		return fmt.Errorf("seed demo tenants: %w", err)
	}
	env.DatabaseURL, env.AppDatabasePassword, env.PlatformDatabasePassword = srv.URL, appPassword, platformPassword
	cfg, err := newServeConfig(env)
	if err != nil {
		return err
	}
	printBanner(stdout, cfg.Config, srv.Source == "env", appPassword)
	cfg.accessLog = r.accessLog
	return serve(ctx, cfg, log)
}

func seedDemo(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, seed.Demo)
		return err
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// The demo tenants' API keys and the demo platform admin key
// (sql/seed/demo.sql). Public: demo only.
const (
	demoPlatform    = "rfp_d0000000000040008000000000000001_fcbdb330092b7eb870213a375b6b6fd6bccfa44d6d64b259e95adda07c20c963"
	demoAcmeAdmin   = "rfk_a0000000000040008000000000000001_a3000000000040008000000000000001_11d73ecc9e1127a0ecff932a553c4ca3d010bd6e61fc124f7705181efe092460"
	demoAcmeViewer  = "rfk_a0000000000040008000000000000001_a3000000000040008000000000000002_71a892305624a28bee0fcdc3ffe8d9dc289b1e184eef2efc037251250199280a"
	demoGlobexAdmin = "rfk_b0000000000040008000000000000001_b3000000000040008000000000000001_cbdb5efd39c6d84d8cd3964bc4b442593a94ca8a2bcddc6f90067b5f5041186b"
)

// printBanner tells what make run started: example requests that name
// their tenant as cfg.TenantMode says (the X-Tenant-ID header, a subdomain
// of BASE_DOMAIN as the Host header, a /t/{slug} path prefix, or nothing but
// the key), and the connection strings of the operator commands: audit and
// leakcheck --create need the migrating role's (DATABASE_URL), leakcheck --db
// the serving role's, as serve derives it. fromEnv: the database is the
// user's own DATABASE_URL, whose password the banner does not repeat.
func printBanner(w io.Writer, cfg config.Config, fromEnv bool, appPassword string) {
	host := cfg.Addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	scheme := "http"
	if cfg.TLSCertificate != nil {
		scheme = "https"
	}
	base := scheme + "://" + host
	curl := func(method, tenant, path, key, rest string) string {
		cmd := "curl -s"
		if method != "GET" {
			cmd += " -X " + method
		}
		url, tenantHeader := base+path, ""
		switch cfg.TenantMode {
		case httpapi.ModePath:
			url = base + "/t/" + tenant + path
		case httpapi.ModeSubdomain:
			tenantHeader = " -H 'Host: " + tenant + "." + cfg.BaseDomain + "'"
		case httpapi.ModeToken: // the key names its tenant
		default:
			tenantHeader = " -H 'X-Tenant-ID: " + tenant + "'"
		}
		return cmd + " " + url + tenantHeader + ` -H "Authorization: Bearer $` + key + `"` + rest
	}
	ctJSON := ` -H 'Content-Type: application/json'`
	fmt.Fprintf(w, `
rowfence is starting on %[1]s (TENANT_MODE=%[2]s) with demo tenants acme and globex. Try:

  ACME=%[3]s
  ACME_VIEWER=%[4]s
  GLOBEX=%[5]s

`, base, cfg.TenantMode, demoAcmeAdmin, demoAcmeViewer, demoGlobexAdmin)
	lines := []string{
		curl("GET", "acme", "/v1/products", "ACME", ""),
		curl("GET", "globex", "/v1/products/a2000000-0000-4000-8000-000000000001", "GLOBEX", "") + "   # 404: acme's row",
	}
	if cfg.TenantMode != httpapi.ModeToken { // in token mode a key cannot name another tenant
		lines = append(lines, curl("GET", "globex", "/v1/products", "ACME", "")+"   # 403: acme's key")
	}
	lines = append(lines,
		curl("POST", "acme", "/v1/products", "ACME_VIEWER", ctJSON+` -d '{"name":"Flamethrower","price":4200}'`)+"   # 403: a viewer",
		curl("POST", "acme", "/v1/api-keys", "ACME", ctJSON+` -d '{"role":"member","name":"ci"}'`))
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintf(w, "\n  PLATFORM=%s\n  curl -s %s/v1/admin/tenants -H \"Authorization: Bearer $PLATFORM\"\n\n", demoPlatform, base)
	if fromEnv {
		fmt.Fprintf(w, `The operator commands use your DATABASE_URL (the migrating role), e.g.:

  go run ./cmd/rowfence audit
  go run ./cmd/rowfence leakcheck --url %[1]s --create --mode %[2]s%[3]s

`, base, cfg.TenantMode, baseDomainFlag(cfg))
		return
	}
	owner := cfg.DatabaseURL
	app := owner
	if u, err := url.Parse(owner); err == nil {
		u.User = url.UserPassword(db.AppRole, appPassword)
		if appPassword == "" { // a server that trusts its clients
			u.User = url.User(db.AppRole)
		}
		app = u.String()
	}
	fmt.Fprintf(w, `For the operator commands, in another shell:

  # the migrating role (a superuser here): migrate, tenant, key, admin, audit, leakcheck --create
  export DATABASE_URL='%[1]s'
  go run ./cmd/rowfence audit
  # --db: the serving role rowfence_app, as serve connects, for leakcheck's SQL vectors
  go run ./cmd/rowfence leakcheck --url %[3]s --create --mode %[4]s%[5]s --db '%[2]s'

`, owner, app, base, cfg.TenantMode, baseDomainFlag(cfg))
}

// baseDomainFlag is leakcheck's --base-domain for cfg's subdomain mode.
func baseDomainFlag(cfg config.Config) string {
	if cfg.TenantMode != httpapi.ModeSubdomain {
		return ""
	}
	return " --base-domain " + cfg.BaseDomain
}
