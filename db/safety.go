package db

import (
	"context"
	"fmt"
	"strings"
)

// SafetyError lists why the serving role could see across tenants.
type SafetyError struct {
	Problems []string
}

func (e *SafetyError) Error() string {
	return "refusing to serve: the database role could bypass row-level security: " + strings.Join(e.Problems, "; ")
}

// CheckSafety fails closed: it returns a *SafetyError when the connected role
// is (or inherits) a superuser or BYPASSRLS role, owns a tenant table, holds a
// privilege that RLS does not govern (TRUNCATE, REFERENCES, TRIGGER), when a
// tenant table lacks enabled and forced RLS, or when there are no tenant tables
// at all (an unmigrated database). serve runs it at start and /readyz on every
// call. The queries are in queries/safety.sql.
func CheckSafety(ctx context.Context, q *Queries) error {
	var problems []string
	roles, err := q.SafetyRoleProblems(ctx)
	if err != nil {
		return mapError(err)
	}
	for _, r := range roles {
		if r.IsSuperuser {
			problems = append(problems, fmt.Sprintf("role %s is a superuser", r.RoleName))
		}
		if r.BypassesRls {
			problems = append(problems, fmt.Sprintf("role %s has BYPASSRLS", r.RoleName))
		}
	}
	tables, err := q.SafetyTableProblems(ctx)
	if err != nil {
		return mapError(err)
	}
	for _, t := range tables {
		if !t.RlsEnabled {
			problems = append(problems, fmt.Sprintf("table %s does not ENABLE ROW LEVEL SECURITY", t.TableName))
		}
		if !t.RlsForced {
			problems = append(problems, fmt.Sprintf("table %s does not FORCE ROW LEVEL SECURITY", t.TableName))
		}
		if t.Owned {
			problems = append(problems, fmt.Sprintf("table %s is owned by the serving role (or a role it can act as)", t.TableName))
		}
		if t.UnsafeGrant {
			problems = append(problems, fmt.Sprintf("the serving role holds TRUNCATE, REFERENCES or TRIGGER on table %s", t.TableName))
		}
	}
	n, err := q.SafetyTenantTableCount(ctx)
	if err != nil {
		return mapError(err)
	}
	if n == 0 {
		problems = append(problems, "no tenant tables found: is the database migrated (rowfence migrate)?")
	}
	reach, err := reachProblems(ctx, q) // db/reach.go: beyond the transaction
	if err != nil {
		return err
	}
	problems = append(problems, reach...)
	if len(problems) > 0 {
		return &SafetyError{Problems: problems}
	}
	return nil
}
