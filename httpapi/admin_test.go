package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/jobs"
	"github.com/rowfence/rowfence/lifecycle"
)

// setupPlatform serves with /v1/admin on (through rowfence_platform's pool)
// and returns a platform admin key.
func setupPlatform(t *testing.T) (*testBundle, string) {
	t.Helper()
	var platformKey string
	b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
		p := b.tdb.PlatformPool(t)
		c.PlatformPool, c.Platform = p, auth.NewPlatform(p, 0)
		_, key, err := auth.IssuePlatformKey(context.Background(), dbsqlc.New(p), "test")
		require.NoError(t, err)
		platformKey = key
	})
	return b, platformKey
}

func TestPlatformAdministration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, pk := setupPlatform(t)
	admin := bearer(pk)

	// Tenant credentials never open /v1/admin, and platform keys never open a tenant.
	b.call(t, "GET", "/v1/admin/tenants", "", "", "Authorization", "").requireStatus(t, 401)
	b.call(t, "GET", "/v1/admin/tenants", "", "", bearer(b.keys["acme"])...).requireStatus(t, 401)
	forged := pk[:len(pk)-1] + map[bool]string{true: "1", false: "0"}[pk[len(pk)-1] == '0']
	b.call(t, "GET", "/v1/admin/tenants", "", "", bearer(forged)...).requireStatus(t, 401)
	b.call(t, "GET", "/v1/products", "acme", "", admin...).requireStatus(t, 401)

	list := b.call(t, "GET", "/v1/admin/tenants", "", "", admin...).requireStatus(t, 200)
	require.Len(t, list.body["items"], 2)

	// Onboarding in one transaction: tenant, first admin, first key.
	made := b.call(t, "POST", "/v1/admin/tenants", "", `{"slug":"initech","name":"Initech","admin_email":"bill@initech.example"}`, admin...).requireStatus(t, 201)
	id := made.body["id"].(string)
	key := made.body["api_key"].(map[string]any)["key"].(string)
	require.Equal(t, "active", made.body["status"])
	require.Equal(t, "admin", made.body["admin"].(map[string]any)["role"])
	me := b.call(t, "GET", "/v1/me", "initech", "", bearer(key)...).requireStatus(t, 200)
	require.Equal(t, "admin", me.body["role"])
	taken := b.call(t, "POST", "/v1/admin/tenants", "", `{"slug":"initech","name":"Again","admin_email":"x@initech.example"}`, admin...).requireStatus(t, 409)
	require.Equal(t, "conflict", taken.problemType(t))
	require.Contains(t, taken.fieldErrors(t), "slug")
	for _, body := range []string{`{}`, `{"slug":"Bad Slug","name":"x","admin_email":"a@b.example"}`,
		`{"slug":"okay","name":"","admin_email":"a@b.example"}`, `{"slug":"okay","name":"x","admin_email":"nope"}`} {
		b.call(t, "POST", "/v1/admin/tenants", "", body, admin...).requireStatus(t, 422)
	}
	var users int
	require.NoError(t, b.admin.QueryRow(ctx, "select count(*) from users where email like '%@b.example'").Scan(&users))
	require.Zero(t, users, "refused onboardings leave nothing")

	// Suspension and reactivation.
	s := b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"suspended"}`, admin...).requireStatus(t, 200)
	require.Equal(t, "suspended", s.body["status"])
	r := b.call(t, "GET", "/v1/products", "initech", "", bearer(key)...).requireStatus(t, 403)
	require.Equal(t, "tenant-suspended", r.problemType(t))
	b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"active"}`, admin...).requireStatus(t, 200)
	b.call(t, "GET", "/v1/products", "initech", "", bearer(key)...).requireStatus(t, 200)
	b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"deleting"}`, admin...).requireStatus(t, 422)

	// Limits: set, then cleared with null.
	l := b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"limits":{"rate_limit":5,"statement_timeout_ms":2000}}`, admin...).requireStatus(t, 200)
	require.Equal(t, map[string]any{"rate_limit": 5.0, "rate_burst": nil, "max_concurrency": nil, "statement_timeout_ms": 2000.0}, l.body["limits"])
	l = b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"limits":{"rate_limit":null},"name":"Initech Inc"}`, admin...).requireStatus(t, 200)
	require.Nil(t, l.body["limits"].(map[string]any)["rate_limit"])
	require.EqualValues(t, 2000, l.body["limits"].(map[string]any)["statement_timeout_ms"])
	require.Equal(t, "Initech Inc", l.body["name"])
	b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"limits":{"rate_burst":0}}`, admin...).requireStatus(t, 422)

	// Deletion with a grace period: refused at once, data kept, reactivation cancels it.
	d := b.call(t, "DELETE", "/v1/admin/tenants/"+id+"?grace=72h", "", "", admin...).requireStatus(t, 202)
	require.Equal(t, "deleting", d.body["status"])
	require.NotNil(t, d.body["purge_after"])
	r = b.call(t, "GET", "/v1/products", "initech", "", bearer(key)...).requireStatus(t, 403)
	require.Contains(t, r.body["detail"], "being deleted")
	// Suspending it would silently cancel the deletion: refused.
	deleting := b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"suspended"}`, admin...).requireStatus(t, 409)
	require.Contains(t, deleting.body["detail"], "being deleted")
	b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"active"}`, admin...).requireStatus(t, 200)
	b.call(t, "GET", "/v1/me", "initech", "", bearer(key)...).requireStatus(t, 200)
	b.call(t, "DELETE", "/v1/admin/tenants/"+id+"?grace=soon", "", "", admin...).requireStatus(t, 400)
	b.call(t, "DELETE", "/v1/admin/tenants/"+id+"?other=1", "", "", admin...).requireStatus(t, 400)

	// Deletion now: every row gone, the others untouched.
	var before int
	require.NoError(t, b.admin.QueryRow(ctx, "select count(*) from users where tenant_id <> $1", id).Scan(&before))
	b.call(t, "DELETE", "/v1/admin/tenants/"+id, "", "", admin...).requireStatus(t, 204)
	b.call(t, "GET", "/v1/admin/tenants/"+id, "", "", admin...).requireStatus(t, 404)
	b.call(t, "DELETE", "/v1/admin/tenants/"+id, "", "", admin...).requireStatus(t, 404)
	b.call(t, "GET", "/v1/me", "initech", "", bearer(key)...).requireStatus(t, 401)
	var left, after int
	require.NoError(t, b.admin.QueryRow(ctx, "select (select count(*) from users where tenant_id = $1) + (select count(*) from api_keys where tenant_id = $1)", id).Scan(&left))
	require.NoError(t, b.admin.QueryRow(ctx, "select count(*) from users where tenant_id <> $1", id).Scan(&after))
	require.Zero(t, left)
	require.Equal(t, before, after)
	b.call(t, "GET", "/v1/admin/tenants/"+uuid.NewString(), "", "", admin...).requireStatus(t, 404)
	b.call(t, "GET", "/v1/admin/tenants/nope", "", "", admin...).requireStatus(t, 400)

	// Paging.
	page := b.call(t, "GET", "/v1/admin/tenants?limit=1", "", "", admin...).requireStatus(t, 200)
	next := page.body["next_cursor"].(string)
	page2 := b.call(t, "GET", "/v1/admin/tenants?limit=1&cursor="+next, "", "", admin...).requireStatus(t, 200)
	require.NotEqual(t, page.body["items"], page2.body["items"])
	b.call(t, "GET", fmt.Sprintf("/v1/products?cursor=%s", next), "acme", "").requireStatus(t, 400)
}

// A tenant's admin requests an export (202), the background job writes it
// under the tenant's setting, and the admin downloads it.
// One tenant's exports must not stall every other tenant's: the export
// jobs share one queue of two workers, first in first out, and a tenant
// admin could POST as many exports as its rate limit allows (60 small ones
// delayed another tenant's export from 0.5 s to 3.4 s on make run; a large
// tenant's would take hours). A tenant has one export in progress at a time.
func TestOneExportInProgressPerTenant(t *testing.T) {
	t.Parallel()
	b, _ := setupPlatform(t) // no job runner: exports stay pending
	first := b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 202)
	r := b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 409)
	require.Equal(t, "conflict", r.problemType(t))
	require.Contains(t, r.body["detail"], first.body["id"], "names the export in progress")
	b.call(t, "POST", "/v1/exports", "globex", "").requireStatus(t, 202)
}

func TestExportsThroughTheAPI(t *testing.T) {
	t.Parallel()
	b, _ := setupPlatform(t)
	r, err := jobs.Start(context.Background(), jobs.Config{Pool: jobsPool(t, b), PollEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	b.call(t, "POST", "/v1/products", "acme", `{"name":"exported","price":1}`).requireStatus(t, 201)
	b.call(t, "POST", "/v1/products", "globex", `{"name":"not exported","price":1}`).requireStatus(t, 201)

	viewer, _, _ := b.newKey(t, "acme", "viewer", "viewer")
	b.call(t, "POST", "/v1/exports", "acme", "", bearer(viewer)...).requireStatus(t, 403)
	b.call(t, "POST", "/v1/exports", "acme", `{"x":1}`).requireStatus(t, 400)

	made := b.call(t, "POST", "/v1/exports", "acme", "").requireStatus(t, 202)
	id := made.body["id"].(string)
	require.Equal(t, "/v1/exports/"+id, made.header.Get("Location"))
	require.Contains(t, []any{"pending", "running"}, made.body["status"])
	b.call(t, "GET", "/v1/exports/"+id, "globex", "").requireStatus(t, 404)

	var done response
	require.Eventually(t, func() bool {
		done = b.call(t, "GET", "/v1/exports/"+id, "acme", "")
		return done.status == 200 && done.body["status"] == "done"
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "/v1/exports/"+id+"/download", done.body["download"])
	require.EqualValues(t, 1, done.body["counts"].(map[string]any)["products"])

	req, err := http.NewRequest("GET", b.url+"/v1/exports/"+id+"/download", nil)
	require.NoError(t, err)
	req.Header.Set("X-Tenant-ID", "acme")
	req.Header.Set("Authorization", "Bearer "+b.keys["acme"])
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	require.Contains(t, string(body), `"name":"exported"`)
	require.NotContains(t, string(body), "not exported")
	b.call(t, "GET", "/v1/exports/"+id+"/download", "globex", "").requireStatus(t, 404)

	list := b.call(t, "GET", "/v1/exports", "acme", "").requireStatus(t, 200)
	require.Len(t, list.body["items"], 1)
	require.Empty(t, b.call(t, "GET", "/v1/exports", "globex", "").requireStatus(t, 200).body["items"])
}

// PATCH status of an archived tenant is a 409: its rows are in its archive,
// and made active or suspended it would be served empty while `tenant
// restore` refused it (lifecycle.ErrArchived). Its name may change.
func TestPatchKeepsAnArchivedTenantArchived(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, pk := setupPlatform(t)
	admin := bearer(pk)
	var id string
	require.NoError(t, b.admin.QueryRow(ctx, "select id::text from tenants where slug = 'acme'").Scan(&id))
	b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"suspended"}`, admin...).requireStatus(t, 200)
	_, err := lifecycle.Archive(ctx, b.tdb.OwnerPool(t), "acme")
	require.NoError(t, err)
	for _, st := range []string{"active", "suspended"} {
		b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"status":"`+st+`"}`, admin...).requireStatus(t, 409)
	}
	b.call(t, "DELETE", "/v1/admin/tenants/"+id+"?grace=1h", "", "", admin...).requireStatus(t, 409)
	got := b.call(t, "PATCH", "/v1/admin/tenants/"+id, "", `{"name":"Acme Archived"}`, admin...).requireStatus(t, 200)
	require.Equal(t, "archived", got.body["status"])
}
