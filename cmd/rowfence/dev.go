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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/sql/seed"
)

// seedExistingFlag is the only way to let dev seed its public keys into a
// PostgreSQL it did not start itself: DATABASE_URL's, or a --data directory
// without pgserver's marker. Long on purpose: it says what it does.
const seedExistingFlag = "seed-public-keys-into-existing-database"

// runDev is `make run`: start PostgreSQL (a Docker container, or a local
// cluster kept in .pgdata), migrate, seed the demo tenants, print curl
// commands, and serve as the app role. It seeds only a server it created,
// unless told otherwise with --seed-public-keys-into-existing-database.
func runDev(ctx context.Context, args []string, env config.Config, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data", ".pgdata", "where the local cluster is kept between runs")
	seedExisting := fs.Bool(seedExistingFlag, false,
		"also seed the public demo keys into a server dev did not create: DATABASE_URL's, or a --data cluster of someone else's (never one with real data)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
	printCurls(stdout, cfg.Addr)
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

func printCurls(w io.Writer, addr string) {
	host := addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	fmt.Fprintf(w, `
rowfence is starting on http://%[1]s with demo tenants acme and globex. Try:

  ACME=%[2]s
  ACME_VIEWER=%[3]s
  GLOBEX=%[4]s

  curl -s %[1]s/v1/products -H 'X-Tenant-ID: acme' -H "Authorization: Bearer $ACME"
  curl -s %[1]s/v1/products/a2000000-0000-4000-8000-000000000001 -H 'X-Tenant-ID: globex' -H "Authorization: Bearer $GLOBEX"   # 404: acme's row
  curl -s %[1]s/v1/products -H 'X-Tenant-ID: globex' -H "Authorization: Bearer $ACME"   # 403: acme's key
  curl -s -X POST %[1]s/v1/products -H 'X-Tenant-ID: acme' -H "Authorization: Bearer $ACME_VIEWER" -H 'Content-Type: application/json' -d '{"name":"Flamethrower","price":4200}'   # 403: a viewer
  curl -s -X POST %[1]s/v1/api-keys -H 'X-Tenant-ID: acme' -H "Authorization: Bearer $ACME" -H 'Content-Type: application/json' -d '{"role":"member","name":"ci"}'

  PLATFORM=%[5]s
  curl -s %[1]s/v1/admin/tenants -H "Authorization: Bearer $PLATFORM"

`, host, demoAcmeAdmin, demoAcmeViewer, demoGlobexAdmin, demoPlatform)
}
