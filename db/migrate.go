package db

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	schema "github.com/rowfence/rowfence/sql"
)

// Migrator applies the embedded migrations (sql/migrations) as the migrating
// role: one that may create roles and own tables, never the app role.
type Migrator struct {
	provider *goose.Provider
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
	return &Migrator{provider: p, close: sqlDB.Close}, nil
}

func (m *Migrator) Close() error { return m.close() }

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	return m.provider.Up(ctx)
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
