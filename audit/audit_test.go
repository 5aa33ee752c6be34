package audit

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func defects(rep Report) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if !f.Accepted {
			out = append(out, f)
		}
	}
	return out
}

func TestMigratedSchemaPasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := pgtest.New(t).AdminPool(t)
	rep, err := Run(ctx, admin, Options{})
	require.NoError(t, err)
	require.Empty(t, defects(rep), "the migrated schema has no defect")
	require.Zero(t, rep.Defects())
	var checks []string
	for _, f := range rep.Findings {
		checks = append(checks, f.Check+" "+f.Object)
		require.NotEmpty(t, f.Reason, "every accepted finding says why")
	}
	require.Contains(t, checks, "security-definer public.tenant_lookup(p_id uuid, p_slug text)",
		"the deliberate cross-tenant path is listed, not hidden")
	require.Contains(t, checks, "cross-tenant-role rowfence_platform", "so is the platform role")
	// Every tenant table is bounded by one restrictive tenant policy; the
	// permissive ones decide by role.
	restrictive := map[string]bool{}
	for _, p := range rep.Policies {
		if p.Table == "public.tenants" || p.Table == "public.platform_keys" || p.Table == "public.cells" || p.Table == "public.tenant_moves" {
			// Not tenant tables: the platform role's registry, keys, cells and moves.
			require.Equal(t, "rowfence_platform", p.Roles, "%s on %s is for the platform role only", p.Name, p.Table)
			continue
		}
		if p.Kind == "RESTRICTIVE" {
			require.Equal(t, "tenant_isolation", p.Name)
			require.Equal(t, "ALL", p.Command)
			require.Contains(t, p.Using, "app.tenant_id")
			require.Contains(t, p.WithCheck, "app.tenant_id")
			restrictive[p.Table] = true
		} else {
			require.Contains(t, p.Using+p.WithCheck, "app.role", "%s %s", p.Table, p.Name)
		}
	}
	// Every tenant table, rowfence's and any a team adds (docs/EXTENDING.md).
	rows, err := admin.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	tenantTables := map[string]bool{}
	for _, table := range tables {
		tenantTables[table] = true
	}
	require.Subset(t, tables, []string{"public.api_keys", "public.exports", "public.idempotency_keys", "public.products", "public.users"})
	require.Equal(t, tenantTables, restrictive)
}

// plant is one planted defect: SQL the migrating role runs in a fresh
// database ({{role}}: a stand-in for rowfence_app made for the case, {{db}}:
// the database), and the findings the audit must then report as defects
// ("check object", {{role}} replaced). widens marks a defect that lets a
// serving role do more than the role model says, which the role matrix
// test must see as well.
type plant struct {
	name   string
	sql    string
	want   []string
	widens bool
}

// planted grows with every kind of defect found: one row per kind. The
// kinds of role membership (issue 14, item 1) come from pgtest.RoleWidenings,
// which the start-up check's and /readyz's tests share.
var planted = []plant{
	{name: "RLS enabled but not forced",
		sql: `create table notes (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
		      alter table notes enable row level security`,
		want: []string{"rls-not-forced public.notes"}},
	{name: "a single-column foreign key between tenant tables",
		sql: `create table notes (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
		      alter table notes enable row level security; alter table notes force row level security;
		      create unique index notes_id_key on notes (id);
		      create table note_refs (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, note_id uuid references notes (id), primary key (tenant_id, note_id));
		      alter table note_refs enable row level security; alter table note_refs force row level security`,
		want: []string{"fk-not-composite note_refs constraint note_refs_note_id_fkey", "unique-not-per-tenant notes_id_key"}},
	// No restrictive tenant policy bounds notes, so an open permissive
	// policy opens it.
	{name: "an open policy on an unbounded table",
		sql: `create table notes (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
		      alter table notes enable row level security; alter table notes force row level security;
		      create policy open on notes using (true)`,
		want: []string{"policy-without-tenant public.notes policy open"}},
	// A restrictive policy that covers only SELECT does not bound writes.
	{name: "a restrictive policy for SELECT only",
		sql: `create table note_refs (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
		      alter table note_refs enable row level security; alter table note_refs force row level security;
		      create policy scoped_reads on note_refs as restrictive for select
		          using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
		      create policy open_refs on note_refs using (true)`,
		want: []string{"policy-without-tenant public.note_refs policy open_refs"}},
	// The folded form bounds a table only when it is exactly that: a CASE
	// that falls back to tenant_id itself matches every row.
	{name: "a folded tenant policy that falls back to every row",
		sql: `create table notes_folded (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
		      alter table notes_folded enable row level security; alter table notes_folded force row level security;
		      create policy tenant_isolation on notes_folded as restrictive
		          using (tenant_id = case when current_setting('app.role', true) in ('admin') then nullif(current_setting('app.tenant_id', true), '')::uuid else tenant_id end)
		          with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
		      create policy open_folded on notes_folded using (true)`,
		want: []string{"policy-without-tenant public.notes_folded policy open_folded"}},
	{name: "TRUNCATE granted to the app role",
		sql:  `grant truncate on users to rowfence_app`,
		want: []string{"unsafe-grant public.users"}},
	{name: "the tenant registry granted to the app role",
		sql:  `grant select on tenants to rowfence_app`,
		want: []string{"cross-tenant-role rowfence_app"}},
	{name: "a SECURITY DEFINER function without a pinned search_path",
		sql:  `create function peek() returns bigint language sql security definer as 'select count(*) from public.products'`,
		want: []string{"security-definer public.peek()"}},
	{name: "the accepted tenant_lookup made executable by PUBLIC",
		sql:  `grant execute on function tenant_lookup(uuid, text) to public`,
		want: []string{"security-definer public.tenant_lookup(p_id uuid, p_slug text)"}},
	{name: "the accepted enqueue_export made callable by the app role",
		sql:  `grant execute on function enqueue_export() to rowfence_app`,
		want: []string{"security-definer public.enqueue_export()"}},
	{name: "a view without security_invoker",
		sql:  `create view all_products as select * from products`,
		want: []string{"view-not-security-invoker public.all_products"}},
	{name: "a loose tenant_id, a serial key",
		sql:  `create table loose (tenant_id uuid, n serial primary key)`,
		want: []string{"tenant-id-column public.loose.tenant_id", "serial-column public.loose.n", "unique-not-per-tenant loose_pkey"}},
	{name: "an index not leading with tenant_id",
		sql:  `create index products_name_idx on products (name)`,
		want: []string{"index-not-leading-tenant products_name_idx"}},
	{name: "a LEAKPROOF function",
		sql:  `create function always(integer) returns boolean language sql immutable leakproof as 'select true'`,
		want: []string{"leakproof-function public.always(integer)"}},
	// Issue 14, item 2: permissive policies that widen a role inside its
	// tenant, which the restrictive tenant policy does not stop.
	{name: "an open policy inside the tenant (a viewer creates products)",
		sql:  `create policy open_all on products using (true)`,
		want: []string{"policy-widens-role public.products policy open_all"}, widens: true},
	{name: "a permissive FOR INSERT WITH CHECK (true)",
		sql:  `create policy insert_any on products for insert with check (true)`,
		want: []string{"policy-widens-role public.products policy insert_any"}, widens: true},
	{name: "a policy TO rowfence_app USING (true)",
		sql:  `create policy app_all on users to rowfence_app using (true)`,
		want: []string{"policy-widens-role public.users policy app_all"}, widens: true},
	{name: "a policy TO rowfence_platform USING (true)",
		sql:  `create policy platform_all on exports to rowfence_platform using (true)`,
		want: []string{"policy-widens-role public.exports policy platform_all"}, widens: true},
	{name: "a policy that lets a viewer UPDATE",
		sql: `create policy viewer_edit on products for update
		          using (current_setting('app.role', true) = 'viewer') with check (current_setting('app.role', true) = 'viewer')`,
		want: []string{"policy-widens-role public.products policy viewer_edit"}, widens: true},
	{name: "a policy that names an app.role the model does not know",
		sql:  `create policy owner_read on exports for select using (current_setting('app.role', true) = 'owner')`,
		want: []string{"policy-widens-role public.exports policy owner_read"}, widens: true},
	{name: "a role gate ORed with something true",
		sql: `create policy gate_or on idempotency_keys for select
		          using (current_setting('app.role', true) = 'admin' or tenant_id is not null)`,
		want: []string{"policy-widens-role public.idempotency_keys policy gate_or"}, widens: true},
	{name: "a grant of a command the model gives no app.role",
		sql:  `grant delete on exports to rowfence_app`,
		want: []string{"grant-widens-role rowfence_app on public.exports"}, widens: true},
	{name: "a column the model does not give, of a command it gives",
		sql:  `grant update (status) on exports to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.exports"}},
	// The membership is rowfence_app's own, cluster-wide, but in a role that
	// holds nothing outside this case's database and is dropped with it.
	{name: "that grant through a role the app role can become",
		sql:  `create role {{role}}_up nologin; grant delete on exports to {{role}}_up; grant {{role}}_up to rowfence_app`,
		want: []string{"grant-widens-role rowfence_app on public.exports"}, widens: true},
	// Leak vector 12 through membership: CREATE held by a role the app role
	// can become (audit 14 checks the serving roles by name).
	{name: "CREATE on the schema through a role the app role can become",
		sql:  `create role {{role}}_c8 nologin; grant create on schema public to {{role}}_c8; grant {{role}}_c8 to rowfence_app`,
		want: []string{"serving-role-reach rowfence_app create-objects"}},
	// The same for every other capability: observed, GRANT pg_monitor TO
	// rowfence_app let it read every session's statements (SET ROLE
	// pg_monitor) and audit 14 said nothing. Per-database grants here, so
	// that the cluster-wide membership reaches nothing in other databases.
	{name: "pg_stat_activity through a role the app role can become",
		sql:  `create role {{role}}_st nologin; grant select on pg_stat_activity to {{role}}_st; grant {{role}}_st to rowfence_app`,
		want: []string{"serving-role-reach rowfence_app session-activity"}},
	{name: "TEMPORARY through a role the platform role can become",
		sql:  `create role {{role}}_tmp nologin; grant temporary on database {{db}} to {{role}}_tmp; grant {{role}}_tmp to rowfence_platform`,
		want: []string{"serving-role-reach rowfence_platform temporary-tables"}},
	// Column grants beyond the role model's columns: the command is the
	// model's, so grant-widens-role says nothing, yet the role may now name
	// a column it must never write (issue 14, security review). tenant_id
	// moves a row to another tenant; a key's role, secret or user rewrites
	// the credential.
	{name: "UPDATE (tenant_id) on products to the app role",
		sql:  `grant update (tenant_id) on products to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.products"}},
	{name: "INSERT (tenant_id) on users to the app role",
		sql:  `grant insert (tenant_id) on users to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.users"}},
	{name: "UPDATE (role) on api_keys to the app role",
		sql:  `grant update (role) on api_keys to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.api_keys"}},
	{name: "UPDATE (secret_hash) on api_keys to the platform role",
		sql:  `grant update (secret_hash) on api_keys to rowfence_platform`,
		want: []string{"column-grant-widens-role rowfence_platform on public.api_keys", "grant-widens-role rowfence_platform on public.api_keys"}},
	{name: "UPDATE (tenant_id) through a role the app role can become",
		sql:  `create role {{role}}_col nologin; grant update (tenant_id) on products to {{role}}_col; grant {{role}}_col to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.products"}},
	{name: "UPDATE (user_id) on api_keys through a role the platform role can become",
		sql:  `create role {{role}}_pcol nologin; grant update (user_id) on api_keys to {{role}}_pcol; grant {{role}}_pcol to rowfence_platform`,
		want: []string{"column-grant-widens-role rowfence_platform on public.api_keys"}},
	// A table-level grant of a command the model gives through some
	// columns only: every other column, tenant_id included.
	{name: "a table-level UPDATE where the model gives columns",
		sql:  `grant update on users to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.users"}},
	{name: "REFERENCES (tenant_id) on products to the app role",
		sql:  `grant references (tenant_id) on products to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.products", "unsafe-grant public.products"}},
	// The registry through a column: has_table_privilege does not count
	// column grants, so check 12 missed it.
	{name: "a column of the tenant registry to the app role",
		sql:  `grant update (status) on tenants to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.tenants", "cross-tenant-role rowfence_app"}},
	{name: "a column of the tenant registry through a role the app role can become",
		sql:  `create role {{role}}_reg nologin; grant select (slug) on tenants to {{role}}_reg; grant {{role}}_reg to rowfence_app`,
		want: []string{"column-grant-widens-role rowfence_app on public.tenants", "cross-tenant-role rowfence_app"}},
	{name: "row level security switched off",
		sql:  `alter table products disable row level security`,
		want: []string{"rls-not-forced public.products", "grant-widens-role rowfence_app on public.products"}, widens: true},
}

// Each defect planted in a fresh database must be reported, so that the
// audit can never silently pass; the same database reports none before.
// Not parallel: roles are cluster-wide, and the clean-schema test must not
// see a planted one. Each case drops its roles when it ends.
func TestPlantedDefectsAreReported(t *testing.T) {
	cases := slices.Clone(planted)
	for _, w := range pgtest.RoleWidenings {
		if w.Check == "" {
			continue // planted on the serving roles themselves, in planted or reach_test.go
		}
		cases = append(cases, plant{name: "membership: " + w.Name, sql: w.SQL, want: []string{w.Check + " " + w.Object}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			tdb := pgtest.New(t)
			admin, err := pgx.Connect(ctx, tdb.AdminURL)
			require.NoError(t, err)
			defer admin.Close(ctx)
			var role string
			if strings.Contains(c.sql, "{{role}}") {
				role, _ = tdb.StandIn(t, db.AppRole)
			}
			rep, err := Run(ctx, admin, Options{})
			require.NoError(t, err)
			// A stand-in holds the app role's grants under its own name, EXECUTE
			// on tenant_lookup among them, so check 05 rightly names one more
			// role that may execute it: the only defect it may bring.
			for _, f := range defects(rep) {
				require.True(t, role != "" && f.Check == "security-definer" &&
					f.Object == "public.tenant_lookup(p_id uuid, p_slug text)" && strings.Contains(f.Detail, role),
					"before planting: %v", f)
			}
			expand := strings.NewReplacer("{{role}}", role, "{{db}}", tdb.Name).Replace
			_, err = admin.Exec(ctx, expand(c.sql))
			require.NoError(t, err, c.sql)

			rep, err = Run(ctx, admin, Options{})
			require.NoError(t, err)
			got := map[string]Finding{}
			for _, f := range defects(rep) {
				got[f.Check+" "+f.Object] = f
			}
			for _, w := range c.want {
				f, ok := got[expand(w)]
				require.True(t, ok, "planted %s: %s was not reported; defects: %v", c.name, expand(w), keys(got))
				require.NotEmpty(t, f.Detail)
			}
			if c.widens {
				require.NotEmpty(t, matrixDiff(t, tdb.AdminURL), "the role matrix test sees %s too", c.name)
			}
		})
	}
}

func TestSecurityDefinerDetailSaysWhetherPinned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := pgtest.New(t).AdminPool(t)
	_, err := admin.Exec(ctx, `create function peek() returns bigint language sql security definer as 'select count(*) from public.products'`)
	require.NoError(t, err)
	rep, err := Run(ctx, admin, Options{})
	require.NoError(t, err)
	for _, f := range rep.Findings {
		if f.Object == "public.peek()" {
			require.Contains(t, f.Detail, "NOT pinned")
			require.False(t, f.Accepted)
			return
		}
	}
	t.Fatal("peek() was not reported")
}

// --accept-role accepts a login role's bypass or ownership, never a serving
// role's; the role running the audit may act as the owner (the migrating
// role must). Not parallel: the role is cluster-wide.
func TestAcceptedRoles(t *testing.T) {
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	role, url := tdb.StandIn(t, db.AppRole)
	_, err := admin.Exec(ctx, "alter role "+role+" bypassrls; grant rowfence_owner to "+role)
	require.NoError(t, err)
	verdicts := func(q Querier, opts Options) map[string]bool {
		rep, err := Run(ctx, q, opts)
		require.NoError(t, err)
		out := map[string]bool{}
		for _, f := range rep.Findings {
			if f.Object == role {
				out[f.Check] = f.Accepted
			}
		}
		return out
	}
	require.Equal(t, map[string]bool{"login-bypasses-rls": false, "login-can-become-owner": false}, verdicts(admin, Options{}))
	require.Equal(t, map[string]bool{"login-bypasses-rls": true, "login-can-become-owner": true}, verdicts(admin, Options{AcceptRoles: []string{role}}))
	// Run as the role itself: it may act as the owner, not bypass RLS.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Equal(t, map[string]bool{"login-bypasses-rls": false, "login-can-become-owner": true}, verdicts(conn, Options{}))

	for _, serving := range ServingRoles {
		for _, check := range []string{"login-bypasses-rls", "login-can-become-owner"} {
			ok, _ := judge(Finding{Check: check, Object: serving, Detail: "bootstrap superuser"}, serving, Options{AcceptRoles: ServingRoles})
			require.False(t, ok, "%s %s is never accepted", check, serving)
		}
	}
}

// The role model (sql/audit/21_role_model.sql, README's "Roles inside a
// tenant") against what each serving role can actually do: every command on
// every tenant table under every app.role value, tried in SQL as the serving
// role in a transaction that is rolled back. A policy or grant that widens a
// role, and one that narrows it, fails this test; so does a tenant table the
// model does not know. Without a tenant, nothing is allowed at all.
func TestRoleMatrixMatchesTheModel(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	require.Empty(t, matrixDiff(t, tdb.AdminURL))
}

// matrixDiff tries the role matrix (testdata/role_matrix*.sql) in a
// transaction it rolls back and lists where it differs from the role model:
// "+ …" allowed but not in the model, "- …" in the model but refused.
func matrixDiff(t *testing.T, adminURL string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	setup, err := os.ReadFile("testdata/role_matrix_setup.sql")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, string(setup))
	require.NoError(t, err)
	query, err := os.ReadFile("testdata/role_matrix.sql")
	require.NoError(t, err)
	rows, err := tx.Query(ctx, string(query))
	require.NoError(t, err)
	type try struct {
		Cell
		Tenant, Outcome string
	}
	tries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (try, error) {
		var r try
		return r, row.Scan(&r.ServingRole, &r.Table, &r.Command, &r.AppRole, &r.Tenant, &r.Outcome)
	})
	require.NoError(t, err)
	model, err := RoleModel(ctx, tx)
	require.NoError(t, err)
	require.NotEmpty(t, model)
	documented := map[Cell]bool{}
	for _, c := range model {
		documented[c] = true
	}
	var diff []string
	tried := map[Cell]bool{}
	for _, r := range tries {
		allowed := strings.HasPrefix(r.Outcome, "allowed")
		switch {
		case r.Tenant == "no tenant" && allowed:
			diff = append(diff, fmt.Sprintf("+ %s %s %s under app.role %q with no tenant: %s", r.ServingRole, r.Command, r.Table, r.AppRole, r.Outcome))
		case r.Tenant == "no tenant":
		case allowed && !documented[r.Cell]:
			diff = append(diff, fmt.Sprintf("+ %s %s %s under app.role %q: %s", r.ServingRole, r.Command, r.Table, r.AppRole, r.Outcome))
		case !allowed && documented[r.Cell]:
			diff = append(diff, fmt.Sprintf("- %s %s %s under app.role %q: %s", r.ServingRole, r.Command, r.Table, r.AppRole, r.Outcome))
		}
		tried[r.Cell] = true
	}
	for c := range documented {
		if tried[c] {
			continue
		}
		diff = append(diff, fmt.Sprintf("- %s %s %s under app.role %q: not tried (no such table or role)", c.ServingRole, c.Command, c.Table, c.AppRole))
	}
	return diff
}

func keys(m map[string]Finding) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// The README's table of what each role may do through rowfence_app says
// what the role model says: a reader sees the same rules the audit and the
// matrix test use.
func TestReadmeRoleTableMatchesTheModel(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "What each role may do in each tenant table through `rowfence_app`")
	require.True(t, ok, "the README's role table is gone")
	known := []string{"admin", "member", "viewer", "auth"}
	commands := []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
	documented := map[Cell]bool{}
	rows := 0
	for _, line := range strings.Split(rest, "\n")[3:] {
		if !strings.HasPrefix(line, "| ") {
			if rows > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if cells[0] == "table" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		require.Len(t, cells, 5, line)
		rows++
		for i, cell := range cells[1:] {
			cell, _, _ = strings.Cut(cell, "(") // words in parentheses explain, they grant nothing
			for _, word := range strings.FieldsFunc(cell, func(r rune) bool { return r < 'a' || r > 'z' }) {
				if slices.Contains(known, word) {
					documented[Cell{"rowfence_app", "public." + cells[0], commands[i], word}] = true
				}
			}
		}
	}
	model, err := RoleModel(context.Background(), pgtest.New(t).AdminPool(t))
	require.NoError(t, err)
	want := map[Cell]bool{}
	for _, c := range model {
		if c.ServingRole == "rowfence_app" {
			want[c] = true
		}
	}
	require.Equal(t, want, documented)
}

// The role model's columns are what sql/migrations grant, no more and no
// less: check 21 reports a column beyond them, and this test a column the
// model lists that the migrated schema does not grant (or a whole table
// where the migrations grant columns), so the model cannot drift from the
// migrations either way. Held by the serving role itself or a role it can
// become, on the table or the column.
func TestColumnModelIsWhatTheMigrationsGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := pgtest.New(t).AdminPool(t)
	model, err := ColumnModel(ctx, admin)
	require.NoError(t, err)
	tables := map[string]bool{}
	for _, g := range model {
		tables[g.Table] = true
		require.False(t, g.Table != "public.tenants" && g.Table != "public.platform_keys" && g.Table != "public.cells" && g.Table != "public.tenant_moves" &&
			(g.Command == "INSERT" || g.Command == "UPDATE") && (g.Every || slices.Contains(g.Columns, "tenant_id")),
			"the model gives %s %s of %s's tenant_id", g.ServingRole, g.Command, g.Table)
		var every bool
		var columns []string
		err := admin.QueryRow(ctx, `
			SELECT coalesce(bool_or(has_table_privilege(b.oid, $2::regclass, $3)), false),
			       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attname)
			                 FROM pg_attribute a
			                 WHERE a.attrelid = $2::regclass AND a.attnum > 0 AND NOT a.attisdropped AND $3 <> 'DELETE'
			                   AND EXISTS (SELECT 1 FROM pg_roles c
			                               WHERE pg_has_role($1::regrole, c.oid, 'MEMBER')
			                                 AND has_column_privilege(c.oid, a.attrelid, a.attnum, $3))), '{}')
			FROM pg_roles b
			WHERE pg_has_role($1::regrole, b.oid, 'MEMBER')`, g.ServingRole, g.Table, g.Command).Scan(&every, &columns)
		require.NoError(t, err, "%s %s %s", g.ServingRole, g.Command, g.Table)
		if every || len(columns) == 0 {
			columns = nil
		}
		want := slices.Sorted(slices.Values(g.Columns))
		if g.Every || len(want) == 0 {
			want = nil
		}
		require.Equal(t, g.Every, every, "%s %s on the whole of %s", g.ServingRole, g.Command, g.Table)
		require.Equal(t, want, columns, "%s %s on %s: the model's columns against the migrations'", g.ServingRole, g.Command, g.Table)
	}
	require.True(t, tables["public.tenants"], "the model lists the tenant registry")
}
