package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/rowfence/rowfence/db"
)

// routes is the whole API surface. Everything under /v1 runs for the tenant
// and role that authenticate decided; each route names the least role it
// needs (viewer reads, member also writes products, admin does everything).
// PostgreSQL enforces the same split on its own (sql/migrations/00004_auth.sql).
func (s *server) routes(mux *http.ServeMux) {
	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	mux.Handle("GET /metrics", s.handleMetrics())
	mux.Handle("GET /openapi.json", s.handleOpenAPI(false))
	mux.Handle("GET /openapi.yaml", s.handleOpenAPI(true))

	// In path mode every /v1 route lives under /t/{tenant}.
	p := ""
	if s.mode == ModePath {
		p = "/t/{tenant}"
	}
	v1 := func(method, path string, min db.Role, h http.Handler) {
		if method == http.MethodPost {
			// Idempotency-Key (idempotency.go); an API key's secret is never
			// stored, so a replay of its creation comes without it.
			if path == "/api-keys" {
				h = s.idempotent(h, "key")
			} else {
				h = s.idempotent(h)
			}
		}
		mux.Handle(method+" "+p+"/v1"+path, s.authenticate(min, h))
	}
	v1("GET", "/me", db.RoleViewer, s.handleMe())

	v1("GET", "/products", db.RoleViewer, products.handleList(s))
	v1("POST", "/products", db.RoleMember, handleCreate(s, products, createProduct))
	v1("GET", "/products/{id}", db.RoleViewer, products.handleGet(s))
	v1("PATCH", "/products/{id}", db.RoleMember, handleUpdate(s, products, updateProduct))
	v1("DELETE", "/products/{id}", db.RoleMember, products.handleDelete(s))

	v1("GET", "/users", db.RoleViewer, users.handleList(s))
	v1("POST", "/users", db.RoleAdmin, handleCreate(s, users, createUser))
	v1("GET", "/users/{id}", db.RoleViewer, users.handleGet(s))
	v1("PATCH", "/users/{id}", db.RoleAdmin, handleUpdate(s, users, updateUser))
	v1("DELETE", "/users/{id}", db.RoleAdmin, users.handleDelete(s))

	v1("GET", "/api-keys", db.RoleAdmin, apiKeys.handleList(s))
	v1("POST", "/api-keys", db.RoleAdmin, s.handleAPIKeyCreate())
	v1("GET", "/api-keys/{id}", db.RoleAdmin, apiKeys.handleGet(s))
	v1("DELETE", "/api-keys/{id}", db.RoleAdmin, apiKeys.handleDelete(s))

	// Exports and /v1/admin need the platform pool, which also runs the
	// background jobs that write exports.
	if s.platformPool != nil {
		v1("POST", "/exports", db.RoleAdmin, s.handleExportCreate())
		v1("GET", "/exports", db.RoleAdmin, exportList.handleList(s))
		v1("GET", "/exports/{id}", db.RoleAdmin, exportList.handleGet(s))
		v1("GET", "/exports/{id}/download", db.RoleAdmin, s.handleExportDownload())
		s.adminRoutes(mux) // /v1/admin/…, platform admin keys only (admin.go)
	}
}

// apiPath is the URL path of an API resource, /v1/<segments…>, as the
// request addresses the API: in path mode under the /t/{tenant} prefix the
// request named its tenant with (a slug or tenant UUID, already checked by
// tenancy.ParseKey). Every link the API builds (Location headers, an
// export's download) comes from here, so each one works as it is in every
// tenant mode. /v1/admin routes have no tenant and get no prefix.
func (s *server) apiPath(r *http.Request, segments ...string) string {
	var b strings.Builder
	if tenant := r.PathValue("tenant"); s.mode == ModePath && tenant != "" {
		b.WriteString("/t/")
		b.WriteString(url.PathEscape(tenant))
	}
	b.WriteString("/v1")
	for _, seg := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}
