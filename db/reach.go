package db

import (
	"context"
	"fmt"

	"github.com/rowfence/rowfence/db/dbsqlc"
)

// Exposure is something the serving role may do beyond its own transaction
// that reaches other tenants without reading their rows (docs/SECURITY.md,
// leak vector 12 and "Beyond the transaction"), and that could not be taken
// back when the database was migrated: PostgreSQL grants it to
// PUBLIC and only a superuser or the database's owner may revoke it
// (sql/migrations/00013_beyond_the_transaction.sql).
type Exposure struct {
	// Capability names it: signal-backends, session-advisory-locks,
	// temporary-tables, large-objects, logical-messages, session-activity,
	// other-databases, prepared-transactions.
	Capability string
	// Detail says what the role could do with it.
	Detail string
	// Remedy is the statement (and who may run it) that closes it.
	Remedy string
}

// Reach is what CheckReach found for the connected role.
type Reach struct {
	// Problems are why serve must not run as this role: session defaults
	// stored for it (ALTER ROLE … SET, which any role may run on itself),
	// or a privilege to create objects that outlive its transaction. Each
	// is one sentence naming the remedy.
	Problems []string
	// Exposures are capabilities serve runs with, and warns about at start.
	Exposures []Exposure
}

// CheckReach inventories what the connected role can do beyond its own
// transaction (queries/reach.sql). CheckSafety refuses to serve on its
// Problems; serve logs its Exposures at start. Errors are the database's,
// mapped (errors.go).
func CheckReach(ctx context.Context, q *dbsqlc.Queries) (Reach, error) {
	var r Reach
	defaults, err := q.ReachSessionDefaults(ctx)
	if err != nil {
		return r, mapError(err)
	}
	for _, d := range defaults {
		r.Problems = append(r.Problems, fmt.Sprintf(
			"role %s has session defaults for %s (%s), set with ALTER ROLE … SET, which the role may run on itself: every new connection would start with them; remove them (%s) and put settings in the connection string",
			d.RoleName, d.Scope, d.Settings, d.Remedy))
	}
	caps, err := q.ReachCapabilities(ctx)
	if err != nil {
		return r, mapError(err)
	}
	for _, c := range caps {
		if c.Refuses {
			r.Problems = append(r.Problems, fmt.Sprintf("the serving role %s (%s)", c.Detail, c.Remedy))
			continue
		}
		r.Exposures = append(r.Exposures, Exposure{Capability: c.Capability, Detail: c.Detail, Remedy: c.Remedy})
	}
	return r, nil
}

// reachProblems is CheckReach's share of CheckSafety.
func reachProblems(ctx context.Context, q *dbsqlc.Queries) ([]string, error) {
	r, err := CheckReach(ctx, q)
	return r.Problems, err
}
