package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppRole is the role that serves requests (sql/migrations/00001_roles.sql).
const AppRole = "rowfence_app"

// AppConfig returns the pool configuration for serving. With appURL set it is
// used as given. Otherwise the app connection is derived from databaseURL (the
// migrating role's): same server and database, user rowfence_app, password
// appPassword (empty: the server must trust the connection, as the local
// development cluster does on its private socket). The migrating role itself
// is never used to serve.
func AppConfig(appURL, databaseURL, appPassword string) (*pgxpool.Config, error) {
	if appURL != "" {
		cfg, err := pgxpool.ParseConfig(appURL)
		if err != nil {
			return nil, fmt.Errorf("parse APP_DATABASE_URL: %w", err)
		}
		return cfg, nil
	}
	if databaseURL == "" {
		return nil, fmt.Errorf("set APP_DATABASE_URL (the %s role's connection) or DATABASE_URL", AppRole)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.ConnConfig.User = AppRole
	cfg.ConnConfig.Password = appPassword
	return cfg, nil
}

// Open connects a pool and checks that the server answers.
func Open(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	next := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := registerTypes(ctx, conn); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, conn)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// SetAppPassword gives the app role a password, so that it can log in over
// password-authenticated connections. It runs as the migrating role.
func SetAppPassword(ctx context.Context, admin DBTX, password string) error {
	stmt, err := New(admin).AppRolePasswordStatement(ctx, password)
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, stmt)
	return err
}
