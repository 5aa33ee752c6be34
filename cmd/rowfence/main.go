// Command rowfence is the one binary: it migrates, serves, and administers
// tenants. Run `rowfence help` for the subcommands. Built with -tags dev
// (make run) it also has `rowfence dev`, which starts a local PostgreSQL and
// seeds public demo keys; the default build has neither (dev.go, nodev.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rowfence:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `rowfence: a multi-tenant REST backend whose tenant isolation PostgreSQL enforces.

Usage:
  rowfence migrate [up|down|status]            apply, roll back one, or list migrations (DATABASE_URL)
  rowfence serve                               serve the API (APP_DATABASE_URL, or derived from DATABASE_URL)
  rowfence tenant create --slug S --name N --admin-email E [--admin-name N]
                                               create a tenant, its first admin user and API key (printed once)
  rowfence key create --tenant S --role R [--user EMAIL] [--name N] [--expires T]
                                               create an API key (printed once) for a user of tenant S
  rowfence key list --tenant S                 list tenant S's API keys as JSON
  rowfence key revoke --tenant S --id ID       revoke an API key
  rowfence tenant list                         list tenants as JSON (DATABASE_URL)
  rowfence tenant limits --slug S [--rate R] [--burst B] [--concurrency N] [--statement-timeout D]
                                               set a tenant's own limits ("default" clears one)
  rowfence tenant suspend|activate --slug S    refuse or allow a tenant's requests (activate also cancels a deletion)
  rowfence tenant delete --slug S [--grace D]  delete a tenant and all its rows now, or mark it and purge after D
  rowfence tenant purge                        delete the tenants whose grace period is over
  rowfence tenant export --slug S [--out F]    write a consistent snapshot of a tenant's rows (docs/EXPORT.md)
  rowfence tenant import --slug T FILE         restore an export into a new or empty tenant, all or nothing
  rowfence admin key create|list|revoke        platform admin keys for /v1/admin (DATABASE_URL)
  rowfence audit [--format json] [--accept-role R]  check the isolation in the catalog (sql/audit); exit 1 on a defect (DATABASE_URL)
  rowfence leakcheck --url U (--create | --tenant-a A --tenant-b B) [--mode M] [--db DSN]
                                               attack a deployment as A against B; exit 1 on a leak
                                               (keys in LEAKCHECK_KEY_A/B; --create onboards two tenants via DATABASE_URL)
  rowfence dev [--data DIR]                    make run: start a local PostgreSQL (Docker, or a cluster in DIR, default .pgdata),
                                               migrate, seed the demo tenants and their public keys, serve. Only in the dev
                                               build (go run -tags dev ./cmd/rowfence dev); it refuses DATABASE_URL unless
                                               given --seed-public-keys-into-existing-database

Environment:
  DATABASE_URL           the migrating role: may create roles and own tables; never used to serve
  APP_DATABASE_URL       the rowfence_app role's connection, used by serve
  APP_DATABASE_PASSWORD  rowfence_app's password: migrate sets it, serve uses it when deriving from DATABASE_URL
  PLATFORM_DATABASE_URL  rowfence_platform's connection: turns on /v1/admin, exports and background jobs
  PLATFORM_DATABASE_PASSWORD  its password: migrate sets it; serve derives the connection from DATABASE_URL with it
  PURGE_INTERVAL         how often tenants past their deletion grace period are purged (default 1m; 0: never)
  ADDR                   listen address (default :8080)
  CURSOR_KEY             secret (>= 32 bytes) signing list cursors; share it across instances (default: random per process)
  TENANT_CACHE_TTL       how long a resolved tenant is cached, e.g. 5s (default 5s; 0 disables)
  SHUTDOWN_TIMEOUT       how long in-flight requests may finish after SIGTERM (default 15s)
  STATEMENT_TIMEOUT      statement_timeout of every request's SQL, set with the tenant (default 5s; 0: the database's)
  REQUEST_TIMEOUT        deadline of a request's database work, waiting for a connection included (default 10s; 0: none)
  TENANT_MODE            how requests name their tenant: header (X-Tenant-ID, default), subdomain, path (/t/{slug}/v1/...) or token
  BASE_DOMAIN            subdomain mode: tenants are {slug}.BASE_DOMAIN
  AUTH_CACHE_TTL         how long a verified credential is cached; revocation takes effect within it (default 5s; 0 disables)
  AUTH_FAILURE_LIMIT     failed credentials a client address may send per AUTH_FAILURE_WINDOW before 429 auth-throttled (default 60; 0: no throttle)
  AUTH_FAILURE_WINDOW    the window of AUTH_FAILURE_LIMIT (default 1m)
  TRUSTED_PROXIES        proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For names the client address; default: none
  JWT_HS256_SECRET       enables HS256 bearer tokens (>= 32 bytes)
  JWT_PUBLIC_KEYS_FILE   PEM file of RSA (RS256) and P-256 (ES256) public keys; enables those tokens
  JWT_ISSUER, JWT_AUDIENCE   required with either: the tokens' iss and aud
  JWT_TENANT_CLAIM, JWT_USER_CLAIM, JWT_ROLE_CLAIM   claim names (default tenant_id, sub, role)
  JWT_LEEWAY             clock skew allowed on exp and nbf (default 30s)
  RATE_LIMIT, RATE_BURST each tenant's default token bucket: requests/s (default 100; 0: none) and size (default 200)
  TENANT_CONCURRENCY     each tenant's default cap on requests doing database work at once (default half the pool; 0: none)
  ACQUIRE_TIMEOUT        longest wait for a pooled connection, then 503 (default 2s)
  METRICS_ADDR           private listener for Prometheus /metrics, e.g. 127.0.0.1:9090
  METRICS_PPROF          true: also serve Go's profiler (/debug/pprof/) on METRICS_ADDR
  METRICS_TOKEN          also serve /metrics on the API listener to this bearer token
  METRICS_TENANT_LABELS  tenants with their own metrics label per instance (default 100; the rest: other)
  CORS_ALLOWED_ORIGINS   browser origins allowed to call the API, comma-separated (https://app.example.com), or *; default: CORS off
  LOG_FORMAT             json (default) or text
`

// run is the whole program; main only supplies the process's environment, so
// tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return usageError{"missing subcommand"}
	}
	cmd, rest := args[1], args[2:]
	logOut := stderr
	var lw *logWriter
	if cmd == "serve" || cmd == "dev" { // a line per request: batch the writes
		lw = newLogWriter(stderr)
		defer lw.Flush()
		logOut = lw
	}
	log, err := newLogger(getenv("LOG_FORMAT"), logOut)
	if err != nil {
		return err
	}
	if lw != nil {
		log = slog.New(flushingHandler{log.Handler(), lw})
	}
	switch cmd {
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, log)
	case "serve":
		return runServe(ctx, rest, getenv, log)
	case "tenant":
		return runTenant(ctx, rest, getenv, stdout, stderr)
	case "key":
		return runKey(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, getenv, stdout, log)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "leakcheck":
		return runLeakcheck(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown subcommand %q", cmd)}
	}
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch strings.ToLower(format) {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	default:
		return nil, usageError{fmt.Sprintf("LOG_FORMAT must be json or text, not %q", format)}
	}
}

// requireEnv returns getenv(name) or a clear error.
func requireEnv(getenv func(string) string, name, what string) (string, error) {
	v := getenv(name)
	if v == "" {
		return "", usageError{fmt.Sprintf("%s is not set: %s", name, what)}
	}
	return v, nil
}

// connectAdmin connects as the migrating role (DATABASE_URL); why says what
// the command needs it for when it is not set. Close the connection after use.
func connectAdmin(ctx context.Context, getenv func(string) string, why string) (*pgx.Conn, error) {
	url, err := requireEnv(getenv, "DATABASE_URL", why)
	if err != nil {
		return nil, err
	}
	return pgx.Connect(ctx, url)
}

// connectAdminPool is connectAdmin for work that runs through db.One or
// db.Tx under a tenant's scope: its connections act as rowfence_owner, which
// RLS binds, even when DATABASE_URL is a superuser.
func connectAdminPool(ctx context.Context, getenv func(string) string, why string) (*pgxpool.Pool, error) {
	url, err := requireEnv(getenv, "DATABASE_URL", why)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, usageError{"DATABASE_URL: " + err.Error()}
	}
	cfg.MaxConns = 2
	db.AsOwner(cfg)
	return db.Open(ctx, cfg)
}

// parseFlags parses a subcommand's flags and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
