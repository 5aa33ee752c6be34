package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

// A handler bug that skips the HTTP role check is still refused by
// PostgreSQL: with the check switched off, a viewer's writes reach the
// database, which refuses them (an insert fails its WITH CHECK, an update or
// delete finds no row it may touch), and nothing changes.
func TestDatabaseRefusesWhatTheRoleCheckWouldHave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, app := tdb.AdminPool(t), tdb.AppPool(t, 2)
	o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	resolver := tenancy.NewResolver(app, 0)
	authn, err := auth.New(auth.Config{Pool: app, Tenants: resolver})
	require.NoError(t, err)
	s, err := newServer(Config{Pool: app, Resolver: resolver, Auth: authn, CursorKey: []byte(strings.Repeat("k", 32)),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	s.skipRoleCheck = true
	srv := httptest.NewServer(s.handler())
	defer srv.Close()

	call := func(method, path, key, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set(TenantHeader, "acme")
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	adminKey := o.Key
	status, product := call("POST", "/v1/products", adminKey, `{"name":"anvil","price":1}`)
	require.Equal(t, 201, status)
	status, viewer := call("POST", "/v1/users", adminKey, `{"name":"V","email":"v@acme.example","role":"viewer"}`)
	require.Equal(t, 201, status)
	status, k := call("POST", "/v1/api-keys", adminKey, `{"role":"viewer","user_id":"`+viewer["id"].(string)+`"}`)
	require.Equal(t, 201, status)
	viewerKey := k["key"].(string)
	pid := product["id"].(string)

	for _, c := range []struct {
		method, path, body string
		status             int
		problem            string
	}{
		{"POST", "/v1/products", `{"name":"by a viewer","price":1}`, 403, "forbidden"},
		{"PATCH", "/v1/products/" + pid, `{"price":999}`, 404, "not-found"},
		{"DELETE", "/v1/products/" + pid, "", 404, "not-found"},
		{"POST", "/v1/users", `{"name":"X","email":"x@acme.example","role":"admin"}`, 403, "forbidden"},
		{"PATCH", "/v1/users/" + viewer["id"].(string), `{"role":"admin"}`, 404, "not-found"},
		{"POST", "/v1/api-keys", `{"role":"viewer"}`, 403, "forbidden"},
	} {
		status, body := call(c.method, c.path, viewerKey, c.body)
		require.Equal(t, c.status, status, "%s %s: %v", c.method, c.path, body)
		require.Equal(t, "urn:rowfence:problem:"+c.problem, body["type"], "%s %s", c.method, c.path)
	}
	// The viewer still reads, and nothing changed.
	status, got := call("GET", "/v1/products/"+pid, viewerKey, "")
	require.Equal(t, 200, status)
	require.EqualValues(t, 1, got["price"])
	status, list := call("GET", "/v1/products", adminKey, "")
	require.Equal(t, 200, status)
	require.Len(t, list["items"], 1)
	status, u := call("GET", "/v1/users/"+viewer["id"].(string), adminKey, "")
	require.Equal(t, 200, status)
	require.Equal(t, "viewer", u["role"])
	status, keys := call("GET", "/v1/api-keys", adminKey, "")
	require.Equal(t, 200, status)
	require.Len(t, keys["items"], 2, "no key was made by the viewer")
}
