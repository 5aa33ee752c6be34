// Package audit runs the isolation audit in sql/audit against a database and
// judges its findings: each finding is a defect unless it is one of the
// accepted, documented exceptions below.
package audit

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	schema "github.com/rowfence/rowfence/sql"
)

// Finding is one row of one check.
type Finding struct {
	Check    string `json:"check"`
	Object   string `json:"object"`
	Detail   string `json:"detail"`
	File     string `json:"file"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

// Policy is one row of the policy inventory.
type Policy struct {
	Table     string `json:"table"`
	Name      string `json:"policy"`
	Command   string `json:"command"`
	Kind      string `json:"kind"`
	Roles     string `json:"roles"`
	Using     string `json:"using"`
	WithCheck string `json:"with_check"`
}

// Report is the whole audit.
type Report struct {
	Findings []Finding `json:"findings"`
	Policies []Policy  `json:"policies"`
}

// Defects counts the findings that are not accepted exceptions.
func (r Report) Defects() int {
	n := 0
	for _, f := range r.Findings {
		if !f.Accepted {
			n++
		}
	}
	return n
}

// Exception is a deliberate cross-tenant path or privilege, accepted with a
// reason. They are listed here, in the report, and in sql/audit/README.md.
type Exception struct {
	Check  string
	Object string
	Reason string
	// Executable, for a security-definer function, is exactly who may
	// execute it as check 05 lists it ("rowfence_app, rowfence_platform",
	// or "nobody but its owner"): one more grantee, PUBLIC included, and
	// the exception no longer holds.
	Executable string
}

// Accepted are rowfence's own exceptions.
var Accepted = []Exception{
	{
		Check:      "security-definer",
		Object:     "public.tenant_lookup(p_id uuid, p_slug text)",
		Reason:     "reads a verified credential's tenant (or a signed token's tenant claim) before any tenant context exists: one exact id or slug, at most one row of (id, slug, status, limits), search_path pinned, EXECUTE granted to rowfence_app and rowfence_platform only",
		Executable: "rowfence_app, rowfence_platform",
	},
	{
		Check:      "security-definer",
		Object:     "public.enqueue_export()",
		Reason:     "trigger on exports: enqueues the River job for the row its caller just inserted under its own tenant's setting (the app role has no access to River's schema); takes nothing but NEW, search_path pinned, callable by no one directly",
		Executable: "nobody but its owner",
	},
	{
		Check:  "cross-tenant-role",
		Object: "rowfence_platform",
		Reason: "platform administration (sql/migrations/00006_platform.sql): creates, suspends and deletes tenants and holds the platform keys; reached only with a platform admin key, never with a tenant's credential; bound by RLS in every tenant table like any role",
	},
}

// Options add the deployment's own accepted login roles (for example the
// DBA's administrative superuser, or a migrating role that is a member of
// the owner) to the bootstrap superuser and the role running the audit,
// which are always accepted. A serving role (ServingRoles) is never
// accepted, whatever Options say.
type Options struct {
	AcceptRoles []string
}

// ServingRoles serve requests (sql/migrations/00001_roles.sql,
// 00006_platform.sql). Nothing that lets them get around row-level security
// is ever an accepted exception (DESIGN.md, leak vectors 1 and 11).
var ServingRoles = []string{"rowfence_app", "rowfence_platform"}

// Querier is what the audit needs: a pgx connection or pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Run runs every check and the policy inventory.
func Run(ctx context.Context, q Querier, opts Options) (Report, error) {
	files, err := fs.Glob(schema.Audit, "audit/*.sql")
	if err != nil {
		return Report{}, err
	}
	sort.Strings(files)
	// The role the audit logs in as: the migrating role, which must be able
	// to act as the owner (check 20).
	var self string
	rows, err := q.Query(ctx, "SELECT session_user::text")
	if err != nil {
		return Report{}, err
	}
	if self, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[string]); err != nil {
		return Report{}, err
	}
	rep := Report{Findings: []Finding{}, Policies: []Policy{}}
	for _, file := range files {
		body, err := fs.ReadFile(schema.Audit, file)
		if err != nil {
			return Report{}, err
		}
		name := strings.TrimPrefix(file, "audit/")
		rows, err := q.Query(ctx, string(body))
		if err != nil {
			return Report{}, fmt.Errorf("%s: %w", name, err)
		}
		if strings.HasPrefix(name, "inventory_policies") {
			policies, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Policy])
			if err != nil {
				return Report{}, fmt.Errorf("%s: %w", name, err)
			}
			rep.Policies = append(rep.Policies, policies...)
			continue
		}
		found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Finding, error) {
			f := Finding{File: name}
			return f, row.Scan(&f.Check, &f.Object, &f.Detail)
		})
		if err != nil {
			return Report{}, fmt.Errorf("%s: %w", name, err)
		}
		for _, f := range found {
			f.Accepted, f.Reason = judge(f, self, opts)
			rep.Findings = append(rep.Findings, f)
		}
	}
	return rep, nil
}

func judge(f Finding, self string, opts Options) (bool, string) {
	for _, e := range Accepted {
		if e.Check == f.Check && e.Object == f.Object {
			// A definer function is only accepted while its search_path is
			// pinned and exactly the documented roles may execute it.
			if f.Check == "security-definer" && (!strings.Contains(f.Detail, "search_path pinned") ||
				!strings.HasSuffix(f.Detail, "; EXECUTE: "+e.Executable)) {
				return false, ""
			}
			return true, e.Reason
		}
	}
	if f.Check != "login-bypasses-rls" && f.Check != "login-can-become-owner" {
		return false, ""
	}
	if slices.Contains(ServingRoles, f.Object) {
		return false, ""
	}
	if f.Check == "login-bypasses-rls" && strings.Contains(f.Detail, "bootstrap superuser") {
		return true, "the cluster's bootstrap superuser: the DBA's own account, never used by rowfence to serve"
	}
	if f.Check == "login-can-become-owner" && f.Object == self {
		return true, "the role running this audit (DATABASE_URL): the migrating role, which creates and alters the tables as rowfence_owner and never serves"
	}
	if slices.Contains(opts.AcceptRoles, f.Object) {
		return true, "accepted with --accept-role"
	}
	return false, ""
}
