package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/migrate"
)

type migrateCmd struct {
	Up     migrateUpCmd     `cmd:"" default:"1" help:"Apply the pending migrations, and set the login roles' passwords when given (the default)."`
	Down   migrateDownCmd   `cmd:"" help:"Roll back the last migration."`
	Status migrateStatusCmd `cmd:"" help:"List every migration and whether it is applied."`
}

type migrateUpCmd struct{}
type migrateDownCmd struct{}
type migrateStatusCmd struct{}

func (migrateUpCmd) Run(r *runEnv) error   { return runMigrate(r.ctx, "up", r.env, r.stdout, r.log) }
func (migrateDownCmd) Run(r *runEnv) error { return runMigrate(r.ctx, "down", r.env, r.stdout, r.log) }
func (migrateStatusCmd) Run(r *runEnv) error {
	return runMigrate(r.ctx, "status", r.env, r.stdout, r.log)
}

// runMigrate runs action (up, down or status) as DATABASE_URL's role.
func runMigrate(ctx context.Context, action string, env config.Config, stdout io.Writer, log *slog.Logger) error {
	url, err := databaseURL(env, "migrate connects as a role that may create roles and own tables")
	if err != nil {
		return err
	}
	// Goose's lock is a session-level advisory lock, and River's tables are
	// made under SET ROLE: neither survives a transaction pooler.
	if cfg, err := pgx.ParseConfig(url); err == nil {
		if err := db.RequireSession(ctx, cfg); err != nil {
			return err
		}
	}
	m, err := migrate.New(url, log)
	if err != nil {
		return err
	}
	defer m.Close()
	switch action {
	case "up":
		if err := migrateUp(ctx, m, env.AppDatabasePassword, env.PlatformDatabasePassword); err != nil {
			return err
		}
	case "down":
		if _, err := m.Down(ctx); err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
	case "status":
		statuses, err := m.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		for _, s := range statuses {
			applied := "pending"
			if !s.AppliedAt.IsZero() {
				applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(stdout, "%05d  %-40s %s\n", s.Source.Version, s.Source.Path, applied)
		}
		return nil
	}
	v, err := m.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database at migration version %d\n", v)
	return nil
}

// migrateUp applies pending migrations and gives the app role appPassword
// and the platform role platformPassword (each only when set), all under the
// migration lock and on the lock's own connection: ALTER ROLE run by two
// instances at once fails ("tuple concurrently updated").
func migrateUp(ctx context.Context, m *migrate.Migrator, appPassword, platformPassword string) error {
	var steps []migrate.Step
	if appPassword != "" {
		steps = append(steps, passwordStep(db.AppRole, appPassword))
	}
	if platformPassword != "" {
		steps = append(steps, passwordStep(db.PlatformRole, platformPassword))
	}
	if _, err := m.Up(ctx, steps...); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

func passwordStep(role, password string) migrate.Step {
	return func(ctx context.Context, conn *pgx.Conn) error {
		if err := db.SetRolePassword(ctx, conn, role, password); err != nil {
			return fmt.Errorf("set the %s password: %w", role, err)
		}
		return nil
	}
}
