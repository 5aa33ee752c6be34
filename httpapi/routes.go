package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbtype"
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
	// The route decides where a handler's statements run: a POST's in the
	// transaction that also stores its answer when it has an
	// Idempotency-Key (idempotency.go), every other request's in the
	// request's scope, each unit of work in a round trip or transaction of
	// its own (db.Executor).
	v1 := func(method, path string, min dbtype.Role, h scopedHandler) {
		var run http.Handler
		switch {
		case method == http.MethodPost && path == "/api-keys":
			// An API key's secret is never stored, so a replay of its
			// creation comes without it.
			run = s.idempotent(h, "key")
		case method == http.MethodPost:
			run = s.idempotent(h)
		default:
			run = s.scoped(h)
		}
		mux.Handle(method+" "+p+"/v1"+path, s.authenticate(min, run))
	}
	v1("GET", "/me", dbtype.RoleViewer, s.handleMe())

	v1("GET", "/products", dbtype.RoleViewer, s.handleProductList())
	v1("POST", "/products", dbtype.RoleMember, s.handleProductCreate())
	v1("GET", "/products/{id}", dbtype.RoleViewer, s.handleProductGet())
	v1("PATCH", "/products/{id}", dbtype.RoleMember, s.handleProductPatch())
	v1("DELETE", "/products/{id}", dbtype.RoleMember, s.handleProductDelete())

	v1("GET", "/users", dbtype.RoleViewer, s.handleUserList())
	v1("POST", "/users", dbtype.RoleAdmin, s.handleUserCreate())
	v1("GET", "/users/{id}", dbtype.RoleViewer, s.handleUserGet())
	v1("PATCH", "/users/{id}", dbtype.RoleAdmin, s.handleUserPatch())
	v1("DELETE", "/users/{id}", dbtype.RoleAdmin, s.handleUserDelete())

	v1("GET", "/api-keys", dbtype.RoleAdmin, s.handleAPIKeyList())
	v1("POST", "/api-keys", dbtype.RoleAdmin, s.handleAPIKeyCreate())
	v1("GET", "/api-keys/{id}", dbtype.RoleAdmin, s.handleAPIKeyGet())
	v1("DELETE", "/api-keys/{id}", dbtype.RoleAdmin, s.handleAPIKeyDelete())

	// Exports and /v1/admin need the platform pool, which also runs the
	// background jobs that write exports.
	if s.platformPool != nil {
		v1("POST", "/exports", dbtype.RoleAdmin, s.handleExportCreate())
		v1("GET", "/exports", dbtype.RoleAdmin, s.handleExportList())
		v1("GET", "/exports/{id}", dbtype.RoleAdmin, s.handleExportGet())
		v1("DELETE", "/exports/{id}", dbtype.RoleAdmin, s.handleExportDelete())
		v1("GET", "/exports/{id}/download", dbtype.RoleAdmin, s.handleExportDownload())
		s.adminRoutes(mux) // /v1/admin/…, platform admin keys only (admin.go)
	}
}

// scopedHandler is a /v1 handler. Its statements run through exec, which
// its route chose (routes): it never reaches for a pool itself, so it cannot
// commit outside the unit of work it was given
// (TestHandlersRunThroughTheirExecutor).
type scopedHandler func(w http.ResponseWriter, r *http.Request, exec db.Executor)

// scoped runs h with the request's scope: each of its units of work in a
// round trip (db.One) or transaction (db.Tx) of its own.
func (s *server) scoped(h scopedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, db.Scoped(s.tenantPool(r), s.scope(r)))
	})
}

// resourceID reads the {id} of a single resource and checks the request's
// conditional headers (etag.go), answering 400 itself.
func resourceID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, ok := pathID(w, r)
	return id, ok && conditionalHeadersValid(w, r)
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
