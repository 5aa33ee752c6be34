// Command rowfence is the one binary: it migrates, serves, and administers
// tenants. Run `rowfence --help` for the commands, and `rowfence COMMAND
// --help` for one's flags and environment; exit statuses are in exitCode. Built with -tags dev
// (make run) it also has `rowfence dev`, which starts a local PostgreSQL and
// seeds public demo keys; the default build has neither (dev.go, nodev.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rowfence:", err)
	}
	os.Exit(exitCode(err))
}

// The exit statuses, for a CI job to tell apart (README, "The binary").
const (
	exitClean   = 0 // done; the audit or leakcheck found nothing
	exitFinding = 1 // the audit found a defect, or leakcheck a leak
	exitUsage   = 2 // the command line or the environment is wrong
	exitFailed  = 3 // could not run: database unreachable, dead URL, server error
)

// usageError is a mistake in the command line or the environment
// (exit status 2): running again unchanged cannot succeed.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// findingError is what the audit and leakcheck return when they found a
// defect or a leak (exit status 1): the check ran, and failed.
type findingError struct{ msg string }

func (e findingError) Error() string { return e.msg }

// exitCode is err's exit status: 0 for nil, 1 a finding, 2 a usage error
// (ours or the parser's), and 3 for anything else, which kept the command
// from running to its end.
func exitCode(err error) int {
	var ue usageError
	var fe findingError
	var pe *kong.ParseError
	switch {
	case err == nil:
		return exitClean
	case errors.As(err, &fe):
		return exitFinding
	case errors.As(err, &ue), errors.As(err, &pe):
		return exitUsage
	}
	return exitFailed
}

// cli is the command line: every command is a struct whose fields are its
// flags and arguments (kong tags) and whose Run method does it, given the
// runEnv.
type cli struct {
	Migrate   migrateCmd   `cmd:"" help:"Apply, roll back one, or list migrations (DATABASE_URL)."`
	Serve     serveCmd     `cmd:"" help:"Serve the API (APP_DATABASE_URL, or derived from DATABASE_URL)."`
	Tenant    tenantCmd    `cmd:"" help:"Create, list, limit, suspend, delete, export and import tenants (DATABASE_URL)."`
	Key       keyCmd       `cmd:"" help:"Create, list and revoke a tenant's API keys (DATABASE_URL)."`
	Admin     adminCmd     `cmd:"" help:"Platform admin keys for /v1/admin (DATABASE_URL)."`
	Audit     auditCmd     `cmd:"" help:"Check the isolation in the database's catalog (sql/audit); exit 1 on a defect (DATABASE_URL)."`
	Cells     cellsCmd     `cmd:"" help:"List the tenant cells and placements, register a cell (docs/SCALING.md; DATABASE_URL)."`
	Leakcheck leakcheckCmd `cmd:"" help:"Attack a running deployment as tenant A against tenant B; exit 1 on a leak."`
	Version   versionCmd   `cmd:"" help:"Print the module version, VCS revision and time, and Go version of the build."`
	Dev       devCmd       `cmd:"" help:"make run: start a local PostgreSQL, migrate, seed the demo tenants, serve (dev build only)."`
}

// runEnv is what every command's Run is given.
type runEnv struct {
	ctx            context.Context
	env            config.Config
	stdout, stderr io.Writer
	log            *slog.Logger
	// accessLog is log's output when its format is JSON: serve writes the
	// access log's lines there itself (httpapi.Config.AccessLog); nil
	// otherwise.
	accessLog io.Writer
}

// description heads `rowfence --help`.
const description = `A multi-tenant REST backend whose tenant isolation PostgreSQL enforces.

Flags may come before or after arguments. "rowfence help [COMMAND...]" is "rowfence [COMMAND...] --help".`

// exitCodesHelp is the end of `rowfence --help`, above the environment.
const exitCodesHelp = `Exit status:
  0  done; audit or leakcheck found nothing
  1  a finding: audit found a defect, leakcheck a leak
  2  a usage error: unknown command or flag, missing argument, bad value (flag or environment variable)
  3  could not run: database unreachable, dead URL, server error, the database refused the change
`

// helpExit is how a --help stops the parse: kong calls its Exit hook after
// printing, which panics with it for run to recover, so that run returns
// (tests call it in-process) instead of exiting.
type helpExit struct{ code int }

// printHelp is kong's help followed by the environment variables the
// command reads, from the one table (config.Vars); the top level adds the
// exit statuses and every variable.
func printHelp(opts kong.HelpOptions, kctx *kong.Context) error {
	if err := kong.DefaultHelpPrinter(opts, kctx); err != nil {
		return err
	}
	w := kctx.Stdout
	node := kctx.Selected()
	if node == nil {
		fmt.Fprint(w, "\n"+exitCodesHelp+"\nEnvironment (read by the commands in brackets; empty is unset):\n"+config.Usage(""))
		return nil
	}
	for node.Parent != nil && node.Parent.Type == kong.CommandNode {
		node = node.Parent
	}
	if vars := config.Usage(node.Name); vars != "" {
		fmt.Fprint(w, "\nEnvironment (empty is unset):\n"+vars)
	}
	return nil
}

// newParser is the command line's parser, writing help to stdout.
func newParser(stdout, stderr io.Writer) (*kong.Kong, error) {
	return kong.New(&cli{}, kong.Name("rowfence"), kong.Description(description),
		kong.Writers(stdout, stderr), kong.Help(printHelp),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Exit(func(code int) { panic(helpExit{code}) }))
}

// run is the whole program; main only supplies the process's environment, so
// tests can run it in-process. getenv is read once, by config.Load, for the
// variables the command reads. Help goes to stdout and returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	args = args[1:]
	if len(args) > 0 && args[0] == "help" { // rowfence help tenant import
		args = append(args[1:len(args):len(args)], "--help")
	}
	parser, err := newParser(stdout, stderr)
	if err != nil {
		return err // a mistake in the declarations: tests catch it
	}
	defer func() {
		if p := recover(); p != nil {
			h, ok := p.(helpExit)
			if !ok {
				panic(p)
			}
			if err = nil; h.code != 0 {
				err = usageError{"usage"}
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		// Say where the help is; the help itself is too long for an error.
		where := "rowfence"
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			where = pe.Context.Selected().FullPath()
		}
		return fmt.Errorf("%w (%s --help shows the usage)", err, where)
	}
	cmd := strings.Fields(kctx.Command())[0]
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
	var accessLog io.Writer
	if env.LogFormat != "text" {
		accessLog = logOut
	}
	return kctx.Run(&runEnv{ctx: ctx, env: env, stdout: stdout, stderr: stderr, log: log, accessLog: accessLog})
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
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, usageError{"DATABASE_URL: " + err.Error()}
	}
	return pgx.ConnectConfig(ctx, cfg)
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
