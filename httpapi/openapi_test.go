package httpapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
)

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err, "the document is valid OpenAPI")
	require.True(t, doc.IsOpenAPI31OrLater())
	b := setup(t)
	r := b.call(t, "GET", "/openapi.json", "", "", "Authorization", "").requireStatus(t, 200)
	require.Equal(t, "3.1.0", r.body["openapi"])
	require.Contains(t, r.body["paths"], "/v1/products/{id}")
	y := b.call(t, "GET", "/openapi.yaml", "", "", "Authorization", "").requireStatus(t, 200)
	src, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	require.Equal(t, string(src), string(y.raw), "the served YAML is the source")
}

// operations calls fn for every operation of the document.
func operations(doc *openapi3.T, fn func(path, method string, op *openapi3.Operation)) {
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			fn(path, method, op)
		}
	}
}

// The problem types a client can switch on are exactly those the server
// writes: the ProblemType enumeration holds urn:rowfence:problem:<slug> for
// every problemType literal in the package's code, and nothing else.
func TestOpenAPIProblemTypesAreTheServers(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	require.Contains(t, doc.Components.Schemas, "ProblemType", "the problem types are an enumeration")
	var documented []string
	for _, v := range doc.Components.Schemas["ProblemType"].Value.Enum {
		documented = append(documented, v.(string))
	}
	require.Equal(t, "#/components/schemas/ProblemType", doc.Components.Schemas["Problem"].Value.Properties["type"].Ref)

	var written []string
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || len(lit.Elts) == 0 {
				return true
			}
			if id, ok := lit.Type.(*ast.Ident); !ok || id.Name != "problemType" {
				return true
			}
			slug := lit.Elts[min(1, len(lit.Elts)-1)]
			for _, e := range lit.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "slug" {
					slug = kv.Value
				}
			}
			if kv, ok := slug.(*ast.KeyValueExpr); ok {
				slug = kv.Value
			}
			s, err := strconv.Unquote(slug.(*ast.BasicLit).Value)
			require.NoError(t, err)
			written = append(written, "urn:rowfence:problem:"+s)
			return true
		})
	}
	require.NotEmpty(t, written, "no problemType literals found")
	slices.Sort(documented)
	slices.Sort(written)
	require.Equal(t, slices.Compact(written), documented, "components.schemas.ProblemType must list every problem type the server writes")
}

// Request bodies are strict, response bodies open (issue #19): every object
// a client sends lists its names and refuses others, so a typo is a 400; no
// object a client receives refuses names, so a client generated today
// keeps decoding answers after a release adds a field (ogen's decoder
// rejects an unknown field of an additionalProperties: false schema).
func TestOpenAPIRequestsStrictResponsesOpen(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	var walk func(where string, ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool, fn func(where string, s *openapi3.Schema))
	walk = func(where string, ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool, fn func(string, *openapi3.Schema)) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		seen[ref.Value] = true
		if ref.Ref != "" {
			where = ref.Ref
		}
		fn(where, ref.Value)
		for name, p := range ref.Value.Properties {
			walk(where+"."+name, p, seen, fn)
		}
		walk(where+"[]", ref.Value.Items, seen, fn)
		walk(where+"{}", ref.Value.AdditionalProperties.Schema, seen, fn)
	}
	requests, responses := 0, 0
	operations(doc, func(path, method string, op *openapi3.Operation) {
		if op.RequestBody != nil {
			for ct, mt := range op.RequestBody.Value.Content {
				walk(method+" "+path+" "+ct, mt.Schema, map[*openapi3.Schema]bool{}, func(where string, s *openapi3.Schema) {
					if s.Type.Is("object") && s.AdditionalProperties.Schema == nil {
						requests++
						has := s.AdditionalProperties.Has
						require.True(t, has != nil && !*has, "%s: a request object must be additionalProperties: false", where)
					}
				})
			}
		}
		for status, r := range op.Responses.Map() {
			for ct, mt := range r.Value.Content {
				walk(method+" "+path+" "+status+" "+ct, mt.Schema, map[*openapi3.Schema]bool{}, func(where string, s *openapi3.Schema) {
					if s.Type.Is("object") {
						responses++
						has := s.AdditionalProperties.Has
						require.False(t, has != nil && !*has, "%s: a response object must not be additionalProperties: false", where)
					}
				})
			}
		}
	})
	require.Positive(t, requests)
	require.Positive(t, responses)
}

// No two components share a name, whatever their kind: generators make one
// type of each (oapi-codegen stopped at "duplicate typename 'Tenant'" when
// a parameter and a schema were both Tenant), and Go and TypeScript names
// lose the case and punctuation that set them apart.
func TestOpenAPIComponentNamesAreDistinct(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	c := doc.Components
	seen := map[string]string{}
	add := func(kind, name string) {
		key := strings.ToLower(strings.NewReplacer("-", "", "_", "", ".", "").Replace(name))
		require.NotContains(t, seen, key, "component %s %q has the name of %s", kind, name, seen[key])
		seen[key] = kind + " " + name
	}
	for name := range c.Schemas {
		add("schema", name)
	}
	for name := range c.Parameters {
		add("parameter", name)
	}
	for name := range c.Responses {
		add("response", name)
	}
	for name := range c.Headers {
		add("header", name)
	}
	for name := range c.RequestBodies {
		add("requestBody", name)
	}
	for name := range c.SecuritySchemes {
		add("securityScheme", name)
	}
}

// The tenant and the credential are security schemes that every tenant
// operation requires together, never parameters, so that a generated
// client sets them once (issue #19: X-Tenant-ID was a required parameter of
// nineteen operations); platform operations take the platform key alone,
// operations outside /v1 nothing.
func TestOpenAPITenantAndCredentialAreSetOnce(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	require.Contains(t, doc.Components.SecuritySchemes, "tenantHeader")
	require.Contains(t, doc.Components.SecuritySchemes, "bearerAuth")
	tenant := doc.Components.SecuritySchemes["tenantHeader"].Value
	require.Equal(t, "apiKey", tenant.Type)
	require.Equal(t, "header", tenant.In)
	require.Equal(t, httpapi.TenantHeader, tenant.Name)
	require.Equal(t, "bearer", doc.Components.SecuritySchemes["bearerAuth"].Value.Scheme)
	tenantOps := 0
	operations(doc, func(path, method string, op *openapi3.Operation) {
		params := append(openapi3.Parameters{}, op.Parameters...)
		params = append(params, doc.Paths.Value(path).Parameters...)
		for _, p := range params {
			require.NotEqual(t, strings.ToLower(httpapi.TenantHeader), strings.ToLower(p.Value.Name), "%s %s names the tenant in a parameter", method, path)
		}
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		var want openapi3.SecurityRequirements
		switch {
		case strings.HasPrefix(path, "/v1/admin/"):
			want = openapi3.SecurityRequirements{{"platformAuth": {}}}
		case strings.HasPrefix(path, "/v1/"):
			want = openapi3.SecurityRequirements{{"bearerAuth": {}, "tenantHeader": {}}}
			tenantOps++
		default:
			want = openapi3.SecurityRequirements{}
		}
		require.Equal(t, want, security, "%s %s", method, path)
	})
	require.GreaterOrEqual(t, tenantOps, 19)
}

// Every answer is declared with the headers it carries (issue #19): each
// status by itself (no default), X-Request-ID on all of them,
// Idempotent-Replayed on the success of every POST that takes an
// Idempotency-Key, Location on every 201 and 202 of a POST, ETag on every
// 304 and 412, Retry-After on every 429 and 503, WWW-Authenticate on every
// 401, Allow on the 405. The contract test (contract_test.go) checks the
// real answers against these declarations.
func TestOpenAPIDeclaresEveryAnswersHeaders(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	has := func(r *openapi3.Response, name string, required bool) bool {
		h, ok := r.Headers[name]
		return ok && (!required || h.Value.Required)
	}
	require.Contains(t, doc.Components.Responses, "MethodNotAllowed", "the 405 every path may answer")
	require.True(t, has(doc.Components.Responses["MethodNotAllowed"].Value, "Allow", true))
	require.True(t, has(doc.Components.Responses["MethodNotAllowed"].Value, "X-Request-ID", true))
	operations(doc, func(path, method string, op *openapi3.Operation) {
		require.Nil(t, op.Responses.Default(), "%s %s: declare each status, not default", method, path)
		idempotent := false
		for _, p := range op.Parameters {
			idempotent = idempotent || p.Value.Name == httpapi.IdempotencyKeyHeader
		}
		for status, ref := range op.Responses.Map() {
			r, where := ref.Value, method+" "+path+" "+status
			code, err := strconv.Atoi(status)
			require.NoError(t, err, where)
			require.True(t, has(r, "X-Request-ID", true), "%s: X-Request-ID", where)
			switch {
			case code >= 200 && code < 300 && method == http.MethodPost:
				require.True(t, has(r, "Location", true), "%s: Location", where)
				if idempotent {
					require.True(t, has(r, httpapi.ReplayedHeader, false), "%s: %s", where, httpapi.ReplayedHeader)
				}
			case code == http.StatusNotModified, code == http.StatusPreconditionFailed:
				require.True(t, has(r, "ETag", true), "%s: ETag", where)
			case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
				require.True(t, has(r, "Retry-After", true), "%s: Retry-After", where)
			case code == http.StatusUnauthorized:
				require.True(t, has(r, "WWW-Authenticate", true), "%s: WWW-Authenticate", where)
			}
		}
	})
}

// The contract's enums are the vocabulary of db/dbtype/dbtype.go, which
// db.TestVocabularyMatchesTheCatalog holds equal to the CHECK constraints.
func TestOpenAPIEnumsAreTheVocabulary(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	enum := func(schema, property string) []string {
		s := doc.Components.Schemas[schema]
		require.NotNil(t, s, schema)
		v := s.Value
		if property != "" {
			require.NotNil(t, v.Properties[property], "%s.%s", schema, property)
			v = v.Properties[property].Value
		}
		var out []string
		for _, e := range v.Enum {
			out = append(out, e.(string))
		}
		return out
	}
	strs := func(in ...string) []string { return in }
	var roles, tenant, export []string
	for _, r := range dbtype.ClientRoles() {
		roles = append(roles, string(r))
	}
	for _, s := range dbtype.TenantStatuses() {
		tenant = append(tenant, string(s))
	}
	for _, s := range dbtype.ExportStatuses() {
		export = append(export, string(s))
	}
	require.ElementsMatch(t, roles, enum("Role", ""))
	require.ElementsMatch(t, tenant, enum("Tenant", "status"))
	require.ElementsMatch(t, export, enum("Export", "status"))
	// A PATCH sets active or suspended; deleting is DELETE's.
	require.ElementsMatch(t, strs(string(dbtype.TenantStatusActive), string(dbtype.TenantStatusSuspended)), enum("TenantPatch", "status"))
}
