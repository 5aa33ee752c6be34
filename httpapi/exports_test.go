package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/lifecycle"
)

// jobsPool is serve's platform pool for the job runner: an export job holds
// two connections (lifecycle.WriteExport), so the runner gets six.
func jobsPool(t *testing.T, b *testBundle) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(b.tdb.PlatformURL)
	require.NoError(t, err)
	cfg.MaxConns = 6
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// setupExports serves with the platform pool, the given export limits and a
// job runner that writes exports.
func setupExports(t *testing.T, limits httpapi.ExportLimits, opts ...func(*httpapi.Config)) *testBundle {
	t.Helper()
	b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
		p := b.tdb.PlatformPool(t)
		c.PlatformPool, c.Platform = p, auth.NewPlatform(p, 0)
		c.Exports = limits
		for _, o := range opts {
			o(c)
		}
	})
	r, err := jobs.Start(context.Background(), jobs.Config{Pool: jobsPool(t, b), PollEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return b
}

// exportDone requests an export of tenant and waits until it is done.
func (b *testBundle) exportDone(t *testing.T, tenant string) response {
	t.Helper()
	id := b.call(t, "POST", "/v1/exports", tenant, "").requireStatus(t, 202).body["id"].(string)
	var done response
	require.Eventually(t, func() bool {
		done = b.call(t, "GET", "/v1/exports/"+id, tenant, "")
		return done.status == 200 && done.body["status"] == "done"
	}, 20*time.Second, 50*time.Millisecond)
	return done
}

// A tenant keeps at most EXPORT_MAX_COUNT exports and EXPORT_MAX_BYTES bytes
// of them: past either, POST is 409 export-quota, and DELETE frees room.
func TestExportQuotaAndDelete(t *testing.T) {
	t.Parallel()
	b := setupExports(t, httpapi.ExportLimits{MaxCount: 2, MaxBytes: 1 << 30, Retention: time.Hour})
	first := b.exportDone(t, "acme")
	require.Greater(t, first.body["bytes"].(float64), 0.0)
	require.NotNil(t, first.body["expires_at"])
	b.exportDone(t, "acme")
	full := b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 409)
	require.Equal(t, "export-quota", full.problemType(t))
	require.Contains(t, full.body["detail"], "2 exports")
	b.call(t, "POST", "/v1/exports", "globex", "").requireStatus(t, 202) // another tenant's quota is its own

	id := first.body["id"].(string)
	b.call(t, "DELETE", "/v1/exports/"+id, "globex", "").requireStatus(t, 404) // not globex's
	viewer, _, _ := b.newKey(t, "acme", "viewer", "viewer")
	b.call(t, "DELETE", "/v1/exports/"+id, "acme", "", bearer(viewer)...).requireStatus(t, 403)
	b.call(t, "DELETE", "/v1/exports/"+id, "acme", "").requireStatus(t, 204)
	b.call(t, "GET", "/v1/exports/"+id, "acme", "").requireStatus(t, 404)
	b.call(t, "GET", "/v1/exports/"+id+"/download", "acme", "").requireStatus(t, 404)
	b.call(t, "DELETE", "/v1/exports/"+id, "acme", "").requireStatus(t, 404)
	b.call(t, "DELETE", "/v1/exports/not-an-id", "acme", "").requireStatus(t, 400)
	b.exportDone(t, "acme") // room again
	require.Eventually(t, func() bool { return b.exportRows(t, id) == 0 }, 10*time.Second, 50*time.Millisecond,
		"the cleanup job deletes the export and its chunks")
}

// exportRows counts the export's row and its chunks, as the superuser.
func (b *testBundle) exportRows(t *testing.T, id string) int {
	t.Helper()
	var n int
	require.NoError(t, b.admin.QueryRow(context.Background(),
		"select (select count(*) from exports where id = $1) + (select count(*) from export_chunks where export_id = $1)", id).Scan(&n))
	return n
}

// Issue #16 item 3: DELETE /v1/exports/{id} answers at once however large
// the export. The request used to delete the chunks (the foreign key's
// cascade): a 10,000,000-row tenant's export, 2.5 GB, outlasted
// STATEMENT_TIMEOUT and got 503, the export kept. Here locks on the chunks
// stand in for a long delete: the request does not wait for them, the export
// is gone for the API and the quota at once, and the cleanup job deletes the
// chunks once the locks go.
func TestExportDeleteDoesNotWaitForItsChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExports(t, httpapi.ExportLimits{MaxCount: 1, MaxBytes: 1 << 30, Retention: time.Hour},
		func(c *httpapi.Config) { c.StatementTimeout = 500 * time.Millisecond })
	id := b.exportDone(t, "acme").body["id"].(string)
	tx, err := b.admin.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "select 1 from export_chunks where export_id = $1 for update", id)
	require.NoError(t, err)

	b.call(t, "DELETE", "/v1/exports/"+id, "acme", "").requireStatus(t, 204) // was 503 after the timeout
	b.call(t, "GET", "/v1/exports/"+id, "acme", "").requireStatus(t, 404)
	b.call(t, "DELETE", "/v1/exports/"+id, "acme", "").requireStatus(t, 404)
	b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 202) // its quota is free again
	require.Greater(t, b.exportRows(t, id), 0, "the chunks wait for the cleanup")

	require.NoError(t, tx.Rollback(ctx))
	require.Eventually(t, func() bool { return b.exportRows(t, id) == 0 }, 10*time.Second, 50*time.Millisecond,
		"the cleanup job deletes the export and its chunks")
}

func TestExportByteQuota(t *testing.T) {
	t.Parallel()
	b := setupExports(t, httpapi.ExportLimits{MaxCount: 10, MaxBytes: 100, Retention: time.Hour})
	b.exportDone(t, "acme") // a small tenant's export is a few hundred bytes: past the quota once kept
	full := b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 409)
	require.Equal(t, "export-quota", full.problemType(t))
	require.Contains(t, full.body["detail"], "its quota is 100")
}

// An export in progress cannot be deleted: its job would write into nothing.
func TestExportInProgressIsNotDeleted(t *testing.T) {
	t.Parallel()
	b, _ := setupPlatform(t) // no job runner: exports stay pending
	id := b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 202).body["id"].(string)
	r := b.call(t, "DELETE", "/v1/exports/"+id, "acme", "").requireStatus(t, 409)
	require.Equal(t, "conflict", r.problemType(t))
	require.Contains(t, r.body["detail"], "pending")
}

// Past EXPORT_RETENTION an export is gone for the API at once, and the
// cleanup job deletes it and its chunks.
func TestExportRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExports(t, httpapi.ExportLimits{MaxCount: 1, MaxBytes: 1 << 30, Retention: time.Hour})
	old := b.exportDone(t, "acme")
	kept := b.exportDone(t, "globex")
	id := old.body["id"].(string)
	_, err := b.admin.Exec(ctx, "update exports set expires_at = now() - interval '1 second' where id = $1", id)
	require.NoError(t, err)
	b.call(t, "GET", "/v1/exports/"+id, "acme", "").requireStatus(t, 404)
	b.call(t, "GET", "/v1/exports/"+id+"/download", "acme", "").requireStatus(t, 404)
	require.Empty(t, b.call(t, "GET", "/v1/exports", "acme", "").requireStatus(t, 200).body["items"])
	b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 202) // expired ones use no quota

	require.NoError(t, jobs.DeleteExpiredExports(ctx, jobsPool(t, b)))
	var exports, chunks int
	require.NoError(t, b.admin.QueryRow(ctx, "select (select count(*) from exports where id = $1), (select count(*) from export_chunks where export_id = $1)", id).Scan(&exports, &chunks))
	require.Zero(t, exports+chunks, "the expired export and its chunks are deleted")
	b.call(t, "GET", "/v1/exports/"+kept.body["id"].(string), "globex", "").requireStatus(t, 200)
}

// A download streams the chunks with the export's size as Content-Length;
// an export deleted while it is downloaded ends in a cut body, never in a
// body that looks whole.
func TestExportDownloadStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExports(t, httpapi.ExportLimits{})
	// About 13 MiB of products: more than the socket buffers hold.
	_, err := b.admin.Exec(ctx, `insert into products (tenant_id, name, description, price)
		select $1, 'p' || g, repeat('x', 300), g from generate_series(1, 40000) g`, b.acme)
	require.NoError(t, err)
	done := b.exportDone(t, "acme")
	id := done.body["id"].(string)
	var chunks int
	require.NoError(t, b.admin.QueryRow(ctx, "select count(*) from export_chunks where export_id = $1", id).Scan(&chunks))
	require.Greater(t, chunks, 1)

	get := func() (*http.Response, error) {
		req, err := http.NewRequest("GET", b.url+"/v1/exports/"+id+"/download", nil)
		require.NoError(t, err)
		req.Header.Set("X-Tenant-ID", "acme")
		req.Header.Set("Authorization", "Bearer "+b.keys["acme"])
		return http.DefaultClient.Do(req)
	}
	res, err := get()
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, strconv.Itoa(len(body)), res.Header.Get("Content-Length"))
	require.EqualValues(t, done.body["bytes"], len(body))
	require.Contains(t, string(body), `"end":true`)

	// Deleted after the first chunk was sent: the body is cut.
	res, err = get()
	require.NoError(t, err)
	first := make([]byte, 1<<20)
	_, err = io.ReadFull(res.Body, first)
	require.NoError(t, err)
	_, err = b.admin.Exec(ctx, "delete from exports where id = $1", id)
	require.NoError(t, err)
	rest, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.Error(t, err, "the cut shows as an error (unexpected EOF), not as an end")
	require.Less(t, len(first)+len(rest), len(body))
}

// An archived tenant's requests get 409 tenant-archived, a problem that
// says what happened, not 404s that look like missing rows, and not a bare
// 401 although its keys left the live tables with its rows; restored, the
// same key works again and finds the same rows.
func TestArchivedTenantRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	made := b.call(t, "POST", "/v1/products", "acme", `{"name":"kept","price":1}`).requireStatus(t, 201)
	owner := b.tdb.OwnerPool(t)
	_, err := lifecycle.SetStatus(ctx, owner, b.acme, dbtype.TenantStatusSuspended, 0)
	require.NoError(t, err)
	_, err = lifecycle.Archive(ctx, owner, "acme")
	require.NoError(t, err)

	for _, path := range []string{"/v1/products", "/v1/products/" + made.body["id"].(string), "/v1/me", "/v1/users"} {
		r := b.call(t, "GET", path, "acme", "").requireStatus(t, 409)
		require.Equal(t, "tenant-archived", r.problemType(t), path)
	}
	b.call(t, "GET", "/v1/products", "globex", "").requireStatus(t, 200) // others are served

	_, err = lifecycle.Restore(ctx, owner, "acme")
	require.NoError(t, err)
	got := b.call(t, "GET", "/v1/products/"+made.body["id"].(string), "acme", "").requireStatus(t, 200)
	require.Equal(t, made.body["created_at"], got.body["created_at"])
	require.Equal(t, "kept", got.body["name"])
}
