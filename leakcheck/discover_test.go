package leakcheck

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

func realDocument(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../httpapi/openapi.yaml")
	require.NoError(t, err)
	return raw
}

func collections(d *Discovery) []string {
	var out []string
	for _, r := range d.Resources {
		out = append(out, r.Collection)
	}
	return out
}

// rowfence's own document: the tenant collections with the full set of
// methods are products and users; api-keys (no PATCH) and exports (no
// PATCH, DELETE) are listed as not attacked; the platform's
// /v1/admin/tenants has every method but not the tenant scheme.
func TestDiscoverRowfenceDocument(t *testing.T) {
	d, err := Discover(realDocument(t))
	require.NoError(t, err)
	require.Equal(t, []string{"/v1/products", "/v1/users"}, collections(d))
	require.Equal(t, "X-Tenant-ID", d.TenantHeader)
	require.Len(t, d.Skipped, 2)
	require.Contains(t, d.Skipped[0], "/v1/api-keys")
	require.Contains(t, d.Skipped[1], "/v1/exports")
	for _, r := range d.Resources {
		require.Equal(t, r.Collection+"/{id}", r.Item)
		require.Equal(t, "id", r.IDParam)
		require.Equal(t, "name", r.patchField)
		require.Equal(t, "items", r.itemsField)
		require.Equal(t, "next_cursor", r.nextCursorField)
		require.Equal(t, "cursor", r.cursorParam)
		require.Equal(t, "limit", r.limitParam)
	}
	require.Equal(t, []string{"email"}, d.Resources[1].emails)
	require.Empty(t, d.Resources[0].refs, "no product field names another resource")
	require.Empty(t, d.Resources[1].refs, "external_id is no UUID reference")
}

// Every generated create body is valid by the document's own schema, and
// two bodies differ where values must be unique.
func TestGeneratedBodiesValidate(t *testing.T) {
	d, err := Discover(realDocument(t))
	require.NoError(t, err)
	for _, r := range d.Resources {
		a, b := r.body("a1"), r.body("b2")
		for _, body := range []map[string]any{a, b} {
			// Round-trip through JSON as the wire does (int64 -> float64).
			var v any
			require.NoError(t, json.Unmarshal([]byte(jsonString(body)), &v))
			require.NoError(t, r.create.VisitJSON(v), "%s: %s", r.Collection, jsonString(body))
		}
		if len(r.emails) > 0 {
			require.NotEqual(t, a[r.emails[0]], b[r.emails[0]])
		}
	}
}

// Values from string formats, enums, lengths and patterns.
func TestGenerateFromSchemaKeywords(t *testing.T) {
	u := func(n uint64) *uint64 { return &n }
	f := func(n float64) *float64 { return &n }
	str := &openapi3.Types{"string"}
	for _, s := range []*openapi3.Schema{
		{Type: str, Format: "email"},
		{Type: str, Format: "uuid"},
		{Type: str, Format: "date-time"},
		{Type: str, Enum: []any{"draft", "done"}},
		{Type: str, MinLength: 40, MaxLength: u(50)},
		{Type: str, MaxLength: u(3)},
		{Type: str, Pattern: "^[a-z]+$"},
		{Type: str, Pattern: "^[0-9]{1,4}$"},
		{Type: &openapi3.Types{"integer"}, Min: f(10), Max: f(20)},
		{Type: &openapi3.Types{"array"}, MinItems: 2, Items: openapi3.NewSchemaRef("", &openapi3.Schema{Type: str, Format: "uuid"})},
		{Type: &openapi3.Types{"object"}, Required: []string{"x"}, Properties: openapi3.Schemas{"x": openapi3.NewSchemaRef("", &openapi3.Schema{Type: &openapi3.Types{"boolean"}})}},
	} {
		v, err := generate(s, "tag-1")
		require.NoError(t, err, "%+v", s)
		var wire any
		b, _ := json.Marshal(v)
		require.NoError(t, json.Unmarshal(b, &wire))
		require.NoError(t, s.VisitJSON(wire, openapi3.EnableFormatValidation()), "%v for %+v", v, s)
	}
	_, err := generate(&openapi3.Schema{Type: str, Pattern: "^Z{3}$"}, "t")
	require.ErrorContains(t, err, "no string")
}

// A document that is missing, malformed or names no tenant resource stops
// leakcheck before it creates anything, with an error that says so.
func TestRunWithoutAUsableDocument(t *testing.T) {
	real := realDocument(t)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"missing", 404, `{"status":404}`, "status 404"},
		{"malformed", 200, `{"openapi": "3.1.0", "paths": {`, "does not parse"},
		{"not OpenAPI", 200, `{"hello": "world"}`, "OpenAPI document"},
		{"no tenant scheme", 200, strings.ReplaceAll(strings.Replace(string(real), "name: X-Tenant-ID", "name: X-Api-Region", 1), "tenantHeader", "regionHeader"), "names no tenant"},
		{"no full collection", 200, strings.ReplaceAll(string(real), "    patch:\n", "    x-patch:\n"), "lists no tenant collection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				require.Equal(t, "/openapi.json", r.URL.Path, "nothing but the document is asked for")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := Run(context.Background(), Config{URL: srv.URL, TenantA: "a", TenantB: "b", KeyA: "ka", KeyB: "kb"})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// --openapi may name a file: the document is read from it, not fetched.
func TestRunReadsTheDocumentFromAFile(t *testing.T) {
	path := t.TempDir() + "/openapi.json"
	require.NoError(t, os.WriteFile(path, []byte(`{"openapi": "3.1.0", "paths": {`), 0o600))
	_, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", OpenAPI: path, TenantA: "a", TenantB: "b", KeyA: "ka", KeyB: "kb"})
	require.ErrorContains(t, err, "does not parse")
	_, err = Run(context.Background(), Config{URL: "http://127.0.0.1:1", OpenAPI: path + ".absent", TenantA: "a", TenantB: "b", KeyA: "ka", KeyB: "kb"})
	require.ErrorContains(t, err, "reading the OpenAPI document")
}
