package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

type serveConfig struct {
	addr             string
	pool             *pgxpool.Config
	cursorKey        []byte
	tenantCacheTTL   time.Duration
	shutdownTimeout  time.Duration
	statementTimeout time.Duration
	requestTimeout   time.Duration
}

// serveConfigFromEnv reads serve's environment; databaseURL and appPassword
// let `dev` supply the server it found.
func serveConfigFromEnv(getenv func(string) string, databaseURL, appPassword string) (serveConfig, error) {
	cfg := serveConfig{addr: getenv("ADDR"), tenantCacheTTL: tenancy.DefaultTTL, shutdownTimeout: 15 * time.Second,
		statementTimeout: 5 * time.Second, requestTimeout: 10 * time.Second}
	if cfg.addr == "" {
		cfg.addr = ":8080"
	}
	var err error
	if cfg.pool, err = db.AppConfig(getenv("APP_DATABASE_URL"), databaseURL, appPassword); err != nil {
		return cfg, usageError{err.Error()}
	}
	if key := getenv("CURSOR_KEY"); key != "" {
		if len(key) < 32 {
			return cfg, usageError{"CURSOR_KEY must be at least 32 bytes"}
		}
		cfg.cursorKey = []byte(key)
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"TENANT_CACHE_TTL", &cfg.tenantCacheTTL}, {"SHUTDOWN_TIMEOUT", &cfg.shutdownTimeout},
		{"STATEMENT_TIMEOUT", &cfg.statementTimeout}, {"REQUEST_TIMEOUT", &cfg.requestTimeout}} {
		if v := getenv(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil || parsed < 0 {
				return cfg, usageError{fmt.Sprintf("%s must be a duration such as 5s, not %q", d.name, v)}
			}
			*d.dst = parsed
		}
	}
	return cfg, nil
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
	pool, err := db.Open(ctx, cfg.pool)
	if err != nil {
		return fmt.Errorf("connect as %s: %w", cfg.pool.ConnConfig.User, err)
	}
	defer pool.Close()
	if err := db.CheckSafety(ctx, db.New(pool)); err != nil {
		return err
	}
	log.Warn("X-Tenant-ID is trusted as sent: requests are not authenticated yet, so do not expose this server to untrusted clients")
	if cfg.cursorKey == nil {
		cfg.cursorKey = make([]byte, 32)
		if _, err := rand.Read(cfg.cursorKey); err != nil {
			return err
		}
		log.Warn("CURSOR_KEY is not set: using a random key, so list cursors do not survive a restart or work across instances")
	}
	handler, err := httpapi.NewServer(httpapi.Config{
		Pool:             pool,
		Resolver:         tenancy.NewResolver(pool, cfg.tenantCacheTTL),
		Logger:           log,
		CursorKey:        cfg.cursorKey,
		StatementTimeout: cfg.statementTimeout,
		RequestTimeout:   cfg.requestTimeout,
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
	log.Info("serving", "addr", ln.Addr().String(), "db_user", cfg.pool.ConnConfig.User)
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
