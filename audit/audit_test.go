package audit

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
		if p.Table == "public.tenants" || p.Table == "public.platform_keys" {
			// Not tenant tables: the platform role's registry and keys.
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
	require.Equal(t, map[string]bool{"public.api_keys": true, "public.exports": true, "public.idempotency_keys": true, "public.products": true, "public.users": true}, restrictive)
}

// Each defect planted in a scratch database must be reported, so that the
// audit can never silently pass. Not parallel: the planted login role is
// cluster-wide, and the clean-schema test must not see it.
func TestPlantedDefectsAreReported(t *testing.T) {
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	role := "rf_planted_" + tdb.Name
	planted := []struct {
		check, object, sql string
	}{
		{"rls-not-forced", "public.notes",
			`create table notes (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
			 alter table notes enable row level security`},
		{"fk-not-composite", "note_refs constraint note_refs_note_id_fkey",
			`create unique index notes_id_key on notes (id);
			 create table note_refs (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, note_id uuid references notes (id), primary key (tenant_id, note_id));
			 alter table note_refs enable row level security; alter table note_refs force row level security`},
		{"unique-not-per-tenant", "notes_id_key", ``},
		// No restrictive tenant policy bounds notes, so an open permissive
		// policy opens it; a restrictive one that covers only SELECT does not
		// bound writes either.
		{"policy-without-tenant", "public.notes policy open", `create policy open on notes using (true)`},
		{"policy-without-tenant", "public.note_refs policy open_refs",
			`create policy scoped_reads on note_refs as restrictive for select
			     using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
			 create policy open_refs on note_refs using (true)`},
		// The folded form bounds a table only when it is exactly that: a
		// CASE that falls back to tenant_id itself matches every row.
		{"policy-without-tenant", "public.notes_folded policy open_folded",
			`create table notes_folded (tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid, id uuid not null, primary key (tenant_id, id));
			 alter table notes_folded enable row level security; alter table notes_folded force row level security;
			 create policy tenant_isolation on notes_folded as restrictive
			     using (tenant_id = case when current_setting('app.role', true) in ('admin') then nullif(current_setting('app.tenant_id', true), '')::uuid else tenant_id end)
			     with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
			 create policy open_folded on notes_folded using (true)`},
		{"login-bypasses-rls", role, `create role ` + role + ` login bypassrls`},
		{"unsafe-grant", "public.users", `grant truncate on users to rowfence_app`},
		{"cross-tenant-role", "rowfence_app", `grant select on tenants to rowfence_app`},
		{"security-definer", "public.peek()", `create function peek() returns bigint language sql security definer as 'select count(*) from public.products'`},
		{"view-not-security-invoker", "public.all_products", `create view all_products as select * from products`},
		{"tenant-id-column", "public.loose.tenant_id", `create table loose (tenant_id uuid, n serial primary key)`},
		{"serial-column", "public.loose.n", ``},
		{"unique-not-per-tenant", "loose_pkey", ``},
		{"index-not-leading-tenant", "notes_id_idx", `create index notes_id_idx on notes (id)`},
		{"leakproof-function", "public.always(integer)", `create function always(integer) returns boolean language sql immutable leakproof as 'select true'`},
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "drop role if exists "+role) })
	for _, p := range planted {
		if p.sql == "" {
			continue
		}
		_, err := admin.Exec(ctx, p.sql)
		require.NoError(t, err, p.sql)
	}
	rep, err := Run(ctx, admin, Options{})
	require.NoError(t, err)
	got := map[string]Finding{}
	for _, f := range defects(rep) {
		got[f.Check+" "+f.Object] = f
	}
	for _, p := range planted {
		f, ok := got[p.check+" "+p.object]
		require.True(t, ok, "planted %s on %s was not reported; defects: %v", p.check, p.object, keys(got))
		require.NotEmpty(t, f.Detail)
	}
	require.Contains(t, got["security-definer public.peek()"].Detail, "NOT pinned")
	require.GreaterOrEqual(t, rep.Defects(), len(planted))

	// A role named with --accept-role is accepted, nothing else changes.
	rep, err = Run(ctx, admin, Options{AcceptRoles: []string{role}})
	require.NoError(t, err)
	for _, f := range rep.Findings {
		if f.Object == role {
			require.True(t, f.Accepted)
		}
	}
}

func keys(m map[string]Finding) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, "; ")
}
