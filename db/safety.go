package db

import (
	"context"
	"fmt"
	"strings"

	"github.com/rowfence/rowfence/db/dbsqlc"
)

// SafetyError lists why the serving role could see across tenants.
type SafetyError struct {
	Problems []string
}

func (e *SafetyError) Error() string {
	return "refusing to serve: the database role could bypass row-level security: " + strings.Join(e.Problems, "; ")
}

// CheckSafety fails closed: it returns a *SafetyError when the connection
// could see across tenants, naming each problem. A role the connection can
// become counts as the connection: SET ROLE works for every role its current
// or session user is a member of, at any depth, INHERIT or not (DESIGN.md,
// leak vector 11; PostgreSQL docs, "Role Membership"). It refuses when such a
// role
//   - is a superuser or has BYPASSRLS (vector 1), or CREATEROLE (it can grant
//     itself the owner role), or is one of the predefined roles that act as
//     the server's operating system user (pg_execute_server_program,
//     pg_read_server_files, pg_write_server_files);
//   - owns a tenant table, or anything else in a schema holding tenant
//     tables, or that schema (vector 1);
//   - holds TRUNCATE, TRIGGER or REFERENCES on a tenant table (vector 7);
//   - is another role that may read or change the tenant registry (the
//     platform role, when the app role could become it);
//
// and when the connection carries a session-level app.tenant_id or app.role
// (a startup option; vector 2), when a tenant table lacks enabled and forced RLS, or there are no
// tenant tables at all (an unmigrated database). serve runs it on each pool
// at start and /readyz on every call. The queries are in queries/safety.sql.
func CheckSafety(ctx context.Context, q *dbsqlc.Queries) error {
	var problems []string
	roles, err := q.SafetyRoleProblems(ctx)
	if err != nil {
		return mapError(err)
	}
	for _, r := range roles {
		who := fmt.Sprintf("role %s", r.RoleName)
		if !r.IsCurrent {
			who = fmt.Sprintf("the serving role can become %s (SET ROLE), which", r.RoleName)
		}
		if r.IsSuperuser {
			problems = append(problems, fmt.Sprintf("%s is a superuser", who))
		}
		if r.BypassesRls {
			problems = append(problems, fmt.Sprintf("%s has BYPASSRLS", who))
		}
		if r.CreatesRoles {
			problems = append(problems, fmt.Sprintf("%s has CREATEROLE, so it can grant itself the owner role", who))
		}
		if r.ServerFiles {
			problems = append(problems, fmt.Sprintf("%s acts as the server's operating system user (its files or programs)", who))
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
		if t.OwnerReached != "" {
			problems = append(problems, fmt.Sprintf("table %s is owned by %s, the serving role or a role it can become", t.TableName, t.OwnerReached))
		}
		if t.UnsafeGrants != "" {
			problems = append(problems, fmt.Sprintf("the serving role holds TRUNCATE, REFERENCES or TRIGGER on table %s: %s", t.TableName, t.UnsafeGrants))
		}
	}
	owned, err := q.SafetyOwnedObjects(ctx)
	if err != nil {
		return mapError(err)
	}
	for _, o := range owned {
		who := fmt.Sprintf("the serving role can become %s (SET ROLE), which", o.RoleName)
		if o.IsCurrent {
			who = fmt.Sprintf("the serving role %s", o.RoleName)
		}
		problems = append(problems, fmt.Sprintf("%s owns %d object(s) in a schema that holds tenant tables: %s", who, o.Owned, o.Examples))
	}
	registry, err := q.SafetyRegistryReach(ctx)
	if err != nil {
		return mapError(err)
	}
	for _, r := range registry {
		problems = append(problems, fmt.Sprintf("the serving role can become %s (SET ROLE), which reads or changes the tenant registry", r))
	}
	session, err := q.SafetySessionSettings(ctx)
	if err != nil {
		return mapError(err)
	}
	if session.TenantID != "" || session.AppRole != "" {
		problems = append(problems, fmt.Sprintf("the connection has a session-level app.tenant_id (%q) or app.role (%q): set them only in a unit of work; remove -c app.… from PGOPTIONS or the connection string's options", session.TenantID, session.AppRole))
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
