package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/pgtest"
)

// openapiJSON is the API's document as the server publishes it.
func openapiJSON(t *testing.T) []byte {
	t.Helper()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	return raw
}

// documentCollections reads, independently of leakcheck, the collections
// of the document whose items a tenant credential can PATCH: the resources
// a tenant's rows live in.
func documentCollections(t *testing.T) []string {
	t.Helper()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	var out []string
	for path, item := range doc.Paths.Map() {
		if item.Patch == nil || (item.Patch.Security != nil && len(*item.Patch.Security) > 0 && (*item.Patch.Security)[0]["platformAuth"] != nil) {
			continue
		}
		out = append(out, path[:strings.LastIndex(path, "/")])
	}
	slices.Sort(out)
	return out
}

// leakcheck takes the resources it attacks from the deployment's OpenAPI
// document: against rowfence, exactly the tenant collections it lists, each
// attacked by id, list, body and SQL.
func TestLeakcheckDiscoversResourcesFromTheDocument(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL}, "serve")
	out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL},
		"leakcheck", "--url", base, "--create", "--db", tdb.AppURL, "--format", "json")
	require.NoError(t, err, out)
	var rep struct {
		Resources []string `json:"resources"`
		Skipped   []string `json:"skipped"`
		Results   []struct {
			Vector string `json:"vector"`
			Pass   bool   `json:"pass"`
		} `json:"results"`
		Leaks int `json:"leaks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, []string{"/v1/products", "/v1/users"}, rep.Resources)
	require.Equal(t, documentCollections(t), rep.Resources, "what the document lists")
	require.Len(t, rep.Skipped, 2, "api-keys and exports lack methods: %v", rep.Skipped)
	require.Zero(t, rep.Leaks)
	vectors := map[string]bool{}
	for _, r := range rep.Results {
		vectors[r.Vector] = r.Pass
	}
	for _, v := range []string{
		"foreign id: PATCH /v1/products/{B's id}", "foreign id: DELETE /v1/users/{B's id}",
		"list users holds only A's rows", "body carrying tenant_id (users)", "sql: A updating B's row changes nothing (users)",
		"unique values: 409 side channel", "cursor of another list",
	} {
		require.True(t, vectors[v], "vector %q tried and passed", v)
	}
}

// Without a usable document leakcheck cannot run: it says why, exits
// non-zero, and creates no tenant.
func TestLeakcheckWithoutADocument(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	for _, tc := range []struct{ name, body, want string }{
		{"missing", "", "status 404"},
		{"malformed", `{"openapi":"3.1.0","paths":`, "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.body == "" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "leakcheck", "--url", srv.URL, "--create")
			require.ErrorContains(t, err, "OpenAPI document")
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, 3, exitCode(err), "could not run")
			require.NotContains(t, out, "pass")
			var tenants int
			require.NoError(t, tdb.AdminPool(t).QueryRow(context.Background(), "select count(*) from tenants").Scan(&tenants))
			require.Zero(t, tenants, "no tenant created")
		})
	}
}
