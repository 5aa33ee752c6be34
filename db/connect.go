package db

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db/dbsqlc"
)

// AppRole is the role that serves requests (sql/migrations/00001_roles.sql).
const AppRole = "rowfence_app"

// PlatformRole administers tenants across the registry
// (sql/migrations/00006_platform.sql); serve uses it for /v1/admin only.
const PlatformRole = "rowfence_platform"

// AppConfig returns the pool configuration for serving. With appURL set it is
// used as given. Otherwise the app connection is derived from databaseURL (the
// migrating role's): same server and database, user rowfence_app, password
// appPassword (empty: the server must trust the connection, as the local
// development cluster does on its private socket). The migrating role itself
// is never used to serve.
func AppConfig(appURL, databaseURL, appPassword string) (*pgxpool.Config, error) {
	return roleConfig(AppRole, "APP_DATABASE_URL", appURL, databaseURL, appPassword)
}

// PlatformConfig is AppConfig for the platform administration pool
// (PLATFORM_DATABASE_URL, or derived as rowfence_platform).
func PlatformConfig(platformURL, databaseURL, password string) (*pgxpool.Config, error) {
	return roleConfig(PlatformRole, "PLATFORM_DATABASE_URL", platformURL, databaseURL, password)
}

func roleConfig(role, urlName, url, databaseURL, password string) (*pgxpool.Config, error) {
	if url != "" {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", urlName, err)
		}
		return cfg, nil
	}
	if databaseURL == "" {
		return nil, fmt.Errorf("set %s (the %s role's connection) or DATABASE_URL", urlName, role)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.ConnConfig.User = role
	cfg.ConnConfig.Password = password
	return cfg, nil
}

// OwnerRole owns every table (sql/migrations/00001_roles.sql).
const OwnerRole = "rowfence_owner"

// AsOwner makes every connection of cfg act as rowfence_owner (SET ROLE), for
// operator tools that connect as the migrating role. A superuser or BYPASSRLS
// role skips RLS, so an export run as one would hold every tenant's rows;
// the owner is bound by FORCE ROW LEVEL SECURITY like the app, so tenant-
// scoped work sees its tenant only, while the registry (not forced) stays
// the owner's to administer. The migrating role is the owner or a member.
//
// SET ROLE is session state: through a transaction pooler it would hold on
// one server connection only, and the tool's later transactions would run as
// the role it logged in as (a tenant export through PgBouncer in transaction
// mode held every tenant's users and keys). So the pool's first connection
// probes for one (ProbePooler) and every connection fails with
// ErrTransactionPooler behind one.
func AsOwner(cfg *pgxpool.Config) {
	next := cfg.AfterConnect
	var mu sync.Mutex
	probed := false
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		mu.Lock()
		if !probed {
			if err := RequireSession(ctx, conn.Config()); err != nil {
				mu.Unlock()
				return fmt.Errorf("%w (SET ROLE %s would last one transaction)", err, OwnerRole)
			}
			probed = true
		}
		mu.Unlock()
		if _, err := conn.Exec(ctx, "set role "+OwnerRole); err != nil {
			return fmt.Errorf("set role %s: %w", OwnerRole, err)
		}
		if next != nil {
			return next(ctx, conn)
		}
		return nil
	}
}

// ErrTransactionPooler: a connection that needs a session of its own (the
// operator tools' and migrations' DATABASE_URL) goes through a transaction
// pooler. Its text is for the operator.
var ErrTransactionPooler = errors.New("DATABASE_URL goes through a transaction pooler (such as PgBouncer with pool_mode = transaction), " +
	"but operator commands and migrations need a session of their own: connect them to PostgreSQL directly or through a session-mode pool")

// RequireSession fails with ErrTransactionPooler when cfg connects through
// a transaction pooler (ProbePooler): for work that relies on session state,
// such as SET ROLE (AsOwner) or the migrations' session-level advisory lock.
func RequireSession(ctx context.Context, cfg *pgx.ConnConfig) error {
	p, err := ProbePooler(ctx, cfg)
	if err != nil {
		return fmt.Errorf("probe for a connection pooler: %w", err)
	}
	if p.TransactionPooled {
		return ErrTransactionPooler
	}
	return nil
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
func SetAppPassword(ctx context.Context, admin dbsqlc.DBTX, password string) error {
	return SetRolePassword(ctx, admin, AppRole, password)
}

// SetRolePassword sets the password of one of rowfence's login roles
// (AppRole or PlatformRole).
func SetRolePassword(ctx context.Context, admin dbsqlc.DBTX, role, password string) error {
	if role != AppRole && role != PlatformRole {
		return fmt.Errorf("db: %s is not one of rowfence's login roles", role)
	}
	stmt, err := dbsqlc.New(admin).RolePasswordStatement(ctx, dbsqlc.RolePasswordStatementParams{RoleName: role, Password: password})
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, stmt)
	return err
}
