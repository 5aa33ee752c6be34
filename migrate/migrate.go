// Package migrate applies rowfence's schema as the migrating role: the goose
// migrations of sql/migrations, then River's own (jobs/riverschema), all
// under one advisory lock, so that instances migrating at once take turns.
package migrate

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

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/jobs/riverschema"
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

// MigrationLockID is the key of the PostgreSQL advisory lock (a bigint, in the
// database being migrated; PostgreSQL docs §13.3.5) that Up and Down hold
// from their first step to their last. It is goose's own default key
// (lock.DefaultLockID), so that the goose CLI, or an older rowfence that
// locked goose's step only, waits for a whole run of ours, and we for theirs.
const MigrationLockID = lock.DefaultLockID

// New connects with connString (the migrating role). Migrations run
// at the same time by several instances take turns (see Up).
func New(connString string, log *slog.Logger) (*Migrator, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	fsys, err := fs.Sub(schema.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// No goose.WithSessionLocker: the migration lock (locked) already holds
	// goose's key, and goose's locker would wait for it from a second
	// session, forever.
	var opts []goose.ProviderOption
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, opts...)
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Migrator{provider: p, conn: connString, log: log, close: sqlDB.Close}, nil
}

func (m *Migrator) Close() error { return m.close() }

// Step is work that runs under the migration lock after the migrations, on
// the lock's own connection (the migrating role): setting a login role's
// password, for one.
type Step func(ctx context.Context, conn *pgx.Conn) error

// Up applies every pending migration, then River's own migrations to the
// river schema (which 00007_jobs.sql creates) as rowfence_owner, then each
// of then, in order, all under the migration lock: instances that run it at
// once take turns, and every one but the first finds nothing left to do.
// It returns goose's results and the first error.
func (m *Migrator) Up(ctx context.Context, then ...Step) ([]*goose.MigrationResult, error) {
	var res []*goose.MigrationResult
	err := m.locked(ctx, func(conn *pgx.Conn) error {
		var err error
		if res, err = m.provider.Up(ctx); err != nil {
			return err
		}
		if err := m.riverUp(ctx); err != nil {
			return err
		}
		for _, step := range then {
			if err := step(ctx, conn); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// locked runs fn holding the migration lock on a session of its own, passed
// to fn. Closing that session releases the lock on every path (an error, a
// panic, ctx ending); a process that dies closes it too, and PostgreSQL
// releases a session's advisory locks when the session ends.
func (m *Migrator) locked(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, m.conn)
	if err != nil {
		return fmt.Errorf("connect for the migration lock: %w", err)
	}
	defer conn.Close(context.Background())
	var got bool
	if err := conn.QueryRow(ctx, "select pg_try_advisory_lock($1)", MigrationLockID).Scan(&got); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if !got {
		m.log.InfoContext(ctx, "another migration is running; waiting for it to finish", "advisory_lock", MigrationLockID)
		// Waits until the holder's session ends or unlocks; ctx ending
		// cancels the wait (pgx sends a cancel request).
		if _, err := conn.Exec(ctx, "select pg_advisory_lock($1)", MigrationLockID); err != nil {
			return fmt.Errorf("wait for the migration lock: %w", err)
		}
	}
	return fn(conn)
}

func (m *Migrator) riverUp(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(m.conn)
	if err != nil {
		return err
	}
	cfg.MaxConns = 1
	db.AsOwner(cfg) // River's tables belong to the owner, like every other
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return riverschema.Migrate(ctx, pool, m.log)
}

// Down rolls back the most recent migration, under the migration lock.
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	var res *goose.MigrationResult
	err := m.locked(ctx, func(*pgx.Conn) error {
		var err error
		res, err = m.provider.Down(ctx)
		return err
	})
	return res, err
}

// Status lists every migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	return m.provider.Status(ctx)
}

// Version is the highest applied migration.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	return m.provider.GetDBVersion(ctx)
}
