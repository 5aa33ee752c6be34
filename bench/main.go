// Command bench measures what tenant isolation and the product around it
// cost rowfence, each level side by side with its baseline in one run, and
// writes bench/RESULTS.md and bench/plot.svg:
//
//   - sql:   pgbench, the RLS policy against a hand-written WHERE on the same rows;
//   - exec:  rowfence's tenant-scoped execution (db.One) against the bare filtered statement;
//   - http:  `rowfence serve` under load against pgbench sending the identical SQL;
//   - scale: a tenant's list and get latency at 100k rows against 10M rows;
//   - fair:  a quiet tenant's p99 beside two saturating tenants against alone;
//   - large: every documented list, filter and sort on a tenant of 1M rows
//     against one of 1k (bench/large.go);
//   - export: a large tenant's export, download and import against COPY of the same rows;
//   - cells: a request routed to a tenant in a second cell against a single cell;
//   - move:  a tenant moved online between two clusters (cells.Move): its copy
//     rate against COPY between them, and the write pause its clients see.
//
// Run it with `make bench` (all) or `go run ./bench -only sql,exec`. It finds or
// starts PostgreSQL like `make run` (BENCH_DATABASE_URL, Docker, or a local
// cluster kept in .benchdata/ so that the 10M-row dataset is built once).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/pgserver"
)

type config struct {
	only         map[string]bool
	seconds      int
	rounds       int
	clients      int
	out          string
	scaleTenants int
	smallTenants int
	perTenant    int
	fairBefore   string
	exportRows   int
	moveRows     string
}

func main() {
	var cfg config
	only := flag.String("only", "sql,exec,http,scale,fair,large,export,cells,move", "levels to run: sql, exec, http, scale, fair, large, export, cells, move")
	flag.IntVar(&cfg.seconds, "seconds", 5, "seconds per measurement")
	flag.IntVar(&cfg.rounds, "rounds", 2, "rounds of each side-by-side comparison")
	flag.IntVar(&cfg.clients, "clients", 8, "concurrent clients (pgbench -c, Go workers, HTTP workers)")
	flag.StringVar(&cfg.out, "out", "bench", "folder for RESULTS.md and plot.svg")
	flag.IntVar(&cfg.scaleTenants, "scale-tenants", 10000, "tenants in the large scale dataset")
	flag.IntVar(&cfg.smallTenants, "small-tenants", 100, "tenants in the small scale dataset")
	flag.IntVar(&cfg.perTenant, "per-tenant", 1000, "products per tenant in every dataset")
	// d512c31: the last commit before fair sharing (issue 16, item 2).
	flag.StringVar(&cfg.fairBefore, "fair-before", "d512c31", "git ref whose rowfence is the fair level's before side")
	flag.IntVar(&cfg.exportRows, "export-rows", 1_000_000, "products of the tenant the export level exports")
	flag.StringVar(&cfg.moveRows, "move-rows", "100000,1000000", "products of the tenants the move level moves, comma-separated (and a hundredth as many users)")
	flag.Parse()
	cfg.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		cfg.only[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, cfg config) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// shared_buffers holds every dataset (about 3 GB), so that no comparison
	// measures copies from the OS page cache.
	srv, err := pgserver.Start(ctx, pgserver.Options{EnvURL: os.Getenv("BENCH_DATABASE_URL"), DataDir: ".benchdata", Log: log,
		Settings: []string{"shared_buffers=4GB", "max_connections=100"}})
	if err != nil {
		return err
	}
	defer srv.Stop(context.Background())
	e := env{serverURL: srv.URL, appPassword: randomHex(16)}
	rep := newReport(cfg)
	rep.facts(ctx, srv.URL)

	mid := dataset{name: "m", tenants: 1000, perTenant: cfg.perTenant, twin: true}
	small := dataset{name: "s", tenants: cfg.smallTenants, perTenant: cfg.perTenant}
	large := dataset{name: "l", tenants: cfg.scaleTenants, perTenant: cfg.perTenant}
	var sets []dataset
	if cfg.only["sql"] || cfg.only["exec"] || cfg.only["http"] {
		sets = append(sets, mid)
	}
	if cfg.only["scale"] {
		sets = append(sets, small, large)
	}
	if cfg.only["fair"] {
		sets = append(sets, fairSet)
	}
	for _, d := range sets {
		if err := e.ensure(ctx, d, logf); err != nil {
			return err
		}
	}
	if cfg.only["large"] {
		if err := ensureLarge(ctx, e); err != nil {
			return err
		}
	}
	// The migrations of the datasets created rowfence_app; give it this run's
	// password (the cells level, which makes its own databases, does too).
	if len(sets) > 0 || cfg.only["large"] {
		if err := setAppPassword(ctx, srv.URL, e.appPassword); err != nil {
			return err
		}
	}
	pgbenchBin := ""
	if cfg.only["sql"] || cfg.only["http"] {
		if pgbenchBin, err = findPgbench(); err != nil {
			return err
		}
	}
	if cfg.only["sql"] {
		if err := benchSQL(ctx, cfg, e, mid, pgbenchBin, rep); err != nil {
			return err
		}
	}
	if cfg.only["exec"] {
		if err := benchExec(ctx, cfg, e, mid, rep); err != nil {
			return err
		}
	}
	if cfg.only["http"] {
		if err := benchHTTP(ctx, cfg, e, mid, pgbenchBin, rep); err != nil {
			return err
		}
	}
	if cfg.only["export"] {
		if err := benchExport(ctx, cfg, e, rep); err != nil {
			return err
		}
	}
	if cfg.only["scale"] {
		if err := benchScale(ctx, cfg, e, small, large, rep); err != nil {
			return err
		}
	}
	if cfg.only["fair"] {
		if err := benchFair(ctx, cfg, e, cfg.fairBefore, rep); err != nil {
			return err
		}
	}
	if cfg.only["large"] {
		if err := benchLarge(ctx, cfg, e, rep); err != nil {
			return err
		}
	}
	if cfg.only["cells"] {
		if err := benchCells(ctx, cfg, e, rep); err != nil {
			return err
		}
	}
	if cfg.only["move"] {
		if err := benchMove(ctx, cfg, rep); err != nil {
			return err
		}
	}
	return rep.write()
}

func setAppPassword(ctx context.Context, url, password string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return db.SetAppPassword(ctx, conn, password)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func benchSQL(ctx context.Context, cfg config, e env, d dataset, bin string, rep *report) error {
	logf("sql level: pgbench, %d clients, %d rounds of %ds per script", cfg.clients, cfg.rounds, cfg.seconds)
	scriptsInOrder := sqlOrder
	res, err := pgbenchRounds(ctx, cfg, bin, e.appURL(d), d, scriptsInOrder)
	if err != nil {
		return err
	}
	rep.sql(res)
	return nil
}

// pgbenchRounds runs the scripts in turn, cfg.rounds times, and pools each
// script's rounds.
func pgbenchRounds(ctx context.Context, cfg config, bin, url string, d dataset, order []string) (map[string]result, error) {
	out := map[string]result{}
	for range cfg.rounds {
		for _, s := range order {
			r, err := pgbench(ctx, bin, url, s, d, cfg.clients, cfg.seconds)
			if err != nil {
				return nil, err
			}
			out[s] = merge(out[s], r)
		}
	}
	return out, nil
}

func benchExec(ctx context.Context, cfg config, e env, d dataset, rep *report) error {
	logf("exec level: db.One against the bare statement, %d workers, %d rounds of %ds", cfg.clients, cfg.rounds, cfg.seconds)
	pool, err := e.appPool(ctx, d, int32(cfg.clients))
	if err != nil {
		return err
	}
	defer pool.Close()
	ops := map[string]op{
		"scoped list": scopedList(pool, d), "bare list": bareList(pool, d),
		"scoped get": scopedGet(pool, d), "bare get": bareGet(pool, d),
		"scoped search": scopedSearch(pool, anyTenant(d)), "bare search": bareSearch(pool, anyTenant(d)),
		"naive search":         naiveSearch(pool, anyTenant(d)),
		"scoped search, large": scopedSearch(pool, largeTenant(d)), "bare search, large": bareSearch(pool, largeTenant(d)),
		"naive search, large": naiveSearch(pool, largeTenant(d)),
	}
	order := execOrder
	// Warm the statement caches of every connection.
	if _, err := interleave(ctx, 1, cfg.clients, time.Second, order, ops); err != nil {
		return err
	}
	res, err := interleave(ctx, cfg.rounds, cfg.clients, time.Duration(cfg.seconds)*time.Second, order, ops)
	if err != nil {
		return err
	}
	rep.exec(res)
	return nil
}

func benchHTTP(ctx context.Context, cfg config, e env, d dataset, bin string, rep *report) error {
	logf("http level: rowfence serve and a minimal server against pgbench with the same SQL, %d clients, %d rounds of %ds", cfg.clients, cfg.rounds, cfg.seconds)
	dir, err := os.MkdirTemp("", "rfbench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rowfence, err := build(ctx, dir, "github.com/rowfence/rowfence/cmd/rowfence")
	if err != nil {
		return err
	}
	minimalBin, err := build(ctx, dir, "github.com/rowfence/rowfence/bench/minimal")
	if err != nil {
		return err
	}
	s, err := startServe(ctx, rowfence, e.appURL(d))
	if err != nil {
		return err
	}
	defer s.stop()
	minimal, err := startServer(ctx, minimalBin, nil, e.appURL(d))
	if err != nil {
		return err
	}
	defer minimal.stop()
	client := httpClient(cfg.clients)
	// Each pair is an HTTP run and the pgbench script with its SQL; list and
	// get also run against the minimal server (bench/minimal), the reference
	// for what net/http, pgx and the loopback network cost here.
	pairs := [][2]string{{"http list", "list_rls.sql"}, {"http get", "get_rls.sql"}, {"http create", "insert_rls.sql"}}
	minimalOf := map[string]string{"http list": "minimal list", "http get": "minimal get"}
	servers := map[string]*server{}
	ops := map[string]op{}
	for label, o := range httpOps(s.base, client, d) {
		servers[label], ops[label] = s, o
	}
	minimalOps := httpOps(minimal.base, client, d)
	for label, m := range minimalOf {
		servers[m], ops[m] = minimal, minimalOps[label]
	}
	// One wrk script per kind of request (list, get, create), for both servers.
	kindOf := func(label string) string { return label[strings.Index(label, " ")+1:] }
	wrkBin := findWrk()
	wrkScripts := map[string]string{}
	if wrkBin != "" {
		for _, p := range pairs {
			kind := kindOf(p[0])
			if wrkScripts[kind], err = wrkScript(dir, kind, d); err != nil {
				return err
			}
		}
	}
	loadHTTP := func(label string, secs int) (result, error) {
		if wrkBin != "" {
			r, err := runWrk(ctx, wrkBin, servers[label].base, wrkScripts[kindOf(label)], cfg.clients, secs)
			r.label = label
			return r, err
		}
		return measure(ctx, label, cfg.clients, time.Duration(secs)*time.Second, ops[label])
	}
	// In each round: rowfence, the minimal server, then pgbench.
	var order [][2]string
	for _, p := range pairs {
		order = append(order, [2]string{p[0], ""})
		if m := minimalOf[p[0]]; m != "" {
			order = append(order, [2]string{m, ""})
		}
		order = append(order, [2]string{"", p[1]})
	}
	// Warm up: connections, prepared statements, the tenant cache.
	for _, o := range order {
		if o[0] != "" {
			if _, err := loadHTTP(o[0], 1); err != nil {
				return err
			}
		}
	}
	_, idleRSS := s.rss()
	httpRes := map[string]result{}
	pgRes := map[string]result{}
	one := config{rounds: 1, seconds: cfg.seconds, clients: cfg.clients}
	for range cfg.rounds {
		for _, o := range order {
			if o[0] != "" {
				r, err := loadHTTP(o[0], cfg.seconds)
				if err != nil {
					return err
				}
				httpRes[o[0]] = merge(httpRes[o[0]], r)
				continue
			}
			pr, err := pgbenchRounds(ctx, one, bin, e.appURL(d), d, []string{o[1]})
			if err != nil {
				return err
			}
			pgRes[o[1]] = merge(pgRes[o[1]], pr[o[1]])
		}
	}
	rssNow, rssPeak := s.rss()
	rep.http(httpRes, pgRes, pairs, minimalOf, idleRSS, rssNow, rssPeak, wrkBin != "")
	return nil
}

func benchScale(ctx context.Context, cfg config, e env, small, large dataset, rep *report) error {
	logf("scale: one client, list and get at %d rows against %d rows, %d rounds of %ds", small.rows(), large.rows(), cfg.rounds, cfg.seconds)
	sp, err := e.appPool(ctx, small, 2)
	if err != nil {
		return err
	}
	defer sp.Close()
	lp, err := e.appPool(ctx, large, 2)
	if err != nil {
		return err
	}
	defer lp.Close()
	if err := prewarm(ctx, e, small, large); err != nil {
		return err
	}
	ops := map[string]op{
		"list small": scopedList(sp, small), "list large": scopedList(lp, large),
		"get small": scopedGet(sp, small), "get large": scopedGet(lp, large),
	}
	order := []string{"list small", "list large", "get small", "get large"}
	if _, err := interleave(ctx, 1, 1, time.Second, order, ops); err != nil {
		return err
	}
	res, err := interleave(ctx, cfg.rounds, 1, time.Duration(cfg.seconds)*time.Second, order, ops)
	if err != nil {
		return err
	}
	rep.scale(res, small, large)
	return nil
}

// prewarm loads each dataset's table and indexes into shared buffers, so
// that neither side of the scale comparison measures a cold cache.
func prewarm(ctx context.Context, e env, sets ...dataset) error {
	for _, d := range sets {
		conn, err := pgx.Connect(ctx, e.adminURL(d))
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, `create extension if not exists pg_prewarm;
			select pg_prewarm(c.oid) from pg_class c
			where c.relname in ('products', 'products_pkey', 'products_tenant_created_idx')`)
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("prewarm %s: %w", d.dbName(), err)
		}
	}
	return nil
}
