package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandIn creates a login role that stands in for the serving role like
// (db.AppRole or db.PlatformRole) in d's database: the same attributes
// (LOGIN NOSUPERUSER NOBYPASSRLS, like's INHERIT setting), the same
// memberships and the same privileges on the database and every schema,
// table, column, sequence and function in it, under its own name. Roles
// are cluster-wide and every test database of a run shares them, so a test
// that widens a serving role widens a stand-in instead and leaves like alone
// for the tests running beside it.
//
// It returns the role's name and a connection string that logs in as it
// (with a password, so it works on a server that asks for one). When t ends
// the role and every role whose name starts with name + "_" (a test's helper
// roles) are dropped, after what they own is handed back to the migrating
// role.
func (d *DB) StandIn(t testing.TB, like string) (name, connString string) {
	t.Helper()
	name = fmt.Sprintf("rf_si_%s_%d", d.Name, counter.Add(1))
	password := randomHex(16)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	t.Cleanup(func() { d.dropRoles(t, name) })
	// The role's attributes, then a copy of like's memberships and grants,
	// read from the ACLs of this database's catalog.
	if _, err := conn.Exec(ctx, `
SELECT set_config('rowfence.stand_in', $1, false), set_config('rowfence.stand_in_like', $2, false),
       set_config('rowfence.stand_in_password', $3, false)`, name, like, password); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if _, err := conn.Exec(ctx, standInSQL); err != nil {
		t.Fatalf("pgtest: stand-in for %s: %v", like, err)
	}
	u, _ := url.Parse(d.AdminURL)
	u.User = url.UserPassword(name, password)
	return name, u.String()
}

// standInSQL copies rowfence.stand_in_like into a new role rowfence.stand_in.
const standInSQL = `
DO $$
DECLARE
    si   text := current_setting('rowfence.stand_in');
    like_role oid := current_setting('rowfence.stand_in_like')::regrole;
    stmt text;
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE %s PASSWORD %L',
                   si, CASE WHEN (SELECT rolinherit FROM pg_roles WHERE oid = like_role) THEN 'INHERIT' ELSE 'NOINHERIT' END,
                   current_setting('rowfence.stand_in_password'));
    FOR stmt IN
        SELECT format('GRANT %I TO %I', m.roleid::regrole::text, si)
        FROM pg_auth_members m WHERE m.member = like_role
        UNION ALL
        SELECT format('GRANT %s ON DATABASE %I TO %I', a.privilege_type, d.datname, si)
        FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database() AND a.grantee = like_role
        UNION ALL
        SELECT format('GRANT %s ON SCHEMA %I TO %I', a.privilege_type, n.nspname, si)
        FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee = like_role
        UNION ALL
        SELECT format('GRANT %s ON %s %s TO %I', a.privilege_type,
                      CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass, si)
        FROM pg_class c, aclexplode(c.relacl) a WHERE a.grantee = like_role
        UNION ALL
        SELECT format('GRANT %s (%I) ON TABLE %s TO %I', a.privilege_type, att.attname, att.attrelid::regclass, si)
        FROM pg_attribute att, aclexplode(att.attacl) a WHERE a.grantee = like_role AND NOT att.attisdropped
        UNION ALL
        SELECT format('GRANT %s ON FUNCTION %s TO %I', a.privilege_type, p.oid::regprocedure, si)
        FROM pg_proc p, aclexplode(p.proacl) a WHERE a.grantee = like_role
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$$`

// dropRoles drops name and its helper roles (name_…), handing what they own
// back to the migrating role first.
func (d *DB) dropRoles(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Logf("pgtest: drop stand-in %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT rolname FROM pg_roles WHERE rolname = $1 OR starts_with(rolname, $1 || '_') ORDER BY rolname DESC`, name)
	if err != nil {
		t.Logf("pgtest: drop stand-in %s: %v", name, err)
		return
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Logf("pgtest: drop stand-in %s: %v", name, err)
		return
	}
	for _, r := range roles {
		id := pgx.Identifier{r}.Sanitize()
		for _, stmt := range []string{"REASSIGN OWNED BY " + id + " TO CURRENT_USER", "DROP OWNED BY " + id, "DROP ROLE " + id} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Logf("pgtest: %s: %v", stmt, err)
			}
		}
	}
}

// A RoleWidening lets a serving role around row-level security without
// touching its own attributes, by what it can become (issue 14, item 1):
// SET ROLE works for any membership, at any depth, INHERIT or not, so any
// role the serving role can become counts as the serving role itself
// (DESIGN.md, leak vector 11). Each is one kind; the start-up check
// (db.CheckSafety, /readyz) and the audit must catch every one.
type RoleWidening struct {
	Name string
	// SQL widens the stand-in, run by the migrating role in the test's
	// database: {{role}} is the stand-in's name, {{db}} the database's.
	// Helper roles are named {{role}}_… so that they are dropped with it.
	SQL string
	// Safety is part of what db.CheckSafety's error says ({{role}} replaced).
	Safety string
	// Check and Object name the finding `rowfence audit` reports as a
	// defect ({{role}} replaced). Check is empty for a kind the audit checks
	// for rowfence_app and rowfence_platform by name only, which the audit's
	// own tests plant on them.
	Check, Object string
}

// Expand replaces {{role}} and {{db}} in s.
func (w RoleWidening) Expand(s, role, database string) string {
	return strings.NewReplacer("{{role}}", role, "{{db}}", database).Replace(s)
}

// RoleWidenings are the kinds found so far. Add one for each new kind.
var RoleWidenings = []RoleWidening{
	{Name: "owner role, granted directly",
		SQL:    `GRANT rowfence_owner TO {{role}}`,
		Safety: "can become rowfence_owner (SET ROLE), which owns", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "owner role, through a NOINHERIT role",
		SQL: `CREATE ROLE {{role}}_mid NOLOGIN NOINHERIT; GRANT rowfence_owner TO {{role}}_mid;
		      GRANT {{role}}_mid TO {{role}}`,
		Safety: "can become rowfence_owner (SET ROLE), which owns", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "owner role, three roles deep",
		SQL: `CREATE ROLE {{role}}_a NOLOGIN INHERIT; CREATE ROLE {{role}}_b NOLOGIN NOINHERIT;
		      GRANT rowfence_owner TO {{role}}_b; GRANT {{role}}_b TO {{role}}_a; GRANT {{role}}_a TO {{role}}`,
		Safety: "can become rowfence_owner (SET ROLE), which owns", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "a superuser role",
		SQL:    `CREATE ROLE {{role}}_su NOLOGIN SUPERUSER; GRANT {{role}}_su TO {{role}}`,
		Safety: "superuser", Check: "login-bypasses-rls", Object: "{{role}}"},
	{Name: "a BYPASSRLS role, through a NOINHERIT role",
		SQL: `CREATE ROLE {{role}}_by NOLOGIN BYPASSRLS; CREATE ROLE {{role}}_mid NOLOGIN NOINHERIT;
		      GRANT {{role}}_by TO {{role}}_mid; GRANT {{role}}_mid TO {{role}}`,
		Safety: "BYPASSRLS", Check: "login-bypasses-rls", Object: "{{role}}"},
	{Name: "BYPASSRLS itself",
		SQL:    `ALTER ROLE {{role}} BYPASSRLS`,
		Safety: "BYPASSRLS", Check: "login-bypasses-rls", Object: "{{role}}"},
	{Name: "a role that owns one tenant table",
		SQL: `CREATE ROLE {{role}}_own NOLOGIN; ALTER TABLE products OWNER TO {{role}}_own;
		      GRANT {{role}}_own TO {{role}}`,
		Safety: "table products is owned by {{role}}_own", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "a role that owns a trigger function of a tenant table",
		SQL: `CREATE ROLE {{role}}_fn NOLOGIN; ALTER FUNCTION enqueue_export() OWNER TO {{role}}_fn;
		      GRANT {{role}}_fn TO {{role}}`,
		Safety: "can become {{role}}_fn (SET ROLE), which owns 1 object(s) in a schema that holds tenant tables: function enqueue_export()", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "the database's owner (schema public belongs to pg_database_owner)",
		SQL:    `ALTER DATABASE {{db}} OWNER TO {{role}}`,
		Safety: "can become pg_database_owner (SET ROLE), which owns 1 object(s) in a schema that holds tenant tables: schema public", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "CREATEROLE (it may grant itself the owner role)",
		SQL:    `ALTER ROLE {{role}} CREATEROLE`,
		Safety: "CREATEROLE", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "a CREATEROLE role",
		SQL:    `CREATE ROLE {{role}}_cr NOLOGIN CREATEROLE; GRANT {{role}}_cr TO {{role}}`,
		Safety: "CREATEROLE", Check: "login-can-become-owner", Object: "{{role}}"},
	{Name: "TRUNCATE through a role",
		SQL: `CREATE ROLE {{role}}_tr NOLOGIN; GRANT TRUNCATE ON users TO {{role}}_tr;
		      GRANT {{role}}_tr TO {{role}}`,
		Safety: "on table users: TRUNCATE through {{role}}_tr", Check: "unsafe-grant", Object: "public.users"},
	{Name: "REFERENCES on the key columns, through a role",
		SQL: `CREATE ROLE {{role}}_ref NOLOGIN; GRANT REFERENCES (tenant_id, id) ON products TO {{role}}_ref;
		      GRANT {{role}}_ref TO {{role}}`,
		Safety: "on table products: REFERENCES through {{role}}_ref", Check: "unsafe-grant", Object: "public.products"},
	{Name: "TRIGGER through a role",
		SQL: `CREATE ROLE {{role}}_tg NOLOGIN; GRANT TRIGGER ON api_keys TO {{role}}_tg;
		      GRANT {{role}}_tg TO {{role}}`,
		Safety: "on table api_keys: TRIGGER through {{role}}_tg", Check: "unsafe-grant", Object: "public.api_keys"},
	{Name: "a role that runs programs or reads files as the server",
		SQL:    `GRANT pg_read_server_files TO {{role}}`,
		Safety: "pg_read_server_files", Check: "login-bypasses-rls", Object: "{{role}}"},
	{Name: "CREATE on the schema, through a role",
		SQL: `CREATE ROLE {{role}}_c8 NOLOGIN; GRANT CREATE ON SCHEMA public TO {{role}}_c8;
		      GRANT {{role}}_c8 TO {{role}}`,
		Safety: "may create schemas or objects"},
	{Name: "the platform role (the tenant registry)",
		SQL:    `GRANT rowfence_platform TO {{role}}`,
		Safety: "tenant registry", Check: "cross-tenant-role", Object: "{{role}}"},
}
