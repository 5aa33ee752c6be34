package audit

import (
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"

	schema "github.com/rowfence/rowfence/sql"
)

// Cell is one thing the role model allows: ServingRole (a database role,
// "rowfence_app" or "rowfence_platform") may run Command ("SELECT",
// "INSERT", "UPDATE" or "DELETE") on Table ("public.products") while the
// request's app.role setting is AppRole (a dbtype.Role: "admin", "member",
// "viewer" or "auth"; TestRoleModelSpeaksTheVocabulary keeps the two lists
// equal). Whatever has no cell is refused.
type Cell struct {
	ServingRole string
	Table       string
	Command     string
	AppRole     string
}

// RoleModelFile holds the role model, README.md's "Roles inside a tenant"
// written down once as a VALUES list between two marker comments, with the
// columns each command may name as the migrations grant them. Check 21
// compares the catalog with it; audit.TestRoleMatrixMatchesTheModel
// compares what each serving role can actually do with it, and
// audit.TestColumnModelIsWhatTheMigrationsGrant its columns with the
// migrated schema's grants.
const RoleModelFile = "audit/21_role_model.sql"

const (
	modelBegin = "-- role model: begin\n"
	modelEnd   = "-- role model: end\n"
)

// RoleModelQuery returns a query whose rows are the role model's cells,
// (serving_role, table_name, command, app_role), ordered.
func RoleModelQuery() (string, error) {
	values, err := modelValues()
	if err != nil {
		return "", err
	}
	return "SELECT m.serving_role, m.table_name, m.command, r.app_role\nFROM (\n" + values +
		") AS m(serving_role, table_name, command, app_roles, columns)\nCROSS JOIN unnest(m.app_roles) AS r(app_role)\nORDER BY 1, 2, 3, 4", nil
}

// RoleModel reads the role model's cells through q (any connection: the
// query only evaluates a list of values).
func RoleModel(ctx context.Context, q Querier) ([]Cell, error) {
	query, err := RoleModelQuery()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Cell])
}

// modelValues is the role model's VALUES list, as written in RoleModelFile.
func modelValues() (string, error) {
	body, err := fs.ReadFile(schema.Audit, RoleModelFile)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(body), modelBegin)
	values, _, ok2 := strings.Cut(rest, modelEnd)
	if !ok || !ok2 {
		return "", errors.New("audit: " + RoleModelFile + " has no role model between its marker comments")
	}
	return values, nil
}

// ColumnGrant is one row of the role model read for its columns:
// ServingRole may name Columns in Command ("SELECT", "INSERT", "UPDATE" or
// "DELETE") on Table. Every is true when the model gives the whole table (a
// table-level grant); otherwise Columns lists what it gives, none meaning
// the command is not granted at all. Tenant tables and the tenant registry
// ("public.tenants") are both listed. Check 21 reports a column privilege
// beyond these as column-grant-widens-role, and any INSERT or UPDATE of
// tenant_id whatever the model says.
type ColumnGrant struct {
	ServingRole string
	Table       string
	Command     string
	Every       bool
	Columns     []string
}

// ColumnModel reads the role model's column grants through q (any
// connection), ordered by serving role, table and command.
func ColumnModel(ctx context.Context, q Querier) ([]ColumnGrant, error) {
	values, err := modelValues()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT serving_role, table_name, command, columns IS NULL, coalesce(columns, '{}')\nFROM (\n"+values+
		") AS m(serving_role, table_name, command, app_roles, columns)\nORDER BY 1, 2, 3")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[ColumnGrant])
}
