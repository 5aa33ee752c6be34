package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	tdb    *pgtest.DB
	url    string
	router *contract // the OpenAPI contract (contract_test.go)
	admin  *pgxpool.Pool
	app    *pgxpool.Pool
	acme   uuid.UUID
	globex uuid.UUID
	// keys holds each tenant's first admin key, by slug; users its admin's id.
	keys  map[string]string
	users map[string]uuid.UUID
	// listener, if an option sets it, wraps the test server's listener.
	listener func(net.Listener) net.Listener
}

// setup onboards tenants acme and globex (each with an admin user and key)
// and serves the API; opts adjust the server's configuration.
func setup(t *testing.T, opts ...func(*httpapi.Config)) *testBundle {
	t.Helper()
	return setupWith(t, func(_ *testBundle, c *httpapi.Config) {
		for _, o := range opts {
			o(c)
		}
	})
}

// setupWith is setup with an option that also sees the bundle (its database).
func setupWith(t *testing.T, opt func(*testBundle, *httpapi.Config)) *testBundle {
	t.Helper()
	tdb := pgtest.New(t)
	b := &testBundle{tdb: tdb, admin: tdb.AdminPool(t), app: tdb.AppPool(t, 4), keys: map[string]string{}, users: map[string]uuid.UUID{}}
	for slug, dst := range map[string]*uuid.UUID{"acme": &b.acme, "globex": &b.globex} {
		o, err := lifecycle.Onboard(context.Background(), b.admin, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "admin@" + slug + ".example"})
		require.NoError(t, err)
		*dst = o.Tenant.ID
		b.keys[slug], b.users[slug] = o.Key, o.Admin.ID
	}
	resolver := tenancy.NewResolver(b.app, 0) // no cache: status changes show at once
	cfg := httpapi.Config{
		Pool:      b.app,
		Resolver:  resolver,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		CursorKey: []byte(strings.Repeat("k", 32)),
	}
	opt(b, &cfg)
	if cfg.AcquireTimeout > 0 {
		resolver.WithTimeout(cfg.AcquireTimeout)
	}
	if cfg.Auth == nil {
		// No cache: revocation shows at once.
		authn, err := auth.New(auth.Config{Pool: b.app, Tenants: resolver, AcquireTimeout: cfg.AcquireTimeout})
		require.NoError(t, err)
		cfg.Auth = authn
	}
	handler, err := httpapi.NewServer(cfg)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(handler)
	if b.listener != nil {
		srv.Listener = b.listener(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b.url = srv.URL
	if cfg.TenantMode == "" || cfg.TenantMode == httpapi.ModeHeader {
		b.router = contractRouter(t, srv.URL) // the contract documents the default mode
	}
	return b
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call sends a request; tenant "" sends no tenant header. Unless headers
// name an Authorization (an empty value sends none), the request carries the
// named tenant's admin key, or acme's for a tenant the bundle has no key for.
// Every error answer must be problem+json with a matching status, checked
// here for all tests.
func (b *testBundle) call(t *testing.T, method, path, tenant, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set(httpapi.TenantHeader, tenant)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	cred, ok := b.keys[tenant]
	if !ok {
		cred = b.keys["acme"]
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Authorization" {
			req.Header.Del("Authorization")
		}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Add(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	b.contract(t, req, body, res, raw)
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(t, json.Unmarshal(raw, &r.body), string(raw))
	}
	if res.StatusCode >= 400 {
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), string(raw))
		require.EqualValues(t, res.StatusCode, r.body["status"], string(raw))
		require.True(t, strings.HasPrefix(r.body["type"].(string), "urn:rowfence:problem:"), string(raw))
		require.NotEmpty(t, r.body["title"])
	}
	return r
}

func (r response) requireStatus(t *testing.T, want int) response {
	t.Helper()
	require.Equal(t, want, r.status, string(r.raw))
	return r
}

func (r response) problemType(t *testing.T) string {
	t.Helper()
	return strings.TrimPrefix(r.body["type"].(string), "urn:rowfence:problem:")
}

func (r response) fieldErrors(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, _ := r.body["errors"].([]any)
	for _, e := range list {
		m := e.(map[string]any)
		out[m["field"].(string)] = m["detail"].(string)
	}
	return out
}

func TestProductLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.call(t, "POST", "/v1/products", "acme", `{"name":"Anvil","description":"heavy","price":4999}`).requireStatus(t, 201)
	id := created.body["id"].(string)
	require.Equal(t, "/v1/products/"+id, created.header.Get("Location"))
	require.Equal(t, b.acme.String(), created.body["tenant_id"])
	require.EqualValues(t, 4999, created.body["price"])
	require.Equal(t, "application/json", created.header.Get("Content-Type"))
	require.Equal(t, "no-store", created.header.Get("Cache-Control"))

	got := b.call(t, "GET", "/v1/products/"+id, "acme", "").requireStatus(t, 200)
	require.Equal(t, "Anvil", got.body["name"])
	// The tenant may be named by UUID as well as by slug.
	b.call(t, "GET", "/v1/products/"+id, b.acme.String(), "").requireStatus(t, 200)
	b.call(t, "GET", "/v1/products/"+id, strings.ToUpper(b.acme.String()), "").requireStatus(t, 200)

	patched := b.call(t, "PATCH", "/v1/products/"+id, "acme", `{"price":5999}`).requireStatus(t, 200)
	require.EqualValues(t, 5999, patched.body["price"])
	require.Equal(t, "Anvil", patched.body["name"], "absent fields are kept")
	require.Equal(t, "heavy", patched.body["description"])
	b.call(t, "PATCH", "/v1/products/"+id, "acme", `{"description":""}`, "Content-Type", "",
		"Content-Type", "application/merge-patch+json").requireStatus(t, 200)

	list := b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	require.Len(t, list.body["items"], 1)
	require.Nil(t, list.body["next_cursor"])

	del := b.call(t, "DELETE", "/v1/products/"+id, "acme", "").requireStatus(t, 204)
	require.Empty(t, del.raw)
	gone := b.call(t, "GET", "/v1/products/"+id, "acme", "").requireStatus(t, 404)
	require.Equal(t, "no such resource", gone.body["detail"], "a handler's 404 is not mistaken for the mux's")
	b.call(t, "DELETE", "/v1/products/"+id, "acme", "").requireStatus(t, 404)
}

func TestUserLifecycleAndEmailUniqueness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.call(t, "POST", "/v1/users", "acme", `{"name":"Ann","email":"ann@example.com"}`).requireStatus(t, 201)
	id := created.body["id"].(string)
	require.Equal(t, "member", created.body["role"], "role defaults to member")
	require.Equal(t, "/v1/users/"+id, created.header.Get("Location"))

	dup := b.call(t, "POST", "/v1/users", "acme", `{"name":"Ann 2","email":"ANN@example.com"}`).requireStatus(t, 409)
	require.Equal(t, "conflict", dup.problemType(t))
	require.Contains(t, dup.fieldErrors(t), "email")
	// The same address in another tenant is fine: uniqueness is per tenant,
	// so a 409 can never tell acme what globex has (leak vector 4).
	b.call(t, "POST", "/v1/users", "globex", `{"name":"Ann","email":"ann@example.com","role":"admin"}`).requireStatus(t, 201)

	other := b.call(t, "POST", "/v1/users", "acme", `{"name":"Bob","email":"bob@example.com","role":"viewer"}`).requireStatus(t, 201)
	b.call(t, "PATCH", "/v1/users/"+other.body["id"].(string), "acme", `{"email":"Ann@Example.com"}`).requireStatus(t, 409)
	patched := b.call(t, "PATCH", "/v1/users/"+id, "acme", `{"role":"admin","name":"Ann A."}`).requireStatus(t, 200)
	require.Equal(t, "admin", patched.body["role"])
	require.Equal(t, "ann@example.com", patched.body["email"])
	require.NotEqual(t, created.body["updated_at"], patched.body["updated_at"])

	b.call(t, "GET", "/v1/users/"+id, "acme", "").requireStatus(t, 200)
	require.Len(t, b.call(t, "GET", "/v1/users", "acme", "").requireStatus(t, 200).body["items"], 3, "the first admin, Ann and Bob")
	b.call(t, "DELETE", "/v1/users/"+id, "acme", "").requireStatus(t, 204)
	b.call(t, "GET", "/v1/users/"+id, "acme", "").requireStatus(t, 404)
}

// Tenant A using tenant B's ids gets exactly what it gets for ids that do not
// exist: the answers cannot be told apart (leak vector 8), and B's rows stay.
func TestCrossTenantThroughHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, kind := range []string{"products", "users"} {
		body := `{"name":"Globex thing","price":1}`
		if kind == "users" {
			body = `{"name":"Globex person","email":"g@example.com"}`
		}
		theirs := b.call(t, "POST", "/v1/"+kind, "globex", body).requireStatus(t, 201)
		id := theirs.body["id"].(string)
		absent := uuid.NewString()
		for _, method := range []string{"GET", "PATCH", "DELETE"} {
			reqBody := ""
			if method == "PATCH" {
				reqBody = `{"name":"hijacked"}`
			}
			cross := b.call(t, method, "/v1/"+kind+"/"+id, "acme", reqBody).requireStatus(t, 404)
			missing := b.call(t, method, "/v1/"+kind+"/"+absent, "acme", reqBody).requireStatus(t, 404)
			delete(cross.body, "instance")
			delete(missing.body, "instance")
			require.Equal(t, missing.body, cross.body, "%s %s: another tenant's id answers like an absent one", method, kind)
			require.Equal(t, len(missing.raw), len(cross.raw), "same size too")
		}
		list := b.call(t, "GET", "/v1/"+kind, "acme", "").requireStatus(t, 200)
		for _, item := range list.body["items"].([]any) {
			require.Equal(t, b.acme.String(), item.(map[string]any)["tenant_id"], "acme lists only its own %s", kind)
		}
		still := b.call(t, "GET", "/v1/"+kind+"/"+id, "globex", "").requireStatus(t, 200)
		require.Equal(t, theirs.body["name"], still.body["name"])
	}
	// A body that names a tenant is refused, not obeyed.
	r := b.call(t, "POST", "/v1/products", "acme", fmt.Sprintf(`{"name":"x","price":1,"tenant_id":%q}`, b.globex)).requireStatus(t, 400)
	require.Contains(t, r.body["detail"], "tenant_id")
	require.Empty(t, b.call(t, "GET", "/v1/products", "acme", "").body["items"])
}

func TestTenantHeader(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.call(t, "GET", "/v1/products", "", "").requireStatus(t, 400)
	for _, bad := range []string{"ACME", "ac", "-acme", "acme-", "acme globex", "../acme", "acme,globex",
		"00000000-0000-0000-0000-000000000000", "{" + b.acme.String() + "}", "urn:uuid:" + b.acme.String(),
		"acmé", strings.Repeat("a", 64), b.acme.String()[:35] + "g"} {
		r := b.call(t, "GET", "/v1/products", bad, "")
		require.Equal(t, 400, r.status, "%q: %s", bad, r.raw)
		require.Equal(t, "tenant-malformed", r.problemType(t), "%q", bad)
	}
	two := b.call(t, "GET", "/v1/products", "acme", "", httpapi.TenantHeader, "globex").requireStatus(t, 400)
	require.Equal(t, "tenant-malformed", two.problemType(t))

	// A tenant other than the credential's is a 403 whether it exists or not
	// (TestTenantMismatchRevealsNothing has the details).
	unknown := b.call(t, "GET", "/v1/products", "initech", "").requireStatus(t, 403)
	require.Equal(t, "tenant-mismatch", unknown.problemType(t))
	b.call(t, "GET", "/v1/products", uuid.NewString(), "").requireStatus(t, 403)
	b.call(t, "GET", "/v1/products", b.acme.String(), "").requireStatus(t, 200)

	_, err := b.admin.Exec(context.Background(), "update tenants set status = 'suspended' where slug = 'globex'")
	require.NoError(t, err)
	suspended := b.call(t, "GET", "/v1/products", "globex", "").requireStatus(t, 403)
	require.Equal(t, "tenant-suspended", suspended.problemType(t))
	b.call(t, "POST", "/v1/products", "globex", `{"name":"x","price":1}`).requireStatus(t, 403)
	b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	_, err = b.admin.Exec(context.Background(), "update tenants set status = 'active' where slug = 'globex'")
	require.NoError(t, err)
	b.call(t, "GET", "/v1/products", "globex", "").requireStatus(t, 200)

	// Routing comes first: an unknown route is a 404 whatever the tenant.
	b.call(t, "GET", "/v1/nothing", "", "").requireStatus(t, 404)
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := map[string]bool{}
	for i := range 25 {
		r := b.call(t, "POST", "/v1/products", "acme", fmt.Sprintf(`{"name":"p%02d","price":%d}`, i, i)).requireStatus(t, 201)
		want[r.body["id"].(string)] = true
	}
	b.call(t, "POST", "/v1/products", "globex", `{"name":"theirs","price":1}`).requireStatus(t, 201)

	seen := map[string]bool{}
	var order []string
	cursor := ""
	var pages []int
	for {
		path := "/v1/products?limit=10"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := b.call(t, "GET", path, "acme", "").requireStatus(t, 200)
		items := r.body["items"].([]any)
		pages = append(pages, len(items))
		for _, it := range items {
			id := it.(map[string]any)["id"].(string)
			require.False(t, seen[id], "no item twice")
			seen[id] = true
			order = append(order, id)
		}
		if r.body["next_cursor"] == nil {
			break
		}
		cursor = r.body["next_cursor"].(string)
	}
	require.Equal(t, []int{10, 10, 5}, pages)
	require.Equal(t, want, seen, "every acme product, and only those")

	// The order is stable: the same walk gives the same sequence.
	first := b.call(t, "GET", "/v1/products?limit=25", "acme", "").requireStatus(t, 200)
	for i, it := range first.body["items"].([]any) {
		require.Equal(t, order[i], it.(map[string]any)["id"])
	}
	require.Len(t, b.call(t, "GET", "/v1/products", "acme", "").body["items"], 20, "default limit 20")
	require.Nil(t, first.body["next_cursor"], "exactly 25: no next page")

	page1 := b.call(t, "GET", "/v1/products?limit=10", "acme", "").requireStatus(t, 200)
	acmeCursor := page1.body["next_cursor"].(string)
	for _, bad := range []string{"limit=0", "limit=101", "limit=abc", "limit=1.5", "limit=-1", "limit=%2B5", "limit=05",
		"limit=10&limit=20", "limit=", "order=name", "sort=color", "sort=--name", "q=", "email=x@y.z", "cursor=", "cursor=a&cursor=b", "%zz"} {
		r := b.call(t, "GET", "/v1/products?"+bad, "acme", "")
		require.Equal(t, 400, r.status, "%s: %s", bad, r.raw)
	}
	// Cursors are bound to tenant and list; altered ones are refused.
	cross := b.call(t, "GET", "/v1/products?cursor="+acmeCursor, "globex", "").requireStatus(t, 400)
	require.Equal(t, "invalid-cursor", cross.problemType(t))
	b.call(t, "GET", "/v1/users?cursor="+acmeCursor, "acme", "").requireStatus(t, 400)
	tampered := []byte(acmeCursor)
	tampered[5] ^= 1
	if tampered[5] == '-' || tampered[5] == '_' {
		tampered[5] = 'A'
	}
	b.call(t, "GET", "/v1/products?cursor="+string(tampered), "acme", "").requireStatus(t, 400)
	for _, junk := range []string{"x", "AAAA", acmeCursor + "A", strings.Repeat("A", len(acmeCursor)), acmeCursor[:len(acmeCursor)-1] + "%3D"} {
		b.call(t, "GET", "/v1/products?cursor="+junk, "acme", "").requireStatus(t, 400)
	}
	b.call(t, "GET", "/v1/products?cursor="+acmeCursor, "acme", "").requireStatus(t, 200)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pid := b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`).requireStatus(t, 201).body["id"].(string)

	for _, path := range []string{"/v1/products/123", "/v1/products/not-a-uuid", "/v1/users/" + pid[:35],
		"/v1/products/" + strings.ReplaceAll(pid, "-", "")} {
		r := b.call(t, "GET", path, "acme", "").requireStatus(t, 400)
		require.Equal(t, "invalid-id", r.problemType(t))
	}

	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		ptype                    string
	}{
		{"malformed json", "POST", "/v1/products", `{"name":`, nil, 400, "malformed-json"},
		{"not an object", "POST", "/v1/products", `[1,2]`, nil, 400, "malformed-json"},
		{"two objects", "POST", "/v1/products", `{"name":"a","price":1}{"name":"b","price":1}`, nil, 400, "malformed-json"},
		{"trailing garbage", "POST", "/v1/products", `{"name":"a","price":1} x`, nil, 400, "malformed-json"},
		{"unknown field", "POST", "/v1/products", `{"name":"a","price":1,"colour":"red"}`, nil, 400, "malformed-json"},
		{"empty body", "POST", "/v1/products", ``, []string{"Content-Type", "application/json"}, 400, "malformed-json"},
		{"invalid utf-8", "POST", "/v1/products", "{\"name\":\"\xff\xfe\",\"price\":1}", nil, 400, "malformed-json"},
		{"text/plain", "POST", "/v1/products", `{"name":"a","price":1}`, []string{"Content-Type", "", "Content-Type", "text/plain"}, 415, "unsupported-media-type"},
		{"no content type", "POST", "/v1/users", `{"name":"a","email":"a@b.co"}`, []string{"Content-Type", ""}, 415, "unsupported-media-type"},
		{"latin1 charset", "POST", "/v1/products", `{"name":"a","price":1}`, []string{"Content-Type", "", "Content-Type", "application/json; charset=latin1"}, 415, "unsupported-media-type"},
		{"merge-patch on POST", "POST", "/v1/products", `{"name":"a","price":1}`, []string{"Content-Type", "", "Content-Type", "application/merge-patch+json"}, 415, "unsupported-media-type"},
		{"too large", "POST", "/v1/products", `{"name":"a","description":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `","price":1}`, nil, 413, "body-too-large"},
		{"unknown route", "GET", "/v1/widgets", "", nil, 404, "not-found"},
		{"trailing slash", "GET", "/v1/products/", "", nil, 404, "not-found"},
		{"method", "PUT", "/v1/products/" + pid, `{}`, nil, 405, "method-not-allowed"},
		{"method on list", "DELETE", "/v1/users", "", nil, 405, "method-not-allowed"},
	}
	for _, c := range cases {
		r := b.call(t, c.method, c.path, "acme", c.body, c.headers...)
		require.Equal(t, c.status, r.status, "%s: %s", c.name, r.raw)
		require.Equal(t, c.ptype, r.problemType(t), c.name)
	}
	require.Contains(t, b.call(t, "PUT", "/v1/products/"+pid, "acme", `{}`).header.Get("Allow"), "PATCH")

	// application/json with an explicit utf-8 charset is fine.
	b.call(t, "POST", "/v1/products", "acme", `{"name":"ok","price":1}`, "Content-Type", "",
		"Content-Type", "application/json; charset=UTF-8").requireStatus(t, 201)
	// Nothing from the refused requests was written.
	require.Len(t, b.call(t, "GET", "/v1/products", "acme", "").body["items"], 2)
}

func TestValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pid := b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`).requireStatus(t, 201).body["id"].(string)
	uid := b.call(t, "POST", "/v1/users", "acme", `{"name":"x","email":"x@example.com"}`).requireStatus(t, 201).body["id"].(string)
	cases := []struct {
		method, path, body string
		fields             []string
	}{
		{"POST", "/v1/products", `{}`, []string{"name", "price"}},
		{"POST", "/v1/products", `{"name":"  ","price":-1}`, []string{"name", "price"}},
		{"POST", "/v1/products", `{"name":"a","price":9007199254740992}`, []string{"price"}},
		{"POST", "/v1/products", `{"name":"a","price":1.5}`, []string{"price"}},
		{"POST", "/v1/products", `{"name":"a","price":"12"}`, []string{"price"}},
		{"POST", "/v1/products", `{"name":"a","price":1e30}`, []string{"price"}},
		{"POST", "/v1/products", `{"name":12,"price":1}`, []string{"name"}},
		{"POST", "/v1/products", `{"name":"` + strings.Repeat("é", 201) + `","price":1}`, []string{"name"}},
		{"POST", "/v1/products", `{"name":"nul\u0000byte","price":1}`, []string{"name"}},
		{"POST", "/v1/products", `{"name":"ab\udbff\udfffx","price":1}`, []string{"name"}}, // U+10FFFF
		{"POST", "/v1/users", `{"name":"a\ufdd0","email":"n@example.com"}`, []string{"name"}},
		{"PATCH", "/v1/products/" + pid, `{"name":"\uffff"}`, []string{"name"}},
		{"POST", "/v1/products", `{"name":"a","price":1,"description":"` + strings.Repeat("d", 10001) + `"}`, []string{"description"}},
		{"POST", "/v1/products", `{"name":null,"price":null}`, []string{"name", "price"}},
		{"POST", "/v1/users", `{"name":"a","email":"not-an-email"}`, []string{"email"}},
		{"POST", "/v1/users", `{"name":"a","email":"Ann <a@example.com>"}`, []string{"email"}},
		{"POST", "/v1/users", `{"name":"a","email":"a@example.com","role":"root"}`, []string{"role"}},
		{"POST", "/v1/users", `{"email":"a@example.com"}`, []string{"name"}},
		{"PATCH", "/v1/products/" + pid, `{}`, []string{""}},
		{"PATCH", "/v1/products/" + pid, `{"name":null}`, []string{"name"}},
		{"PATCH", "/v1/products/" + pid, `{"price":-5}`, []string{"price"}},
		{"PATCH", "/v1/products/" + pid, `{"price":"5"}`, []string{"price"}},
		{"PATCH", "/v1/users/" + uid, `{"role":"owner","email":"bad"}`, []string{"email", "role"}},
		{"PATCH", "/v1/users/" + uid, `{}`, []string{""}},
	}
	for _, c := range cases {
		r := b.call(t, c.method, c.path, "acme", c.body)
		require.Equal(t, 422, r.status, "%s %s: %s", c.method, c.body, r.raw)
		require.Equal(t, "validation", r.problemType(t))
		fe := r.fieldErrors(t)
		for _, f := range c.fields {
			require.Contains(t, fe, f, "%s: %s", c.body, r.raw)
		}
	}
	// Nothing changed.
	got := b.call(t, "GET", "/v1/products/"+pid, "acme", "").requireStatus(t, 200)
	require.Equal(t, "x", got.body["name"])
	require.EqualValues(t, 1, got.body["price"])
	require.Len(t, b.call(t, "GET", "/v1/products", "acme", "").body["items"], 1)
	// Unicode is stored as sent.
	u := b.call(t, "POST", "/v1/products", "acme", `{"name":"Grüße 🚀 \u00e9","description":"line1\nline2","price":0}`).requireStatus(t, 201)
	require.Equal(t, "Grüße 🚀 é", u.body["name"])
	require.Equal(t, "line1\nline2", u.body["description"])
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "ok", b.call(t, "GET", "/healthz", "", "").requireStatus(t, 200).body["status"])
	require.Equal(t, "ready", b.call(t, "GET", "/readyz", "", "").requireStatus(t, 200).body["status"])
	_, err := b.admin.Exec(context.Background(), "alter table users no force row level security")
	require.NoError(t, err)
	r := b.call(t, "GET", "/readyz", "", "").requireStatus(t, 503)
	require.NotContains(t, r.body["detail"], "users", "which table is for the log (TestReadyzTellsStrangersNothing)")
	require.NotEmpty(t, r.header.Get("Retry-After"))
}

// A request stuck behind a lock ends at the statement timeout (or, while a
// connection prepares the statement, at the request timeout) with a 503 and
// Retry-After, and the server answers normally afterwards.
func TestSlowDatabaseIsA503(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, func(c *httpapi.Config) {
		c.StatementTimeout = 100 * time.Millisecond
		c.RequestTimeout = time.Second
	})
	slow := b
	slow.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)

	locker, err := b.admin.Begin(ctx)
	require.NoError(t, err)
	defer locker.Rollback(ctx)
	_, err = locker.Exec(ctx, "lock table products in access exclusive mode")
	require.NoError(t, err)
	start := time.Now()
	r := slow.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 503)
	require.Equal(t, "unavailable", r.problemType(t))
	require.NotEmpty(t, r.header.Get("Retry-After"))
	require.Less(t, time.Since(start), 3*time.Second)
	require.NoError(t, locker.Rollback(ctx))
	slow.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
}

// syncBuf collects log output written from the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRequestIDAndAccessLog(t *testing.T) {
	t.Parallel()
	logs := &syncBuf{}
	logged := setup(t, func(c *httpapi.Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })

	made := logged.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200).header.Get(httpapi.RequestIDHeader)
	require.Len(t, made, 24, "a request without an id gets one")
	echoed := logged.call(t, "GET", "/v1/products", "acme", "", httpapi.RequestIDHeader, "trace-42:abc").requireStatus(t, 200)
	require.Equal(t, "trace-42:abc", echoed.header.Get(httpapi.RequestIDHeader))
	for _, bad := range []string{"has space", strings.Repeat("x", 129), "quote\"d"} {
		r := logged.call(t, "GET", "/v1/nothing", "", "", httpapi.RequestIDHeader, bad).requireStatus(t, 404)
		require.NotEqual(t, bad, r.header.Get(httpapi.RequestIDHeader))
		require.Len(t, r.header.Get(httpapi.RequestIDHeader), 24)
	}
	secret := `{"name":"secret-body-value","price":1}`
	logged.call(t, "POST", "/v1/products", "acme", secret).requireStatus(t, 201)

	out := logs.String()
	require.Contains(t, out, `"request_id":"trace-42:abc"`)
	require.Contains(t, out, `"request_id":"`+made+`"`)
	require.Contains(t, out, `"tenant":"acme"`)
	require.Contains(t, out, `"status":404`)
	require.NotContains(t, out, "secret-body-value", "bodies are never logged")
	require.Contains(t, out, `"role":"admin"`)
	require.Contains(t, out, `"credential":"api_key"`)
	require.Contains(t, out, `"route":"GET /v1/products"`)
	forged := logged.keys["acme"][:len(logged.keys["acme"])-8] + "00000000"
	logged.call(t, "GET", "/v1/products", "acme", "", "Authorization", "Bearer "+forged).requireStatus(t, 401)
	out = logs.String()
	require.Contains(t, out, `"auth_error":"invalid credential: wrong secret for API key`)
	secretPart := logged.keys["acme"][len(logged.keys["acme"])-64:]
	require.NotContains(t, out, secretPart, "a credential is never logged")
	require.NotContains(t, out, forged[len(forged)-64:], "not even a wrong one")
}
