package lifecycle_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fill onboards a tenant and gives it users and products.
func fill(t *testing.T, admin *pgxpool.Pool, slug string, n int) lifecycle.Onboarded {
	t.Helper()
	ctx := context.Background()
	o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: slug, Name: strings.ToUpper(slug), AdminEmail: "admin@" + slug + ".example"})
	require.NoError(t, err)
	require.NoError(t, db.Tx(ctx, admin, db.Scope{TenantID: o.Tenant.ID, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		for i := range n {
			if _, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@%s.example", i, slug), Role: "viewer"}); err != nil {
				return err
			}
			if _, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: fmt.Sprintf("p%d \"end\"", i), Description: "line\nbreak ünïcode", Price: int64(i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	return o
}

// counts returns, for every table with a tenant_id column, how many rows
// each tenant has (read as the superuser, which sees every row).
func counts(t *testing.T, super *pgxpool.Pool) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := super.Query(ctx, `select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
		join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' where n.nspname = 'public' and c.relkind = 'r'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	require.Len(t, tables, 6, "every tenant table is counted")
	out := map[string]int{}
	for _, table := range tables {
		rows, err := super.Query(ctx, fmt.Sprintf(`select t.slug, count(x.*) from tenants t left join %s x on x.tenant_id = t.id group by t.slug`, table))
		require.NoError(t, err)
		for rows.Next() {
			var slug string
			var n int
			require.NoError(t, rows.Scan(&slug, &n))
			out[table+"/"+slug] = n
		}
		require.NoError(t, rows.Err())
	}
	return out
}

func TestDeleteRemovesOnlyThatTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	acme := fill(t, admin, "acme", 3)
	fill(t, admin, "globex", 2)
	before := counts(t, super)
	require.Equal(t, 4, before["users/acme"])
	require.NoError(t, lifecycle.Delete(ctx, admin, acme.Tenant.ID))
	after := counts(t, super)
	for k, v := range before {
		if strings.HasSuffix(k, "/acme") {
			require.NotContains(t, after, k, "acme's rows are gone")
		} else {
			require.Equal(t, v, after[k], "%s untouched", k)
		}
	}
	var left int
	require.NoError(t, super.QueryRow(ctx, "select (select count(*) from users where tenant_id = $1) + (select count(*) from products where tenant_id = $1) + (select count(*) from api_keys where tenant_id = $1)", acme.Tenant.ID).Scan(&left))
	require.Zero(t, left)
	require.ErrorIs(t, lifecycle.Delete(ctx, admin, acme.Tenant.ID), lifecycle.ErrNotFound)
}

func TestGracePeriodAndPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	acme, globex := fill(t, admin, "acme", 1), fill(t, admin, "globex", 1)
	tn, err := lifecycle.SetStatus(ctx, admin, acme.Tenant.ID, dbtype.TenantStatusDeleting, time.Hour)
	require.NoError(t, err)
	require.Equal(t, dbtype.TenantStatusDeleting, tn.Status)
	require.WithinDuration(t, time.Now().Add(time.Hour), *tn.PurgeAfter, time.Minute)
	purged, err := lifecycle.PurgeDue(ctx, admin, nil)
	require.NoError(t, err)
	require.Empty(t, purged, "still in its grace period")
	_, err = lifecycle.SetStatus(ctx, admin, acme.Tenant.ID, dbtype.TenantStatusSuspended, 0)
	require.ErrorIs(t, err, lifecycle.ErrDeleting, "suspending would silently cancel the deletion")
	// Reactivated in time: nothing is lost.
	tn, err = lifecycle.SetStatus(ctx, admin, acme.Tenant.ID, dbtype.TenantStatusActive, 0)
	require.NoError(t, err)
	require.Nil(t, tn.PurgeAfter)
	// Marked again, with the grace period over: purged, globex untouched.
	_, err = lifecycle.SetStatus(ctx, admin, acme.Tenant.ID, dbtype.TenantStatusDeleting, -time.Second)
	require.NoError(t, err)
	before := counts(t, super)
	purged, err = lifecycle.PurgeDue(ctx, admin, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"acme"}, purged)
	after := counts(t, super)
	require.Equal(t, before["products/globex"], after["products/globex"])
	require.NotContains(t, after, "products/acme")
	_, err = lifecycle.SetStatus(ctx, admin, globex.Tenant.ID, "frozen", 0)
	require.Error(t, err, "unknown status refused by the database")
}

// Purge deletes a tenant only while it is due: marked for deletion with its
// grace period over. An active tenant, or one still in its grace period,
// stays, whoever asks (the CLI's PurgeDue and the purge job both delete
// through Purge).
func TestPurgeDeletesOnlyWhatIsDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := pgtest.New(t).OwnerPool(t)
	active, later, due := fill(t, admin, "active", 1), fill(t, admin, "later", 1), fill(t, admin, "due", 1)
	_, err := lifecycle.SetStatus(ctx, admin, later.Tenant.ID, dbtype.TenantStatusDeleting, time.Hour)
	require.NoError(t, err)
	_, err = lifecycle.SetStatus(ctx, admin, due.Tenant.ID, dbtype.TenantStatusDeleting, -time.Second)
	require.NoError(t, err)
	q := db.Unscoped(admin)
	for _, o := range []lifecycle.Onboarded{active, later} {
		slug, purged, err := lifecycle.Purge(ctx, q, o.Tenant.ID)
		require.NoError(t, err)
		require.False(t, purged, o.Tenant.Slug)
		require.Empty(t, slug)
		_, err = q.TenantGet(ctx, o.Tenant.ID)
		require.NoError(t, err, "%s is still there", o.Tenant.Slug)
	}
	slug, purged, err := lifecycle.Purge(ctx, q, due.Tenant.ID)
	require.NoError(t, err)
	require.True(t, purged)
	require.Equal(t, "due", slug)
	_, purged, err = lifecycle.Purge(ctx, q, due.Tenant.ID)
	require.NoError(t, err)
	require.False(t, purged, "already gone")
}

// A tenant reactivated while the purge runs is kept. The purge has found it
// due (the reactivation has not committed yet) and waits for its row; when
// the reactivation commits, the purge's DELETE re-checks the row's new
// version (READ COMMITTED), no longer due, and leaves it. A purge that checks
// first and then deletes by id (as `tenant purge` did without any check, and
// the purge job did with a read before its delete) deletes it anyway.
func TestPurgeSparesATenantReactivatedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	acme := fill(t, admin, "acme", 1)
	_, err := lifecycle.SetStatus(ctx, admin, acme.Tenant.ID, dbtype.TenantStatusDeleting, -time.Second)
	require.NoError(t, err)
	before := counts(t, super)

	reactivate, err := super.Begin(ctx)
	require.NoError(t, err)
	defer reactivate.Rollback(ctx)
	_, err = reactivate.Exec(ctx, "update tenants set status = 'active', purge_after = null where id = $1", acme.Tenant.ID)
	require.NoError(t, err)

	type result struct {
		purged []string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		purged, err := lifecycle.PurgeDue(ctx, admin, nil)
		done <- result{purged, err}
	}()
	require.Eventually(t, func() bool {
		var waiting int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity
			where datname = current_database() and wait_event_type = 'Lock' and query ilike '%delete from tenants%'`).Scan(&waiting)
		return err == nil && waiting == 1
	}, 10*time.Second, 10*time.Millisecond, "the purge waits for the tenant's row")
	require.NoError(t, reactivate.Commit(ctx))

	res := <-done
	require.NoError(t, res.err)
	require.Empty(t, res.purged)
	tn, err := dbsqlc.New(admin).TenantGet(ctx, acme.Tenant.ID)
	require.NoError(t, err, "the reactivated tenant is still there")
	require.Equal(t, dbtype.TenantStatusActive, tn.Status)
	require.Equal(t, before, counts(t, super), "none of its rows went")
}

func exportOf(t *testing.T, admin *pgxpool.Pool, slug string) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := lifecycle.Export(context.Background(), admin, slug, &buf)
	require.NoError(t, err)
	return buf.Bytes()
}

// rowLines is an export without its header and trailer (which hold the time).
func rowLines(raw []byte) []string {
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return lines[1 : len(lines)-1]
}

func TestExportDeleteImportRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	acme := fill(t, admin, "acme", 5)
	fill(t, admin, "globex", 3)
	first := exportOf(t, admin, "acme")
	require.NotContains(t, string(first), "globex", "an export holds its tenant's rows only")
	require.Len(t, rowLines(first), 6+5+1, "6 users, 5 products, 1 key")

	require.NoError(t, lifecycle.Delete(ctx, admin, acme.Tenant.ID))
	imp, err := lifecycle.Import(ctx, admin, "acme", "", bytes.NewReader(first))
	require.NoError(t, err)
	require.Equal(t, acme.Tenant.ID, imp.Tenant.ID, "restored with its own id, which was free again")
	require.Equal(t, map[string]int{"users": 6, "products": 5, "api_keys": 1}, imp.Counts)
	require.Zero(t, imp.KeysSkipped)
	require.Equal(t, rowLines(first), rowLines(exportOf(t, admin, "acme")), "identical data after the round trip")

	// The admin's key works again.
	authn, err := auth.New(auth.Config{Pool: tdb.AppPool(t, 2)})
	require.NoError(t, err)
	p, err := authn.Authenticate(ctx, acme.Key)
	require.NoError(t, err)
	require.Equal(t, acme.Tenant.ID, p.TenantID)

	// A copy under another slug gets a new id: keys, bound to the old id,
	// are left out, everything else is there.
	cp, err := lifecycle.Import(ctx, admin, "acme-copy", "Acme copy", bytes.NewReader(first))
	require.NoError(t, err)
	require.NotEqual(t, acme.Tenant.ID, cp.Tenant.ID)
	require.Equal(t, 1, cp.KeysSkipped)
	require.Equal(t, map[string]int{"users": 6, "products": 5}, cp.Counts)
	c := counts(t, super)
	require.Equal(t, 5, c["products/acme-copy"])
	require.Equal(t, 5, c["products/acme"], "the original is untouched")

	// Into a tenant that has rows: refused, nothing changed.
	_, err = lifecycle.Import(ctx, admin, "globex", "", bytes.NewReader(first))
	require.ErrorIs(t, err, lifecycle.ErrNotEmpty)
	require.Equal(t, c, counts(t, super))
}

func TestImportRefusesBadFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	fill(t, admin, "acme", 2)
	good := exportOf(t, admin, "acme")
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }
	replace := func(i int, old, new string) []byte {
		ls := append([]string(nil), lines...)
		ls[i] = strings.Replace(ls[i], old, new, 1)
		return join(ls)
	}
	bad := map[string][]byte{
		"empty":              nil,
		"truncated":          join(lines[:len(lines)-1]),
		"cut mid-line":       good[:len(good)/2],
		"altered row":        replace(2, `"u`, `"x`),
		"foreign version":    replace(0, `"version":2`, `"version":3`),
		"not an export":      []byte("{\"hello\":\"world\"}\n"),
		"unknown table":      replace(1, `"table":"users"`, `"table":"secrets"`),
		"unknown column":     replace(1, `"name":`, `"tenant_id":"x","name":`),
		"data after the end": join(append(append([]string(nil), lines...), lines[1])),
		"not JSON":           []byte("\x00\x01garbage\n"),
	}
	before := counts(t, super)
	for name, raw := range bad {
		_, err := lifecycle.Import(ctx, admin, "restored", "", bytes.NewReader(raw))
		require.ErrorIs(t, err, lifecycle.ErrBadExport, name)
	}
	require.Equal(t, before, counts(t, super), "nothing was written")

	// A row the database refuses (an invalid role) rolls everything back.
	var withBadRole []string
	for i, l := range lines {
		if i == 2 {
			l = strings.Replace(l, `"role":"viewer"`, `"role":"owner"`, 1)
		}
		withBadRole = append(withBadRole, l)
	}
	// Recompute the checksum so that only the database can refuse it.
	_, err := lifecycle.Import(ctx, admin, "restored", "", bytes.NewReader(lifecycle.Resign(join(withBadRole))))
	require.Error(t, err)
	require.NotErrorIs(t, err, lifecycle.ErrBadExport)
	require.Equal(t, before, counts(t, super), "all or nothing: not even the tenant was created")
}
