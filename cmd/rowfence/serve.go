package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// serveConfig is what serve runs with: the environment's settings and the
// two pools they name.
type serveConfig struct {
	config.Config
	pool *pgxpool.Config
	// platform is the /v1/admin pool's configuration; nil: disabled.
	platform *pgxpool.Config
	// accessLog is runEnv.accessLog (httpapi.Config.AccessLog).
	accessLog io.Writer
}

// newServeConfig derives the pools from env: the app role's from
// APP_DATABASE_URL, or from DATABASE_URL and APP_DATABASE_PASSWORD; the
// platform role's, which turns platform administration on, from
// PLATFORM_DATABASE_URL, or from DATABASE_URL and PLATFORM_DATABASE_PASSWORD.
// dev sets DatabaseURL and the passwords to the server it started.
func newServeConfig(env config.Config) (serveConfig, error) {
	cfg := serveConfig{Config: env}
	var err error
	if cfg.pool, err = db.AppConfig(env.AppDatabaseURL, env.DatabaseURL, env.AppDatabasePassword); err != nil {
		return cfg, usageError{err.Error()}
	}
	if env.PlatformDatabaseURL != "" || (env.DatabaseURL != "" && env.PlatformDatabasePassword != "") {
		if cfg.platform, err = db.PlatformConfig(env.PlatformDatabaseURL, env.DatabaseURL, env.PlatformDatabasePassword); err != nil {
			return cfg, usageError{err.Error()}
		}
		// River's two workers and its own polling; an export job holds two
		// connections at once (lifecycle.WriteExport: one reads the
		// snapshot, one writes the chunks), so two exports need four. A
		// larger pool_max_conns in the URL is kept.
		cfg.platform.MaxConns = max(cfg.platform.MaxConns, 6)
	}
	return cfg, nil
}

// defaultGCPercent is the server's garbage collection target unless GOGC is
// set. A request's garbage is small and short-lived (a list page is about
// 20 KB) while the live heap is a few MiB, so at Go's default of 100 the
// collector ran some 25 times a second under load; 200 measured 4-19% more
// list requests/s for about 4 MiB more RSS (bench/RESULTS.md). GOGC and
// GOMEMLIMIT still apply as the Go runtime documents them.
const defaultGCPercent = 200

// tuneGC sets defaultGCPercent unless GOGC is set (config.Config.GOGC).
func tuneGC(gogc string) {
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// serveMetrics serves /metrics, unauthenticated, on its own (private)
// listener for Prometheus to scrape, and Go's profiler under /debug/pprof/
// when pprof is set (METRICS_PPROF).
func serveMetrics(addr string, m *metrics.Metrics, pprof bool, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// adaptToPooler looks for a connection pooler in front of the server that
// cfg (the pool of the connection string named name) connects to, and runs
// the pool in an exec mode that works through it, or refuses with one message
// when the connection string sets one that cannot (db.AdaptToPooler). It logs
// one line when it finds a transaction pooler.
func adaptToPooler(ctx context.Context, cfg *pgxpool.Config, name string, log *slog.Logger) (db.Pooler, error) {
	before := cfg.ConnConfig.DefaultQueryExecMode
	p, err := db.ProbePooler(ctx, cfg.ConnConfig)
	if err != nil {
		return p, fmt.Errorf("connect as %s (%s): %w", cfg.ConnConfig.User, name, err)
	}
	note, err := db.AdaptToPooler(cfg, p)
	if err != nil {
		return p, usageError{name + ": " + err.Error()}
	}
	if note == "" {
		return p, nil
	}
	level := slog.LevelInfo
	if cfg.ConnConfig.DefaultQueryExecMode != before {
		level = slog.LevelWarn
	}
	attrs := []any{"connection", name}
	if name == "PLATFORM_DATABASE_URL" {
		attrs = append(attrs, "jobs", "River polls for new jobs (no LISTEN)")
	}
	log.Log(ctx, level, note, attrs...)
	return p, nil
}

// serveCmd takes no flags: everything it reads is in the environment, which
// its --help lists (printHelp, from config.Vars).
type serveCmd struct{}

func (serveCmd) Run(r *runEnv) error {
	cfg, err := newServeConfig(r.env)
	if err != nil {
		return err
	}
	cfg.accessLog = r.accessLog
	return serve(r.ctx, cfg, r.log)
}

// serverTLS is the API listener's TLS configuration for cert
// (TLS_CERT_FILE and TLS_KEY_FILE), or nil for plain HTTP. TLS 1.2 is the
// floor (RFC 8996 deprecates 1.0 and 1.1; RFC 9325, section 3.1.1); the
// cipher suites and curves are Go's defaults, kept current with the
// toolchain (forward-secret key exchange only since Go 1.22). The
// certificate is read once: renewing it takes a restart (docs/TLS.md).
func serverTLS(cert *tls.Certificate) *tls.Config {
	if cert == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}
}

// serve runs the API until ctx ends, then lets in-flight requests finish.
// It refuses to start when its role could see across tenants.
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	tuneGC(cfg.GOGC)
	m := metrics.New(cfg.MetricsTenantLabels)
	appPooler, err := adaptToPooler(ctx, cfg.pool, "APP_DATABASE_URL", log)
	if err != nil {
		return err
	}
	tp, stopTracing, err := startTracing(ctx, cfg.OTLPEndpoint, cfg.ServiceName, cfg.ShutdownTimeout)
	if err != nil {
		return err
	}
	defer stopTracing()
	cfg.pool.ConnConfig.Tracer = m.Tracer()
	db.Trace(cfg.pool, tp)
	// While the database is down, back off instead of dialling per request.
	db.GuardConnects(cfg.pool, "app", log)
	pool, err := db.Open(ctx, cfg.pool)
	if err != nil {
		return fmt.Errorf("connect as %s: %w", cfg.pool.ConnConfig.User, err)
	}
	defer pool.Close()
	m.WatchPool(pool)
	// The server's slots are the pool's connections: the limiter, not the
	// pool's own unfair queue, decides whose request gets the next one.
	// One per cell, each over its cell's app pool (openCells).
	newLimiter := func(capacity int) *ratelimit.Limiter {
		l := ratelimit.Defaults{RatePerSecond: cfg.RateLimit, Burst: cfg.RateBurst, Capacity: capacity,
			QueueLength: cfg.TenantQueueLength, QueueTimeout: cfg.TenantQueueTimeout}
		if cfg.TenantConcurrency != nil {
			l.MaxConcurrency = *cfg.TenantConcurrency
		} else {
			// By default no tenant may hold more than half the pool.
			l.MaxConcurrency = max(1, capacity/2)
		}
		return ratelimit.New(l)
	}
	limiter := newLimiter(int(cfg.pool.MaxConns))
	limits := limiter.Defaults()
	m.WatchLimiter(limiter)
	if err := db.CheckSafety(ctx, db.Unscoped(pool)); err != nil {
		return err
	}
	warnReach(ctx, pool, log)
	if cfg.CursorKey == nil {
		cfg.CursorKey = make([]byte, 32)
		if _, err := rand.Read(cfg.CursorKey); err != nil {
			return err
		}
		log.Warn("CURSOR_KEY is not set: using a random key, so list cursors do not survive a restart or work across instances")
	}
	resolver := tenancy.NewResolver(pool, cfg.TenantCacheTTL).WithTimeout(cfg.AcquireTimeout + cfg.StatementTimeout)
	// Tenant cells (CELLS): every cell's pools, checked like the default's;
	// without CELLS, the default cell alone and nothing changes.
	defaultCell := &cells.Cell{Name: cells.Default, App: pool}
	cellSet, stopCells, err := openCells(ctx, cfg, defaultCell, newLimiter, tp, log)
	if err != nil {
		return err
	}
	defer stopCells()
	authCfg := auth.Config{Pool: pool, CacheTTL: cfg.AuthCacheTTL, JWT: cfg.JWT(),
		StatementTimeout: cfg.StatementTimeout, AcquireTimeout: cfg.AcquireTimeout, Tenants: resolver}
	var httpCells *cells.Set
	if len(cfg.Cells) > 0 {
		authCfg.PoolFor, httpCells = cellSet.PoolFor(resolver), cellSet
	}
	authn, err := auth.New(authCfg)
	if err != nil {
		return usageError{err.Error()}
	}
	defer authn.Close()
	// Every cell announces changes to tenants, keys and users, and the
	// catalog a move's switch; the caches forget at once what changed, and
	// keep entries longer while every announcement is heard (package
	// invalidation).
	// Behind a transaction pooler nothing can be heard: there a moved
	// tenant's cached placement lasts until TENANT_CACHE_TTL, and so does
	// any change.
	sources := []invalidation.Source{{Name: cells.Default, Pool: pool, Channels: []string{tenancy.PlacementChannel},
		Unheard: appPooler.TransactionPooled}}
	for _, name := range cellSet.Names() {
		if c, ok := cellSet.Get(name); ok && name != cells.Default {
			sources = append(sources, invalidation.Source{Name: name, Pool: c.App, Unheard: c.AppPooled})
		}
	}
	listenCtx, stopListen := context.WithCancel(ctx)
	var listening sync.WaitGroup
	listening.Go(func() { invalidation.New(log, resolver, authn).Run(listenCtx, sources...) })
	defer listening.Wait()
	defer stopListen()
	authFailures := ratelimit.NewFailures(cfg.AuthFailureLimit, cfg.AuthFailureWindow)
	m.WatchCaches(append(resolver.Caches(), authn.Caches()...)...)
	if authFailures != nil {
		m.WatchCaches(authFailures)
	}
	var platformPool *pgxpool.Pool
	var platform *auth.Platform
	var moveCells func(string) bool
	if cfg.platform != nil {
		if _, err := adaptToPooler(ctx, cfg.platform, "PLATFORM_DATABASE_URL", log); err != nil {
			return err
		}
		db.Trace(cfg.platform, tp)
		db.GuardConnects(cfg.platform, "platform", log)
		platformPool, err = db.Open(ctx, cfg.platform)
		if err != nil {
			return fmt.Errorf("connect as %s: %w", cfg.platform.ConnConfig.User, err)
		}
		defer platformPool.Close()
		if err := db.CheckSafety(ctx, db.Unscoped(platformPool)); err != nil {
			return fmt.Errorf("platform pool: %w", err)
		}
		warnReach(ctx, platformPool, log)
		defaultCell.Platform = platformPool
		platform = auth.NewPlatform(platformPool, cfg.AuthCacheTTL)
		m.WatchCaches(platform.Caches()...)
		// Tenant moves (TENANT_MOVES): superuser pools of every cell, for
		// the move job only; the handlers get just the cells' names.
		movers, err := openMovers(ctx, cfg)
		if err != nil {
			return err
		}
		if movers != nil {
			defer movers.Close()
			moveCells = movers.Reachable
		}
		// Background jobs (exports, the deletion purge) run on River as the
		// platform role; any number of instances may run them.
		// River only polls (jobs.Start), so a transaction pooler is fine.
		runner, err := jobs.Start(ctx, jobs.Config{Pool: platformPool, PurgeEvery: cfg.PurgeInterval, Log: log, Movers: movers,
			ExportMaxBytes: cfg.ExportMaxBytes,
			Purged:         func(id uuid.UUID) { resolver.Forget(id, "") },
			// A purged tenant of another cell: its rows there go too.
			InCell: func(ctx context.Context, cell string, id uuid.UUID) error {
				c, ok := cellSet.Get(cell)
				if !ok || c.Platform == nil {
					return fmt.Errorf("cell %q: %w", cell, cells.ErrNotConfigured)
				}
				return lifecycle.Delete(ctx, c.Platform, id)
			}})
		if err != nil {
			return fmt.Errorf("start background jobs: %w", err)
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = runner.Stop(stopCtx)
		}()
	} else {
		if cfg.TenantMoves {
			return usageError{"TENANT_MOVES needs platform administration: set PLATFORM_DATABASE_URL or PLATFORM_DATABASE_PASSWORD"}
		}
		log.Info("platform administration (/v1/admin) is off: set PLATFORM_DATABASE_URL or PLATFORM_DATABASE_PASSWORD to turn it on")
	}
	handler, err := httpapi.NewServer(httpapi.Config{
		PlatformPool:     platformPool,
		Platform:         platform,
		Pool:             pool,
		Resolver:         resolver,
		Auth:             authn,
		TenantMode:       cfg.TenantMode,
		BaseDomain:       cfg.BaseDomain,
		Logger:           log,
		AccessLog:        cfg.accessLog,
		CursorKey:        cfg.CursorKey,
		StatementTimeout: cfg.StatementTimeout,
		RequestTimeout:   cfg.RequestTimeout,
		AcquireTimeout:   cfg.AcquireTimeout,
		Limiter:          limiter,
		Metrics:          m,
		MetricsToken:     cfg.MetricsToken,
		CORSOrigins:      cfg.CORSOrigins,
		AuthFailures:     authFailures,
		TrustedProxies:   cfg.TrustedProxies,
		TracerProvider:   tp,
		Cells:            httpCells,
		MoveCells:        moveCells,
		Exports:          httpapi.ExportLimits{MaxCount: cfg.ExportMaxCount, MaxBytes: cfg.ExportMaxBytes, Retention: cfg.ExportRetention},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         serverTLS(cfg.TLSCertificate),
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil, "db_user", cfg.pool.ConnConfig.User,
		"tenant_mode", string(cfg.TenantMode), "jwt", cfg.JWT() != nil,
		"rate_limit", limits.RatePerSecond, "rate_burst", limits.Burst, "tenant_concurrency", limits.MaxConcurrency,
		"tenant_queue_length", limits.QueueLength, "tenant_queue_timeout", limits.QueueTimeout.String(),
		"pool_max_conns", cfg.pool.MaxConns, "auth_failure_limit", cfg.AuthFailureLimit,
		"auth_failure_window", cfg.AuthFailureWindow.String(), "trusted_proxies", len(cfg.TrustedProxies), "tracing", tp != nil)
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, m, cfg.MetricsPprof, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			// The certificate is in TLSConfig; ServeTLS adds HTTP/2.
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// openMovers opens the superuser pools tenant moves need (cells.Movers)
// when TENANT_MOVES is on: DATABASE_URL's and each CELLS url's role, each
// checked to be a superuser (cells.ErrNotSuperuser otherwise); nil when
// off. Their Settle is TENANT_CACHE_TTL.
func openMovers(ctx context.Context, cfg serveConfig) (*cells.Movers, error) {
	if !cfg.TenantMoves {
		return nil, nil
	}
	urls, err := cellURLs(cfg.Config, "TENANT_MOVES connects to every cell as its superuser")
	if err != nil {
		return nil, err
	}
	// The source stays frozen as long as an instance may still use a
	// cached placement: one that cannot listen, TENANT_CACHE_TTL; one whose
	// listener failed unnoticed, until its heartbeat is missed and then
	// TENANT_CACHE_TTL.
	movers, err := cells.OpenMovers(urls, cfg.TenantCacheTTL+3*invalidation.Heartbeat)
	if err != nil {
		return nil, usageError{"TENANT_MOVES: " + err.Error()}
	}
	if err := movers.CheckSuperusers(ctx); err != nil {
		movers.Close()
		return nil, usageError{"TENANT_MOVES: " + err.Error()}
	}
	return movers, nil
}
