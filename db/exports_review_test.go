package db_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// 00024's exports_expire policy, as the app role: an admin ends its own
// tenant's exports, never another's, never extends one, never an archive.
func TestExportsExpirePolicyAsAppRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	mk := func(tenant uuid.UUID, kind, status, expires string) uuid.UUID {
		var user, id uuid.UUID
		require.NoError(t, bundle.admin.QueryRow(ctx, `INSERT INTO users (tenant_id, name, email, role) VALUES ($1, 'u', gen_random_uuid()::text || '@x.example', 'admin') RETURNING id`, tenant).Scan(&user))
		require.NoError(t, bundle.admin.QueryRow(ctx, `INSERT INTO exports (tenant_id, requested_by, kind, status, expires_at) VALUES ($1, $2, $3, $4, `+expires+`) RETURNING id`, tenant, user, kind, status).Scan(&id))
		_, err := bundle.admin.Exec(ctx, `INSERT INTO export_chunks (tenant_id, export_id, seq, data) VALUES ($1, $2, 0, 'x')`, tenant, id)
		require.NoError(t, err)
		return id
	}
	bExport := mk(bundle.b.TenantID, "export", "done", "now() + interval '1 day'")
	aExport := mk(bundle.a.TenantID, "export", "done", "now() + interval '1 day'")
	aArchive := mk(bundle.a.TenantID, "archive", "done", "NULL")

	asA := func(role, sql string, args ...any) (int64, error) {
		var n int64
		err := pgx.BeginFunc(ctx, bundle.app, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', $2, true)", bundle.a.TenantID.String(), role); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, sql, args...)
			n = tag.RowsAffected()
			return err
		})
		return n, err
	}
	n, err := asA("admin", "UPDATE exports SET expires_at = now() WHERE id = $1", bExport)
	require.NoError(t, err)
	require.Zero(t, n, "A's admin cannot end B's export")
	_, err = asA("admin", "UPDATE exports SET expires_at = now() + interval '10 years' WHERE id = $1", aExport)
	require.Equal(t, "42501", sqlstate(err), "nor extend its own past the retention")
	_, err = asA("admin", "DELETE FROM export_chunks")
	require.Equal(t, "42501", sqlstate(err), "nor delete chunks")
	// An archive is the platform's (kind 'archive', exempt from retention):
	// once its expires_at passes, the periodic cleanup deletes its chunks
	// (ExportChunksDeleteExpired has no kind filter), i.e. the archived
	// tenant's only copy. The app role must not be able to expire it.
	n, err = asA("admin", "UPDATE exports SET expires_at = now() WHERE id = $1", aArchive)
	require.True(t, err != nil || n == 0, "the app role expired an archive (rows=%d)", n)
	var bAlive int
	require.NoError(t, bundle.admin.QueryRow(ctx, "SELECT count(*) FROM exports WHERE id = $1 AND expires_at > now()", bExport).Scan(&bAlive))
	require.Equal(t, 1, bAlive, "B's export untouched")
}
