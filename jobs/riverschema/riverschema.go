// Package riverschema holds River's tables: the schema they live in and
// River's own migrations, which `rowfence migrate` runs after the goose
// migrations under the same lock (package migrate). It imports nothing of
// rowfence, so that the migrator (and the test databases it fills) need not
// import the job runner.
package riverschema

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Schema holds River's tables (sql/migrations/00007_jobs.sql creates it,
// owned by rowfence_owner).
const Schema = "river"

// Migrate applies River's pending migrations to Schema through pool, whose
// connections must act as the tables' owner (db.AsOwner).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: Schema, Logger: log})
	if err != nil {
		return err
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}
