package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

type serveConfig struct {
	addr             string
	pool             *pgxpool.Config
	cursorKey        []byte
	tenantMode       httpapi.TenantMode
	baseDomain       string
	jwt              *auth.JWTConfig
	authCacheTTL     time.Duration
	tenantCacheTTL   time.Duration
	shutdownTimeout  time.Duration
	statementTimeout time.Duration
	requestTimeout   time.Duration
	acquireTimeout   time.Duration
	limits           ratelimit.Defaults
	concurrencySet   bool
	metricsAddr      string
	metricsToken     string
	metricsTenants   int
	metricsPprof     bool
	corsOrigins      []string
	// authFailureLimit failed credentials per authFailureWindow and client
	// address (0: no throttle); trustedProxies name whose X-Forwarded-For
	// gives the client address.
	authFailureLimit  int
	authFailureWindow time.Duration
	trustedProxies    []netip.Prefix
	// platform is the /v1/admin pool's configuration; nil: disabled.
	platform      *pgxpool.Config
	purgeInterval time.Duration
}

// serveConfigFromEnv reads serve's environment; databaseURL and appPassword
// let `dev` supply the server it found.
func serveConfigFromEnv(getenv func(string) string, databaseURL, appPassword string, platformPassword ...string) (serveConfig, error) {
	cfg := serveConfig{addr: getenv("ADDR"), tenantCacheTTL: tenancy.DefaultTTL, authCacheTTL: auth.DefaultCacheTTL, shutdownTimeout: 15 * time.Second,
		statementTimeout: 5 * time.Second, requestTimeout: 10 * time.Second, acquireTimeout: 2 * time.Second,
		limits:           ratelimit.Defaults{RatePerSecond: 100, Burst: 200},
		authFailureLimit: ratelimit.DefaultFailureLimit, authFailureWindow: ratelimit.DefaultFailureWindow,
		metricsAddr: getenv("METRICS_ADDR"), metricsToken: getenv("METRICS_TOKEN")}
	if cfg.addr == "" {
		cfg.addr = ":8080"
	}
	var err error
	if cfg.pool, err = db.AppConfig(getenv("APP_DATABASE_URL"), databaseURL, appPassword); err != nil {
		return cfg, usageError{err.Error()}
	}
	// Platform administration is on with PLATFORM_DATABASE_URL, or with
	// DATABASE_URL and PLATFORM_DATABASE_PASSWORD (dev passes its own).
	platformURL, platformPW := getenv("PLATFORM_DATABASE_URL"), getenv("PLATFORM_DATABASE_PASSWORD")
	if len(platformPassword) > 0 {
		platformPW = platformPassword[0]
	}
	if platformURL != "" || (databaseURL != "" && (platformPW != "" || len(platformPassword) > 0)) {
		if cfg.platform, err = db.PlatformConfig(platformURL, databaseURL, platformPW); err != nil {
			return cfg, usageError{err.Error()}
		}
		cfg.platform.MaxConns = 2
	}
	cfg.purgeInterval = time.Minute
	if key := getenv("CURSOR_KEY"); key != "" {
		if len(key) < 32 {
			return cfg, usageError{"CURSOR_KEY must be at least 32 bytes"}
		}
		cfg.cursorKey = []byte(key)
	}
	if cfg.tenantMode, err = httpapi.ParseTenantMode(getenv("TENANT_MODE")); err != nil {
		return cfg, usageError{"TENANT_MODE: " + err.Error()}
	}
	cfg.baseDomain = getenv("BASE_DOMAIN")
	if cfg.tenantMode == httpapi.ModeSubdomain && cfg.baseDomain == "" {
		return cfg, usageError{"TENANT_MODE=subdomain needs BASE_DOMAIN (tenants are then {slug}.BASE_DOMAIN)"}
	}
	if cfg.jwt, err = jwtConfigFromEnv(getenv); err != nil {
		return cfg, err
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"TENANT_CACHE_TTL", &cfg.tenantCacheTTL}, {"AUTH_CACHE_TTL", &cfg.authCacheTTL}, {"SHUTDOWN_TIMEOUT", &cfg.shutdownTimeout},
		{"STATEMENT_TIMEOUT", &cfg.statementTimeout}, {"REQUEST_TIMEOUT", &cfg.requestTimeout},
		{"ACQUIRE_TIMEOUT", &cfg.acquireTimeout}, {"PURGE_INTERVAL", &cfg.purgeInterval},
		{"AUTH_FAILURE_WINDOW", &cfg.authFailureWindow}} {
		if v := getenv(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed < 0 {
				return cfg, usageError{fmt.Sprintf("%s must be a duration such as 5s, not %q", d.name, v)}
			}
			*d.dst = parsed
		}
	}
	if cfg.corsOrigins, err = httpapi.ParseCORSOrigins(getenv("CORS_ALLOWED_ORIGINS")); err != nil {
		return cfg, usageError{"CORS_ALLOWED_ORIGINS: " + err.Error()}
	}
	if cfg.trustedProxies, err = httpapi.ParseTrustedProxies(getenv("TRUSTED_PROXIES")); err != nil {
		return cfg, usageError{"TRUSTED_PROXIES: " + err.Error()}
	}
	if cfg.authFailureWindow == 0 {
		return cfg, usageError{"AUTH_FAILURE_WINDOW must be longer than 0 (AUTH_FAILURE_LIMIT=0 turns the throttle off)"}
	}
	switch v := getenv("METRICS_PPROF"); v {
	case "", "false", "0":
	case "true", "1":
		if cfg.metricsAddr == "" {
			return cfg, usageError{"METRICS_PPROF needs METRICS_ADDR: the profiler is served only on that private listener"}
		}
		cfg.metricsPprof = true
	default:
		return cfg, usageError{fmt.Sprintf("METRICS_PPROF must be true or false, not %q", v)}
	}
	if cfg.metricsToken != "" && len(cfg.metricsToken) < 16 {
		return cfg, usageError{"METRICS_TOKEN must be at least 16 characters"}
	}
	for _, n := range []struct {
		name     string
		min, max float64
		set      func(float64)
	}{
		{"RATE_LIMIT", 0, 1e6, func(v float64) { cfg.limits.RatePerSecond = v }},
		{"RATE_BURST", 1, 1e6, func(v float64) { cfg.limits.Burst = int(v) }},
		{"TENANT_CONCURRENCY", 0, 1e4, func(v float64) { cfg.limits.MaxConcurrency, cfg.concurrencySet = int(v), true }},
		{"METRICS_TENANT_LABELS", 1, 1e5, func(v float64) { cfg.metricsTenants = int(v) }},
		{"AUTH_FAILURE_LIMIT", 0, 1e6, func(v float64) { cfg.authFailureLimit = int(v) }},
	} {
		raw := getenv(n.name)
		if raw == "" {
			continue
		}
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || v < n.min || v > n.max || (n.name != "RATE_LIMIT" && v != math.Trunc(v)) {
			return cfg, usageError{fmt.Sprintf("%s must be a number from %g to %g, not %q", n.name, n.min, n.max, raw)}
		}
		n.set(v)
	}
	return cfg, nil
}

// jwtConfigFromEnv enables bearer tokens when JWT_HS256_SECRET or
// JWT_PUBLIC_KEYS_FILE is set; JWT_ISSUER and JWT_AUDIENCE are then required.
func jwtConfigFromEnv(getenv func(string) string) (*auth.JWTConfig, error) {
	secret, keysFile := getenv("JWT_HS256_SECRET"), getenv("JWT_PUBLIC_KEYS_FILE")
	if secret == "" && keysFile == "" {
		return nil, nil
	}
	cfg := &auth.JWTConfig{HMACSecret: []byte(secret), Issuer: getenv("JWT_ISSUER"), Audience: getenv("JWT_AUDIENCE"),
		TenantClaim: getenv("JWT_TENANT_CLAIM"), UserClaim: getenv("JWT_USER_CLAIM"), RoleClaim: getenv("JWT_ROLE_CLAIM"),
		Leeway: auth.DefaultLeeway}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, usageError{"bearer tokens need JWT_ISSUER and JWT_AUDIENCE"}
	}
	if secret != "" && len(secret) < 32 {
		return nil, usageError{"JWT_HS256_SECRET must be at least 32 bytes"}
	}
	if keysFile != "" {
		pemData, err := os.ReadFile(keysFile)
		if err != nil {
			return nil, usageError{"JWT_PUBLIC_KEYS_FILE: " + err.Error()}
		}
		if cfg.PublicKeys, err = auth.ParsePublicKeys(pemData); err != nil {
			return nil, usageError{"JWT_PUBLIC_KEYS_FILE: " + err.Error()}
		}
	}
	if v := getenv("JWT_LEEWAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, usageError{fmt.Sprintf("JWT_LEEWAY must be a duration such as 30s, not %q", v)}
		}
		cfg.Leeway = d
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

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
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

func runServe(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := serveConfigFromEnv(getenv, getenv("DATABASE_URL"), getenv("APP_DATABASE_PASSWORD"))
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log)
}

// serve runs the API until ctx ends, then lets in-flight requests finish.
// It refuses to start when its role could see across tenants.
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	tuneGC()
	m := metrics.New(cfg.metricsTenants)
	if _, err := adaptToPooler(ctx, cfg.pool, "APP_DATABASE_URL", log); err != nil {
		return err
	}
	cfg.pool.ConnConfig.Tracer = m.Tracer()
	// While the database is down, back off instead of dialling per request.
	db.GuardConnects(cfg.pool, "app", log)
	pool, err := db.Open(ctx, cfg.pool)
	if err != nil {
		return fmt.Errorf("connect as %s: %w", cfg.pool.ConnConfig.User, err)
	}
	defer pool.Close()
	m.WatchPool(pool)
	if !cfg.concurrencySet {
		// By default no tenant may hold more than half the pool.
		cfg.limits.MaxConcurrency = max(1, int(cfg.pool.MaxConns)/2)
	}
	if err := db.CheckSafety(ctx, db.Unscoped(pool)); err != nil {
		return err
	}
	warnReach(ctx, pool, log)
	if cfg.cursorKey == nil {
		cfg.cursorKey = make([]byte, 32)
		if _, err := rand.Read(cfg.cursorKey); err != nil {
			return err
		}
		log.Warn("CURSOR_KEY is not set: using a random key, so list cursors do not survive a restart or work across instances")
	}
	resolver := tenancy.NewResolver(pool, cfg.tenantCacheTTL).WithTimeout(cfg.acquireTimeout + cfg.statementTimeout)
	authn, err := auth.New(auth.Config{Pool: pool, CacheTTL: cfg.authCacheTTL, JWT: cfg.jwt,
		StatementTimeout: cfg.statementTimeout, AcquireTimeout: cfg.acquireTimeout, Tenants: resolver})
	if err != nil {
		return usageError{err.Error()}
	}
	authFailures := ratelimit.NewFailures(cfg.authFailureLimit, cfg.authFailureWindow)
	m.WatchCaches(append(resolver.Caches(), authn.Caches()...)...)
	if authFailures != nil {
		m.WatchCaches(authFailures)
	}
	var platformPool *pgxpool.Pool
	var platform *auth.Platform
	if cfg.platform != nil {
		if _, err := adaptToPooler(ctx, cfg.platform, "PLATFORM_DATABASE_URL", log); err != nil {
			return err
		}
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
		platform = auth.NewPlatform(platformPool, cfg.authCacheTTL)
		m.WatchCaches(platform.Caches()...)
		// Background jobs (exports, the deletion purge) run on River as the
		// platform role; any number of instances may run them.
		// River only polls (jobs.Start), so a transaction pooler is fine.
		runner, err := jobs.Start(ctx, jobs.Config{Pool: platformPool, PurgeEvery: cfg.purgeInterval, Log: log,
			Purged: func(id uuid.UUID) { resolver.Forget(id, "") }})
		if err != nil {
			return fmt.Errorf("start background jobs: %w", err)
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
			defer cancel()
			_ = runner.Stop(stopCtx)
		}()
	} else {
		log.Info("platform administration (/v1/admin) is off: set PLATFORM_DATABASE_URL or PLATFORM_DATABASE_PASSWORD to turn it on")
	}
	handler, err := httpapi.NewServer(httpapi.Config{
		PlatformPool:     platformPool,
		Platform:         platform,
		Pool:             pool,
		Resolver:         resolver,
		Auth:             authn,
		TenantMode:       cfg.tenantMode,
		BaseDomain:       cfg.baseDomain,
		Logger:           log,
		CursorKey:        cfg.cursorKey,
		StatementTimeout: cfg.statementTimeout,
		RequestTimeout:   cfg.requestTimeout,
		AcquireTimeout:   cfg.acquireTimeout,
		Limiter:          ratelimit.New(cfg.limits),
		Metrics:          m,
		MetricsToken:     cfg.metricsToken,
		CORSOrigins:      cfg.corsOrigins,
		AuthFailures:     authFailures,
		TrustedProxies:   cfg.trustedProxies,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
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
	}
	log.Info("serving", "addr", ln.Addr().String(), "db_user", cfg.pool.ConnConfig.User,
		"tenant_mode", string(cfg.tenantMode), "jwt", cfg.jwt != nil,
		"rate_limit", cfg.limits.RatePerSecond, "rate_burst", cfg.limits.Burst, "tenant_concurrency", cfg.limits.MaxConcurrency,
		"pool_max_conns", cfg.pool.MaxConns, "auth_failure_limit", cfg.authFailureLimit,
		"auth_failure_window", cfg.authFailureWindow.String(), "trusted_proxies", len(cfg.trustedProxies))
	if cfg.metricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.metricsAddr, m, cfg.metricsPprof, log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopMetrics()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
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
