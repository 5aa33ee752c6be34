package db

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	schema "github.com/rowfence/rowfence/sql"
)

// Migrator applies the embedded migrations (sql/migrations) as the migrating
// role: one that may create roles and own tables, never the app role.
type Migrator struct {
	provider *goose.Provider
	conn     string
	log      *slog.Logger
	close    func() error
}

// NewMigrator connects with connString. A Postgres advisory lock serialises
// migrations run at the same time by several instances.
func NewMigrator(connString string, log *slog.Logger) (*Migrator, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	fsys, err := fs.Sub(schema.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithSessionLocker(locker)}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, opts...)
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	return &Migrator{provider: p, conn: connString, log: log, close: sqlDB.Close}, nil
}

func (m *Migrator) Close() error { return m.close() }

// Up applies every pending migration, then River's own migrations to the
// river schema (which 00007_jobs.sql creates), as rowfence_owner.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return res, err
	}
	return res, m.riverUp(ctx)
}

// RiverSchema holds River's tables.
const RiverSchema = "river"

func (m *Migrator) riverUp(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(m.conn)
	if err != nil {
		return err
	}
	cfg.MaxConns = 1
	AsOwner(cfg) // River's tables belong to the owner, like every other
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	log := m.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: RiverSchema, Logger: log})
	if err != nil {
		return err
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// Down rolls back the most recent migration.
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	return m.provider.Down(ctx)
}

// Status lists every migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	return m.provider.Status(ctx)
}

// Version is the highest applied migration.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	return m.provider.GetDBVersion(ctx)
}
