package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// openCells opens the app (and, with platform administration on, the
// platform) pool of every cell CELLS names, checks each as serve checks the
// default cell's (db.CheckSafety), starts the cell's background jobs (its
// tenants' exports; the deletion purge runs from the catalog), and returns
// the set with def as the default cell, after checking that no cell is
// behind the default cell's migration version (cells.ErrBehind). stop
// closes what it opened.
//
// Each other cell shares its app pool's connections among its own tenants
// with a limiter of its own (newLimiter, sized from that pool): a tenant
// busy in one cell does not hold another cell's tenants back.
func openCells(ctx context.Context, cfg serveConfig, def *cells.Cell, newLimiter func(capacity int) *ratelimit.Limiter, tp trace.TracerProvider, log *slog.Logger) (set *cells.Set, stop func(), err error) {
	var closers []func()
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	all := []*cells.Cell{def}
	for _, u := range cfg.Cells {
		c := &cells.Cell{Name: u.Name}
		open := func(role string, pc *pgxpool.Config) (*pgxpool.Pool, error) {
			name := "CELLS " + u.Name + " (" + role + ")"
			pooler, err := adaptToPooler(ctx, pc, name, log)
			if err != nil {
				return nil, err
			}
			if role == "app" {
				c.AppPooled = pooler.TransactionPooled
			}
			db.Trace(pc, tp)
			db.GuardConnects(pc, role+"@"+u.Name, log)
			p, err := db.Open(ctx, pc)
			if err != nil {
				return nil, fmt.Errorf("cell %s: connect as %s: %w", u.Name, pc.ConnConfig.User, err)
			}
			closers = append(closers, p.Close)
			if err := db.CheckSafety(ctx, db.Unscoped(p)); err != nil {
				return nil, fmt.Errorf("cell %s (%s): %w", u.Name, role, err)
			}
			warnReach(ctx, p, log)
			return p, nil
		}
		appCfg, err := db.AppConfig("", u.URL, cfg.AppDatabasePassword)
		if err != nil {
			return nil, stop, usageError{"CELLS " + u.Name + ": " + err.Error()}
		}
		appCfg.MaxConns = cfg.pool.MaxConns
		if c.App, err = open("app", appCfg); err != nil {
			return nil, stop, err
		}
		c.Limiter = newLimiter(int(appCfg.MaxConns))
		if cfg.platform != nil {
			pc, err := db.PlatformConfig("", u.URL, cfg.PlatformDatabasePassword)
			if err != nil {
				return nil, stop, usageError{"CELLS " + u.Name + ": " + err.Error()}
			}
			// As the default cell's (serveConfig): River's two workers, each
			// export job holding two connections, and River's own polling.
			pc.MaxConns = max(pc.MaxConns, 6)
			if c.Platform, err = open("platform", pc); err != nil {
				return nil, stop, err
			}
			// Exports of the cell's tenants are enqueued in the cell's own
			// River schema (the exports trigger), so they run here.
			runner, err := jobs.Start(ctx, jobs.Config{Pool: c.Platform, Log: log.With("cell", u.Name),
				ExportMaxBytes: cfg.ExportMaxBytes})
			if err != nil {
				return nil, stop, fmt.Errorf("cell %s: start background jobs: %w", u.Name, err)
			}
			closers = append(closers, func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
				defer cancel()
				_ = runner.Stop(stopCtx)
			})
		}
		all = append(all, c)
	}
	if set, err = cells.NewSet(all...); err != nil {
		return nil, stop, err
	}
	if err := set.CheckVersions(ctx); err != nil {
		return nil, stop, err
	}
	if len(cfg.Cells) > 0 {
		log.Info("tenant cells", "cells", set.Names())
	}
	return set, stop, nil
}

// cellURLs are the migrating role's connection strings of every cell, the
// default (DATABASE_URL) first.
func cellURLs(env config.Config, why string) ([]cells.URL, error) {
	url, err := databaseURL(env, why)
	if err != nil {
		return nil, err
	}
	return append([]cells.URL{{Name: cells.Default, URL: url}}, env.Cells...), nil
}

// migrateCells brings every other cell (CELLS) to the version of this
// binary's migrations, as runMigrate did the default cell, and says so.
func migrateCells(ctx context.Context, env config.Config, stdout io.Writer, log *slog.Logger) error {
	for _, u := range env.Cells {
		if cfg, err := pgx.ParseConfig(u.URL); err == nil {
			if err := db.RequireSession(ctx, cfg); err != nil {
				return fmt.Errorf("cell %s: %w", u.Name, err)
			}
		}
		m, err := migrate.New(u.URL, log.With("cell", u.Name))
		if err != nil {
			return fmt.Errorf("cell %s: %w", u.Name, err)
		}
		err = migrateUp(ctx, m, env.AppDatabasePassword, env.PlatformDatabasePassword)
		var v int64
		if err == nil {
			v, err = m.Version(ctx)
		}
		m.Close()
		if err != nil {
			return fmt.Errorf("cell %s: %w", u.Name, err)
		}
		fmt.Fprintf(stdout, "cell %s at migration version %d\n", u.Name, v)
	}
	return nil
}

// connectCellAdminPool is connectAdminPool for the cell named name (the
// default cell: DATABASE_URL).
func connectCellAdminPool(ctx context.Context, env config.Config, name string) (*pgxpool.Pool, error) {
	if name == cells.Default {
		return connectAdminPool(ctx, env, "tenant administration connects as the migrating role")
	}
	for _, u := range env.Cells {
		if u.Name == name {
			cfg, err := pgxpool.ParseConfig(u.URL)
			if err != nil {
				return nil, usageError{"CELLS " + name + ": " + err.Error()}
			}
			cfg.MaxConns = 2
			db.AsOwner(cfg)
			return db.Open(ctx, cfg)
		}
	}
	return nil, usageError{fmt.Sprintf("cell %q is not configured: add name=url to CELLS", name)}
}

// cellsCmd lists the catalog's cells and placements, and registers cells.
type cellsCmd struct {
	List       cellsListCmd       `cmd:"" help:"List the tenant cells, their labels, tenant counts and whether CELLS configures them, as JSON."`
	Placements cellsPlacementsCmd `cmd:"" help:"List which cell holds each tenant, as JSON."`
	Register   cellsRegisterCmd   `cmd:"" help:"Register a cell that CELLS names, with labels to place tenants by."`
}

type cellsListCmd struct{}
type cellsPlacementsCmd struct{}
type cellsRegisterCmd struct {
	Name   string `required:"" help:"The cell's name, as CELLS names it."`
	Labels string `placeholder:"k=v,..." help:"Its labels, k=v pairs separated by commas (region=eu)."`
}

func (cellsListCmd) Run(r *runEnv) error { return runCells(r.ctx, "list", "", "", r.env, r.stdout) }
func (cellsPlacementsCmd) Run(r *runEnv) error {
	return runCells(r.ctx, "placements", "", "", r.env, r.stdout)
}
func (c *cellsRegisterCmd) Run(r *runEnv) error {
	return runCells(r.ctx, "register", c.Name, c.Labels, r.env, r.stdout)
}

// runCells runs a cells action against the catalog (DATABASE_URL).
func runCells(ctx context.Context, action, name, labels string, env config.Config, stdout io.Writer) error {
	conn, err := connectAdmin(ctx, env, "the catalog of cells is in DATABASE_URL's database")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	switch action {
	case "placements":
		p, err := cells.Placements(ctx, conn)
		if err != nil {
			return err
		}
		return enc.Encode(p)
	case "register":
		l, err := cells.ParseLabels("labels", labels)
		if err != nil {
			return usageError{"cells register: " + err.Error()}
		}
		info, err := cells.Register(ctx, conn, name, l)
		if err != nil {
			return usageError{"cells register: " + err.Error()}
		}
		return enc.Encode(info)
	}
	list, err := cells.List(ctx, conn)
	if err != nil {
		return err
	}
	type listed struct {
		cells.Info
		// Configured: this environment's CELLS (or DATABASE_URL) names it.
		Configured bool `json:"configured"`
	}
	out := make([]listed, 0, len(list))
	for _, c := range list {
		configured := c.Name == cells.Default
		for _, u := range env.Cells {
			configured = configured || u.Name == c.Name
		}
		out = append(out, listed{c, configured})
	}
	return enc.Encode(out)
}

// tenantMoveCmd moves a tenant to another cell online (cells.Move).
type tenantMoveCmd struct {
	Slug    string        `required:"" help:"The tenant."`
	To      string        `required:"" help:"The cell to move it to."`
	Settle  time.Duration `default:"6s" help:"How long the source stays frozen after the switch: at least the servers' TENANT_CACHE_TTL."`
	Cleanup bool          `help:"Finish (placement switched) or undo (not switched) a move that did not end, instead of moving."`
	From    string        `help:"With --cleanup: the cell the move came from."`
	// ReplicationRole: the subscription's connection to the source as a
	// role that needs no superuser (docs/SCALING.md, "The replication role").
	ReplicationRole string `placeholder:"ROLE" help:"Connect the target's subscription to the source cell as this role (LOGIN REPLICATION BYPASSRLS, SELECT on the tenant tables; no superuser), with REPLICATION_DATABASE_PASSWORD, instead of as the source's url."`
}

func (c *tenantMoveCmd) Run(r *runEnv) error { return runTenantMove(r.ctx, *c, r.env, r.stdout) }

// runTenantMove moves a tenant to another cell online (cells.Move), or with
// --cleanup finishes (placement switched) or undoes (not switched) a move
// that did not end. An interrupt before the switch undoes the move. Every
// connection is a cell's DATABASE_URL or CELLS url, which must be a
// superuser's here (docs/SCALING.md says why), but for the subscription's
// connection to the source, which --replication-role makes a role that is
// no superuser.
func runTenantMove(ctx context.Context, c tenantMoveCmd, env config.Config, stdout io.Writer) error {
	if !tenancy.ValidSlug(c.Slug) || !cells.ValidName(c.To) {
		return usageError{"tenant move: --slug must be a tenant slug and --to a cell's name"}
	}
	urls, err := cellURLs(env, "the catalog is in DATABASE_URL's database")
	if err != nil {
		return err
	}
	// The same orchestration as the API's move job (cells.Movers, cells.Move).
	movers, err := cells.OpenMovers(urls, c.Settle)
	if err != nil {
		return usageError{"tenant move: " + err.Error()}
	}
	defer movers.Close()
	var id uuid.UUID
	var placed string
	if err := movers.Catalog().QueryRow(ctx, "SELECT id, cell FROM tenants WHERE slug = $1", c.Slug).Scan(&id, &placed); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return usageError{fmt.Sprintf("tenant move: no tenant %q", c.Slug)}
		}
		return fmt.Errorf("tenant move: %w", err)
	}
	from := placed
	if c.Cleanup {
		if c.From == "" {
			return usageError{"tenant move --cleanup: name the cell the move came from with --from"}
		}
		from = c.From
	}
	m, err := movers.Move(id, from, c.To)
	if err != nil {
		return usageError{"tenant move: " + err.Error()}
	}
	if c.ReplicationRole != "" {
		if m.SourceConnString, err = withRole(m.SourceConnString, c.ReplicationRole, env.ReplicationDatabasePassword); err != nil {
			return usageError{"tenant move --replication-role: " + err.Error()}
		}
	}
	if c.Cleanup {
		if placed == c.To {
			return m.Finish(ctx) // switched: remove what the source holds
		}
		return m.Abort(ctx) // not switched: remove what the target holds
	}
	rep, err := m.Run(ctx)
	if errors.Is(err, db.ErrInvalid) {
		return usageError{"tenant move: " + err.Error()}
	}
	if err != nil {
		return fmt.Errorf("tenant move: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"tenant": c.Slug, "from": from, "to": c.To, "rows": rep.Rows,
		"copy_ms": rep.Copy.Milliseconds(), "writes_frozen_ms": rep.Frozen.Milliseconds()})
}

// withRole is the connection string connString with its user and password
// replaced, all else (host, database, TLS settings) kept: a URL gets new
// user information; a key=value string gets user and password appended
// (libpq takes the last value of a keyword).
func withRole(connString, role, password string) (string, error) {
	if !validRoleName(role) {
		return "", fmt.Errorf("%q is not a role name", role)
	}
	if strings.Contains(connString, "://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", errors.New("the source cell's url does not parse")
		}
		u.User = url.User(role)
		if password != "" {
			u.User = url.UserPassword(role, password)
		}
		return u.String(), nil
	}
	out := connString + " user=" + role
	if password != "" {
		out += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password) + "'"
	}
	return out, nil
}

// validRoleName: a plain PostgreSQL identifier, 1-63 characters.
func validRoleName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
