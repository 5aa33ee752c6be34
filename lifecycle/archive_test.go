package lifecycle_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
)

// Archiving moves a suspended tenant's rows into its archive and out of the
// live tables; restoring puts back the same rows (ids, timestamps, API keys,
// external_id) and makes it active. Other tenants are not touched.
func TestArchiveAndRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	acme := bigTenant(t, owner, super, "acme", 3000)
	fill(t, owner, "globex", 5)
	_, err := super.Exec(ctx, "insert into idempotency_keys (tenant_id, key, request_hash, status, response_body) values ($1, 'k', sha256('a'), 201, '')", acme.ID)
	require.NoError(t, err)
	want := fingerprint(t, super, acme.ID)
	before := counts(t, super)

	_, err = lifecycle.Archive(ctx, owner, "acme")
	require.ErrorIs(t, err, db.ErrConflict, "an active tenant is not archived")
	_, err = lifecycle.SetStatus(ctx, owner, acme.ID, dbtype.TenantStatusSuspended, 0)
	require.NoError(t, err)
	a, err := lifecycle.Archive(ctx, owner, "acme")
	require.NoError(t, err)
	require.Equal(t, dbtype.TenantStatusArchived, a.Tenant.Status)
	require.Equal(t, 3000, a.Counts["products"])

	var live, archives int
	require.NoError(t, super.QueryRow(ctx, `select
		(select count(*) from users where tenant_id = $1) + (select count(*) from products where tenant_id = $1) +
		(select count(*) from api_keys where tenant_id = $1) + (select count(*) from idempotency_keys where tenant_id = $1) +
		(select count(*) from exports where tenant_id = $1 and kind <> 'archive'),
		(select count(*) from exports where tenant_id = $1 and kind = 'archive' and status = 'done')`, acme.ID).Scan(&live, &archives))
	require.Zero(t, live, "the live tables hold no row of the archived tenant")
	require.Equal(t, 1, archives)
	after := counts(t, super)
	for key, n := range before {
		if strings.HasSuffix(key, "/globex") {
			require.Equal(t, n, after[key], "another tenant is not touched: %s", key)
		}
	}
	_, err = lifecycle.Archive(ctx, owner, "acme")
	require.ErrorIs(t, err, db.ErrConflict, "an archived tenant is not archived again")

	r, err := lifecycle.Restore(ctx, owner, "acme")
	require.NoError(t, err)
	require.Equal(t, dbtype.TenantStatusActive, r.Tenant.Status)
	require.Equal(t, want, fingerprint(t, super, acme.ID), "the same rows: ids, texts, timestamps, API keys")
	require.NoError(t, super.QueryRow(ctx, "select count(*) from exports where tenant_id = $1", acme.ID).Scan(&archives))
	require.Zero(t, archives, "the restored archive is gone")
	_, err = lifecycle.Restore(ctx, owner, "acme")
	require.ErrorIs(t, err, lifecycle.ErrNotArchived)
	// The restored admin's key works again (the keys came back with their ids).
	k, err := db.One(ctx, owner, db.Scope{TenantID: acme.ID, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.TenantRowCountsRow, error) { return q.TenantRowCounts(ctx) })
	require.NoError(t, err)
	require.EqualValues(t, 1, k.ApiKeys)
}

// An archived tenant's status changes only by Restore (or its deletion).
// Before, `tenant suspend` (or activate, or PATCH status) took it out of
// archived: then Restore refused it ("not archived"), and a second Archive
// replaced its archive with one of its now empty live tables: its data
// was gone. SetStatus refuses with ErrArchived; the archive survives.
func TestArchivedTenantKeepsItsStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	acme := fill(t, owner, "acme", 5)
	want := fingerprint(t, super, acme.Tenant.ID)
	_, err := lifecycle.SetStatus(ctx, owner, acme.Tenant.ID, dbtype.TenantStatusSuspended, 0)
	require.NoError(t, err)
	_, err = lifecycle.Archive(ctx, owner, "acme")
	require.NoError(t, err)
	for _, st := range []dbtype.TenantStatus{dbtype.TenantStatusSuspended, dbtype.TenantStatusActive, dbtype.TenantStatusDeleting} {
		_, err = lifecycle.SetStatus(ctx, owner, acme.Tenant.ID, st, time.Hour)
		require.ErrorIs(t, err, lifecycle.ErrArchived, "%s", st)
	}
	// An import into it would put live rows beside its archive, and Restore
	// would then refuse it (not empty).
	fill(t, owner, "globex", 2)
	var exp bytes.Buffer
	_, err = lifecycle.Export(ctx, owner, "globex", &exp)
	require.NoError(t, err)
	_, err = lifecycle.Import(ctx, owner, "acme", "", &exp)
	require.ErrorIs(t, err, lifecycle.ErrArchived)
	// What the old code allowed next: archive again, replacing the archive.
	_, err = lifecycle.Archive(ctx, owner, "acme")
	require.ErrorIs(t, err, db.ErrConflict)
	_, err = lifecycle.Restore(ctx, owner, "acme")
	require.NoError(t, err)
	require.Equal(t, want, fingerprint(t, super, acme.Tenant.ID))
}
