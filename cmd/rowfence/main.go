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
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/config"
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

// commandsUsage is the first half of `rowfence help`; config.Usage writes
// the second, the environment variables.
const commandsUsage = `rowfence: a multi-tenant REST backend whose tenant isolation PostgreSQL enforces.

Usage:
  rowfence migrate [up|down|status]            apply, roll back one, or list migrations (DATABASE_URL)
  rowfence serve [-h]                          serve the API (APP_DATABASE_URL, or derived from DATABASE_URL); -h: its variables
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
  rowfence tenant archive --slug S             move a suspended tenant's rows into its archive (409 tenant-archived)
  rowfence tenant restore --slug S             put an archived tenant's rows back and make it active
  rowfence admin key create|list|revoke        platform admin keys for /v1/admin (DATABASE_URL)
  rowfence audit [--format json] [--accept-role R]  check the isolation in the catalog (sql/audit); exit 1 on a defect (DATABASE_URL)
  rowfence leakcheck --url U (--create | --tenant-a A --tenant-b B) [--mode M] [--db DSN]
                                               attack a deployment as A against B; exit 1 on a leak
                                               (keys in LEAKCHECK_KEY_A/B; --create onboards two tenants via DATABASE_URL)
  rowfence version                             print the module version, VCS revision and time, and Go version
  rowfence dev [--data DIR]                    make run: start a local PostgreSQL (Docker, or a cluster in DIR, default .pgdata),
                                               migrate, seed the demo tenants and their public keys, serve. Only in the dev
                                               build (go run -tags dev ./cmd/rowfence dev); it refuses DATABASE_URL unless
                                               given --seed-public-keys-into-existing-database
`

func usage() string {
	return commandsUsage + "\nEnvironment (read by the commands in brackets; empty is unset):\n" + config.Usage("")
}

// run is the whole program; main only supplies the process's environment, so
// tests can run it in-process. getenv is read once, by config.Load, for the
// variables the subcommand reads.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage())
		return usageError{"missing subcommand"}
	}
	cmd, rest := args[1], args[2:]
	env, err := config.Load(getenv, cmd)
	if err != nil {
		return usageError{err.Error()}
	}
	logOut := stderr
	var lw *logWriter
	if cmd == "serve" || cmd == "dev" { // a line per request: batch the writes
		lw = newLogWriter(stderr)
		defer lw.Flush()
		logOut = lw
	}
	log := newLogger(env.LogFormat, logOut)
	if lw != nil {
		log = slog.New(flushingHandler{log.Handler(), lw})
	}
	switch cmd {
	case "migrate":
		return runMigrate(ctx, rest, env, stdout, log)
	case "serve":
		return runServe(ctx, rest, env, stderr, log)
	case "tenant":
		return runTenant(ctx, rest, env, stdout, stderr)
	case "key":
		return runKey(ctx, rest, env, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, env, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, env, stdout, log)
	case "audit":
		return runAudit(ctx, rest, env, stdout, stderr)
	case "leakcheck":
		return runLeakcheck(ctx, rest, env, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return nil
	default:
		fmt.Fprint(stderr, usage())
		return usageError{fmt.Sprintf("unknown subcommand %q", cmd)}
	}
}

// newLogger writes format ("json" or "text", as config.Load checked it)
// to w.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// databaseURL is DATABASE_URL, or a usage error saying what needs it.
func databaseURL(env config.Config, what string) (string, error) {
	if env.DatabaseURL == "" {
		return "", usageError{"DATABASE_URL is not set: " + what}
	}
	return env.DatabaseURL, nil
}

// connectAdmin connects as the migrating role (DATABASE_URL); why says what
// the command needs it for when it is not set. Close the connection after use.
func connectAdmin(ctx context.Context, env config.Config, why string) (*pgx.Conn, error) {
	url, err := databaseURL(env, why)
	if err != nil {
		return nil, err
	}
	return pgx.Connect(ctx, url)
}

// connectAdminPool is connectAdmin for work that runs through db.One or
// db.Tx under a tenant's scope: its connections act as rowfence_owner, which
// RLS binds, even when DATABASE_URL is a superuser.
func connectAdminPool(ctx context.Context, env config.Config, why string) (*pgxpool.Pool, error) {
	url, err := databaseURL(env, why)
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
