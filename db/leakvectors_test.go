package db_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// One test per leak vector (docs/DESIGN.md, "Known ways RLS leaks") not covered
// elsewhere (vectors 1-3 and 10 are in isolation_test.go, scope_test.go and
// safety_test.go). Each runs against the migrated schema, so a migration that
// reopens a vector fails it.

// tenantTables lists tables with a tenant_id column.
func tenantTables(t *testing.T, conn interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		select c.relname::text from pg_class c
		join pg_namespace n on n.oid = c.relnamespace
		join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
		where c.relkind in ('r', 'p') and n.nspname = 'public' order by 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return names
}

// Vector 4: FK checks ignore RLS. Shown on a scratch table with a
// single-column FK (tenant A learns that B's id exists), then checked
// absent from the real schema: every FK between tenant tables is composite.
func TestVector4ForeignKeysAreComposite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	pb := createProduct(t, bundle.app, bundle.b, "b's")
	_, err := bundle.admin.Exec(ctx, `
		create table scratch_refs (
			tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid,
			product_id uuid references products (id) );
		alter table scratch_refs enable row level security;
		alter table scratch_refs force row level security;
		create policy p on scratch_refs using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
		grant select, insert on scratch_refs to rowfence_app;`)
	// products.id alone is not unique, so PostgreSQL itself refuses the
	// single-column FK: the composite primary key is the first defence.
	require.Error(t, err)
	require.Contains(t, err.Error(), "no unique constraint matching given keys")

	rows, err := bundle.admin.Query(ctx, `
		select con.conname::text
		from pg_constraint con
		join pg_attribute ca on ca.attrelid = con.conrelid and ca.attname = 'tenant_id'
		join pg_attribute fa on fa.attrelid = con.confrelid and fa.attname = 'tenant_id'
		where con.contype = 'f'
		  and not (ca.attnum = any (con.conkey) and fa.attnum = any (con.confkey))`)
	require.NoError(t, err)
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, bad, "foreign keys between tenant tables must include tenant_id")

	// Unique constraints and unique indexes all lead with tenant_id.
	rows, err = bundle.admin.Query(ctx, `
		select i.indexrelid::regclass::text
		from pg_index i
		join pg_attribute a on a.attrelid = i.indrelid and a.attname = 'tenant_id'
		where i.indisunique and i.indkey[0] <> a.attnum`)
	require.NoError(t, err)
	bad, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, bad, "unique indexes on tenant tables must lead with tenant_id")
	_ = pb
}

// Vector 5: ON CONFLICT DO UPDATE against another tenant's row. The conflict
// target includes tenant_id, so B's row can never be the conflicting one: A's
// insert of the same email simply succeeds, and B's row is untouched.
func TestVector5OnConflictCannotReachAnotherTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	_, err := db.One(ctx, bundle.app, bundle.b, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "B", Email: "taken@example.com", Role: "admin"})
	})
	require.NoError(t, err)
	err = inTenant(t, bundle.app, bundle.a, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `insert into users (name, email, role) values ('A', 'taken@example.com', 'member')
			on conflict (tenant_id, email_lower) do update set name = 'hijacked', updated_at = now()`)
		return err
	})
	require.NoError(t, err)
	var name string
	err = inTenant(t, bundle.app, bundle.b, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "select name from users where email = 'taken@example.com'").Scan(&name)
	})
	require.NoError(t, err)
	require.Equal(t, "B", name)
}

// tenantCheck is a policy expression that is one tenant comparison and
// nothing else, as PostgreSQL prints it (whitespace collapsed): the plain
// form or the one with the readers' roles folded in (00010). The audit's
// check 02 matches the same two forms.
var tenantCheck = regexp.MustCompile(`^\(tenant_id = (` + tenantSettingRe + `|CASE WHEN \(current_setting\('app\.role'::text, true\) ` +
	`(= ANY \(ARRAY\['[a-z]+'::text(, '[a-z]+'::text)*\]\)|= '[a-z]+'::text)\) THEN ` + tenantSettingRe + ` ELSE NULL::uuid END)\)$`)

const tenantSettingRe = `\(NULLIF\(current_setting\('app\.tenant_id'::text, true\), ''::text\)\)::uuid`

func isTenantCheck(expr string) bool {
	return tenantCheck.MatchString(strings.Join(strings.Fields(expr), " "))
}

// Vector 6: permissive policies OR together. Every tenant table is bounded
// by one restrictive tenant policy for every command and role, which checks
// the tenant setting in USING and WITH CHECK; the permissive policies decide
// by role. A permissive USING (true) added by mistake therefore still
// cannot reach another tenant's rows (proved below, not just read off the
// catalog).
func TestVector6EveryPolicyChecksTheTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	for _, table := range tenantTables(t, bundle.admin) {
		rows, err := bundle.admin.Query(ctx, `
			select policyname::text, permissive::text, cmd::text, roles::text, coalesce(qual, ''), coalesce(with_check, '')
			from pg_policies where schemaname = 'public' and tablename = $1`, table)
		require.NoError(t, err)
		defer rows.Close()
		restrictive, permissive := 0, 0
		for rows.Next() {
			var name, kind, cmd, roles, using, check string
			require.NoError(t, rows.Scan(&name, &kind, &cmd, &roles, &using, &check))
			if kind == "RESTRICTIVE" {
				restrictive++
				require.Equal(t, "ALL", cmd, "%s.%s", table, name)
				require.Equal(t, "{public}", roles, "%s.%s", table, name)
				require.True(t, isTenantCheck(using), "%s.%s USING %s", table, name, using)
				require.True(t, isTenantCheck(check), "%s.%s WITH CHECK %s", table, name, check)
				continue
			}
			permissive++
			require.Contains(t, using+check, "current_setting('app.role'", "%s.%s decides by role", table, name)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, 1, restrictive, "table %s: one restrictive tenant policy", table)
		require.Positive(t, permissive, "table %s: no permissive policy means nobody can use it", table)
	}

	// An open permissive policy, planted: the restrictive one still bounds it.
	a := createProduct(t, bundle.app, bundle.a, "a's")
	createProduct(t, bundle.app, bundle.b, "b's")
	_, err := bundle.admin.Exec(ctx, "create policy open on products using (true) with check (true)")
	require.NoError(t, err)
	got, err := db.One(ctx, bundle.app, db.Scope{TenantID: bundle.a.TenantID, Role: dbtype.RoleViewer}, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
		return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
	})
	require.NoError(t, err)
	require.Len(t, got, 1, "a viewer sees only its own tenant's row even through an open policy")
	require.Equal(t, a.ID, got[0].ID)
	// The restrictive policy also names the roles that may read products
	// (00010): auth, which the open policy would let in, still sees nothing.
	got, err = db.One(ctx, bundle.app, db.Scope{TenantID: bundle.a.TenantID, Role: dbtype.RoleAuth}, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
		return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
	})
	require.NoError(t, err)
	require.Empty(t, got, "auth may not read products, whatever a permissive policy says")
}

// Vector 7: TRUNCATE and REFERENCES skip RLS, views run as their owner,
// SECURITY DEFINER functions as theirs, COPY FROM is refused under RLS.
func TestVector7PrivilegesViewsFunctionsCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	for _, table := range tenantTables(t, bundle.admin) {
		for _, priv := range []string{"TRUNCATE", "REFERENCES", "TRIGGER"} {
			var has bool
			require.NoError(t, bundle.admin.QueryRow(ctx,
				"select has_table_privilege('rowfence_app', $1::regclass, $2)", table, priv).Scan(&has))
			require.False(t, has, "rowfence_app has %s on %s", priv, table)
		}
	}
	var views int
	require.NoError(t, bundle.admin.QueryRow(ctx, `
		select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind in ('v', 'm') and n.nspname = 'public'
		  and not coalesce('security_invoker=true' = any (c.reloptions), false)`).Scan(&views))
	require.Zero(t, views, "views must be security_invoker")

	// The SECURITY DEFINER functions are tenant_lookup and the enqueue_export
	// trigger, each with its search_path pinned.
	rows, err := bundle.admin.Query(ctx, `
		select p.proname::text, coalesce(array_to_string(p.proconfig, ','), '')
		from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where p.prosecdef and n.nspname = 'public' order by p.proname`)
	require.NoError(t, err)
	type fn struct{ Name, Config string }
	defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fn])
	require.NoError(t, err)
	require.Equal(t, []fn{{"enqueue_export", "search_path=pg_catalog, pg_temp"}, {"tenant_lookup", "search_path=pg_catalog, pg_temp"}}, defs)
	// It answers one exact key with one row, and cannot be made to list tenants.
	for _, probe := range []string{"%", "", "tenant-a' or 'x'='x"} {
		var n int
		require.NoError(t, bundle.app.QueryRow(ctx, "select count(*) from tenant_lookup(null, $1)", probe).Scan(&n))
		require.Zero(t, n, "%q", probe)
	}
	var n int
	require.NoError(t, bundle.app.QueryRow(ctx, "select count(*) from tenant_lookup(null, null)").Scan(&n))
	require.Zero(t, n)

	// COPY FROM into a table with RLS is refused for the app role.
	conn, err := bundle.app.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Conn().CopyFrom(ctx, pgx.Identifier{"products"}, []string{"name", "price"},
		pgx.CopyFromRows([][]any{{"copied", int64(1)}}))
	require.Error(t, err)
	require.Empty(t, listProducts(t, bundle.app, bundle.a))
}

// Vector 8: serial ids reveal row counts. Tenant tables have none: ids are
// random UUIDs.
func TestVector8NoSerialIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	var n int
	require.NoError(t, bundle.admin.QueryRow(ctx, `
		select count(*) from pg_attribute a
		join pg_class c on c.oid = a.attrelid
		join pg_namespace ns on ns.oid = c.relnamespace
		left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
		where ns.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
		  and exists (select 1 from pg_attribute t where t.attrelid = c.oid and t.attname = 'tenant_id')
		  and (a.attidentity <> '' or pg_get_expr(d.adbin, d.adrelid) like 'nextval(%')`).Scan(&n))
	require.Zero(t, n)
	p1 := createProduct(t, bundle.app, bundle.a, "one")
	p2 := createProduct(t, bundle.app, bundle.a, "two")
	require.NotEqual(t, p1.ID, p2.ID)
	require.Equal(t, byte(4), p1.ID[6]>>4, "version 4 (random) UUID")
}

// Vector 9: only LEAKPROOF functions are pushed below a policy; the project
// marks none of its own functions LEAKPROOF.
func TestVector9NoProjectLeakproofFunctions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	var n int
	require.NoError(t, bundle.admin.QueryRow(ctx, `
		select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
		where p.proleakproof and n.nspname not in ('pg_catalog', 'information_schema')`).Scan(&n))
	require.Zero(t, n)
}
