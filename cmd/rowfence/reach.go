package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
)

// warnReach logs, once at start, what the pool's role can still do beyond
// its own transaction because the migrating role could not take it back
// (db.CheckReach; docs/SECURITY.md, "Beyond the transaction"), each with the
// statement that closes it. What must not be served with, CheckSafety
// refuses; these only warn, since a database without a superuser (a managed
// service) may have no one who can revoke them.
func warnReach(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	user := pool.Config().ConnConfig.User
	reach, err := db.CheckReach(ctx, db.Unscoped(pool))
	if err != nil {
		log.Warn("could not list what the serving role can do beyond its transaction", "db_user", user, "err", err)
		return
	}
	for _, e := range reach.Exposures {
		log.Warn("the serving role can reach past its transaction", "db_user", user,
			"capability", e.Capability, "detail", e.Detail, "remedy", e.Remedy)
	}
}
