package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/tenancy"
)

// TenantHeader names the tenant of a request (a slug or a tenant UUID).
const TenantHeader = "X-Tenant-ID"

// requireTenant is where a request's tenant is decided. Until authentication
// lands, the header is trusted as it is (serve logs a warning saying so).
func (s *server) requireTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values(TenantHeader)
		switch {
		case len(values) == 0 || values[0] == "":
			writeProblem(w, r, probTenantRequired, "send the "+TenantHeader+" header with a tenant slug or tenant UUID")
			return
		case len(values) > 1:
			writeProblem(w, r, probTenantMalformed, "send exactly one "+TenantHeader+" header")
			return
		}
		key, err := tenancy.ParseKey(values[0])
		if err != nil {
			writeProblem(w, r, probTenantMalformed, err.Error())
			return
		}
		t, err := s.resolver.Resolve(r.Context(), key)
		switch {
		case errors.Is(err, tenancy.ErrUnknown):
			writeProblem(w, r, probTenantNotFound, "no tenant "+key.String())
			return
		case err != nil:
			s.dbError(w, r, err)
			return
		case t.Status == tenancy.StatusSuspended:
			writeProblem(w, r, probTenantSuspended, "tenant "+t.Slug+" is suspended")
			return
		case t.Status != tenancy.StatusActive:
			writeProblem(w, r, probForbidden, "tenant "+t.Slug+" is not active")
			return
		}
		infoFrom(r).tenant = t.Slug
		// Tenant data must never be served from a shared cache to another tenant.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Add("Vary", TenantHeader)
		ctx := tenancy.WithTenant(r.Context(), t)
		if s.requestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.requestTimeout)
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// scope is the database scope of a request that passed requireTenant.
func (s *server) scope(r *http.Request) db.Scope {
	t, _ := tenancy.FromContext(r.Context())
	return db.Scope{TenantID: t.ID, StatementTimeout: s.statementTimeout}
}

// pathID reads the {id} path value; a malformed one is a 400.
func pathID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		writeProblem(w, r, probInvalidID, "the id in the path must be a UUID")
		return uuid.UUID{}, false
	}
	return id, true
}
