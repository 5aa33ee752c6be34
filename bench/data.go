package main

import (
	"context"
	"embed"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/migrate"
)

//go:embed sql/*.sql
var scripts embed.FS

// dataset is one bench database: tenants x perTenant products.
type dataset struct {
	name      string
	tenants   int
	perTenant int
	twin      bool // also build bench_products, the hand-filtered twin
}

func (d dataset) rows() int { return d.tenants * d.perTenant }

func (d dataset) dbName() string {
	return fmt.Sprintf("rowfence_bench_%s_%dx%d", d.name, d.tenants, d.perTenant)
}

// env is a bench run's server and credentials.
type env struct {
	serverURL   string // superuser
	appPassword string
}

func (e env) adminURL(d dataset) string { return withDB(e.serverURL, d.dbName(), "", "") }

func (e env) appURL(d dataset) string {
	return withDB(e.serverURL, d.dbName(), db.AppRole, e.appPassword)
}

func withDB(connString, name, user, password string) string {
	u, err := url.Parse(connString)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// ensure creates, migrates and fills the dataset's database unless a
// previous run left it complete (it is kept in the bench cluster).
func (e env) ensure(ctx context.Context, d dataset, logf func(string, ...any)) error {
	conn, err := pgx.Connect(ctx, e.serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", d.dbName()).Scan(&exists); err != nil {
		return err
	}
	if exists {
		complete, err := e.complete(ctx, d)
		if err == nil && complete {
			// Kept from an earlier run: bring its schema up to date.
			m, err := migrate.New(e.adminURL(d), nil)
			if err != nil {
				return err
			}
			defer m.Close()
			if _, err = m.Up(ctx); err != nil || !d.twin {
				return err
			}
			return e.upgradeTwin(ctx, d)
		}
		if _, err := conn.Exec(ctx, "drop database "+pgx.Identifier{d.dbName()}.Sanitize()+" with (force)"); err != nil {
			return err
		}
	}
	logf("building dataset %s: %d tenants x %d products = %d rows", d.dbName(), d.tenants, d.perTenant, d.rows())
	start := time.Now()
	if _, err := conn.Exec(ctx, "create database "+pgx.Identifier{d.dbName()}.Sanitize()); err != nil {
		return err
	}
	m, err := migrate.New(e.adminURL(d), nil)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return err
	}
	admin, err := pgx.Connect(ctx, e.adminURL(d))
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	files := []string{"sql/data.sql"}
	if d.twin {
		files = append(files, "sql/twin.sql", "sql/twin_search.sql", "sql/large.sql")
	}
	for _, f := range files {
		if err := runScript(ctx, admin, f, d.tenants, d.perTenant); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	if _, err := admin.Exec(ctx, "vacuum analyze"); err != nil {
		return err
	}
	// Marks the dataset complete for later runs.
	if _, err := admin.Exec(ctx, "comment on database "+pgx.Identifier{d.dbName()}.Sanitize()+" is 'rowfence bench v4: complete'"); err != nil {
		return err
	}
	logf("built %s in %s", d.dbName(), time.Since(start).Round(time.Second))
	return nil
}

// upgradeTwin brings a kept dataset with a twin up to sql/twin_search.sql
// and sql/large.sql.
func (e env) upgradeTwin(ctx context.Context, d dataset) error {
	admin, err := pgx.Connect(ctx, e.adminURL(d))
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	var hasColumn, hasLarge bool
	if err := admin.QueryRow(ctx, `select
		exists (select 1 from pg_attribute where attrelid = 'bench_products'::regclass and attname = 'name_lower' and not attisdropped),
		exists (select 1 from tenants where slug = 'bench-large')`).Scan(&hasColumn, &hasLarge); err != nil {
		return err
	}
	var files []string
	if !hasColumn {
		files = append(files, "sql/twin_search.sql")
	}
	if !hasLarge {
		files = append(files, "sql/large.sql")
	}
	for _, f := range files {
		if err := runScript(ctx, admin, f, d.tenants, d.perTenant); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	if len(files) > 0 {
		_, err = admin.Exec(ctx, "analyze")
	}
	return err
}

func (e env) complete(ctx context.Context, d dataset) (bool, error) {
	conn, err := pgx.Connect(ctx, e.serverURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var comment *string
	err = conn.QueryRow(ctx, "select shobj_description(oid, 'pg_database') from pg_database where datname = $1", d.dbName()).Scan(&comment)
	return err == nil && comment != nil && *comment == "rowfence bench v4: complete", err
}

// runScript runs a bench SQL file statement by statement in one transaction;
// statements end with ";" at the end of a line, and may use $1 (tenants) and
// $2 (products per tenant).
func runScript(ctx context.Context, conn *pgx.Conn, name string, tenants, perTenant int) error {
	raw, err := scripts.ReadFile(name)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, stmt := range strings.Split(string(raw), ";\n") {
			stmt = stripComments(stmt)
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			var args []any
			if strings.Contains(stmt, "$2") {
				args = []any{tenants, perTenant}
			} else if strings.Contains(stmt, "$1") {
				args = []any{tenants}
			}
			if _, err := tx.Exec(ctx, stmt, args...); err != nil {
				return fmt.Errorf("%w\n%s", err, stmt)
			}
		}
		return nil
	})
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// appPool connects as rowfence_app to the dataset. Its sessions run every
// prepared statement with its generic plan: rowfence forces that for the
// statements PostgreSQL would otherwise plan afresh on every execution
// (db.genericPlan), paying for it in its settings statement; the bare side of
// the execution-level comparison gets the same plan caching for free, so
// that the comparison measures isolation, not planning.
func (e env) appPool(ctx context.Context, d dataset, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(e.appURL(d))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	return db.Open(ctx, cfg)
}
