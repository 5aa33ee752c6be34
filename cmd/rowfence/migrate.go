package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/db"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	action := "up"
	if len(args) > 0 {
		action, args = args[0], args[1:]
	}
	if len(args) > 0 {
		return usageError{fmt.Sprintf("migrate %s: unexpected argument %q", action, args[0])}
	}
	url, err := requireEnv(getenv, "DATABASE_URL", "migrate connects as a role that may create roles and own tables")
	if err != nil {
		return err
	}
	if action != "up" && action != "down" && action != "status" {
		return usageError{fmt.Sprintf("migrate: unknown action %q (up, down or status)", action)}
	}
	// Goose's lock is a session-level advisory lock, and River's tables are
	// made under SET ROLE: neither survives a transaction pooler.
	if cfg, err := pgx.ParseConfig(url); err == nil {
		if err := db.RequireSession(ctx, cfg); err != nil {
			return err
		}
	}
	m, err := db.NewMigrator(url, log)
	if err != nil {
		return err
	}
	defer m.Close()
	switch action {
	case "up":
		if err := migrateUp(ctx, m, url, getenv("APP_DATABASE_PASSWORD"), getenv("PLATFORM_DATABASE_PASSWORD")); err != nil {
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

// migrateUp applies pending migrations and, when appPassword (and the
// optional platform password) is set, gives the app role (and the platform
// role) that password, all under the migration lock: ALTER ROLE run by two
// instances at once fails ("tuple concurrently updated"). The passwords are
// set on the lock's own connection; the unnamed connection string argument
// is there for callers written before that.
func migrateUp(ctx context.Context, m *db.Migrator, _, appPassword string, platformPassword ...string) error {
	var steps []db.Step
	if appPassword != "" {
		steps = append(steps, passwordStep(db.AppRole, appPassword))
	}
	if len(platformPassword) > 0 && platformPassword[0] != "" {
		steps = append(steps, passwordStep(db.PlatformRole, platformPassword[0]))
	}
	if _, err := m.Up(ctx, steps...); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

func passwordStep(role, password string) db.Step {
	return func(ctx context.Context, conn *pgx.Conn) error {
		if err := db.SetRolePassword(ctx, conn, role, password); err != nil {
			return fmt.Errorf("set the %s password: %w", role, err)
		}
		return nil
	}
}
