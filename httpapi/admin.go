package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/tenancy"
	"github.com/rowfence/rowfence/textrule"
)

// Platform administration: /v1/admin/…, reached only with a platform admin
// key (rfp_…), never with a tenant's credential, and served through the
// rowfence_platform role's own pool, the one database path that sees across
// tenants (sql/migrations/00006_platform.sql; listed by the audit).

// tenantLimitsIO is a PATCH of a tenant's own limits: null clears one.
type tenantLimitsIO struct {
	RateLimit          optional[float64] `json:"rate_limit"`
	RateBurst          optional[int32]   `json:"rate_burst"`
	MaxConcurrency     optional[int32]   `json:"max_concurrency"`
	StatementTimeoutMs optional[int32]   `json:"statement_timeout_ms"`
}

// requirePlatform lets only a valid platform admin key through.
func (s *server) requirePlatform(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Add("Vary", "Authorization")
		cred, ok := bearer(w, r, realm, "platform admin key")
		if !ok {
			return
		}
		c := s.credentialCheck(r, cred)
		_, err := s.platform.VerifyIf(r.Context(), cred, c.lookup)
		if s.checkedCredential(w, r, credentialPlatformKey, &c, err) {
			return
		}
		if err != nil {
			if errors.Is(err, auth.ErrInvalid) {
				infoFrom(r).authErr = err.Error()
				s.unauthorized(w, r, "invalid_token", "not a valid platform admin key")
				return
			}
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) adminRoutes(mux interface {
	Handle(string, http.Handler)
}) {
	a := func(pattern string, h http.Handler) { mux.Handle(pattern, s.requirePlatform(h)) }
	a("GET /v1/admin/tenants", s.handleTenantList())
	a("POST /v1/admin/tenants", s.handleTenantCreate())
	a("GET /v1/admin/tenants/{id}", s.handleTenantGet())
	a("PATCH /v1/admin/tenants/{id}", s.handleTenantPatch())
	a("DELETE /v1/admin/tenants/{id}", s.handleTenantDelete())
	a("GET /v1/admin/cells", s.handleCellList())
	a("GET /v1/admin/placements", s.handlePlacementList())
	a("POST /v1/admin/tenants/{id}/move", s.handleTenantMove())
	a("GET /v1/admin/moves", s.handleMoveList())
	a("GET /v1/admin/moves/{id}", s.handleMoveGet())
	a("DELETE /v1/admin/moves/{id}", s.handleMoveCancel())
}

// tenantPosition is t's place in the tenant list (creation order).
func tenantPosition(t dbsqlc.Tenant, _ string) position {
	return position{CreatedAt: t.CreatedAt, ID: t.ID}
}

// handleTenantList: GET /v1/admin/tenants, every tenant. Its cursors are
// bound to no tenant (uuid.Nil).
func (s *server) handleTenantList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, ok := s.readList(w, r, uuid.Nil, "admin/tenants", nil, false, false)
		if !ok {
			return
		}
		rows, err := db.Unscoped(s.platformPool).TenantPage(r.Context(), dbsqlc.TenantPageParams{AfterCreatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		page := pageOf(l, rows, RenderTenant, tenantPosition)
		s.linkNext(w, r, l, page.NextCursor)
		encode(w, http.StatusOK, page)
	})
}

// adminTenant reads the {id} tenant, answering 400 or 404 itself.
func (s *server) adminTenant(w http.ResponseWriter, r *http.Request) (dbsqlc.Tenant, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return dbsqlc.Tenant{}, false
	}
	t, err := db.Unscoped(s.platformPool).TenantGet(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return dbsqlc.Tenant{}, false
	}
	return t, true
}

// handleTenantGet: GET /v1/admin/tenants/{id}.
func (s *server) handleTenantGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := s.adminTenant(w, r); ok {
			encode(w, http.StatusOK, RenderTenant(t))
		}
	})
}

// adminTenantCreateBody is POST /v1/admin/tenants: onboarding.
type adminTenantCreateBody struct {
	Slug       *string `json:"slug"`
	Name       *string `json:"name"`
	AdminEmail *string `json:"admin_email"`
	AdminName  *string `json:"admin_name"`
	// Cell places the tenant (package cells): a cell's name, or labels such
	// as "region=eu"; absent: the default cell.
	Cell *string `json:"cell"`
}

func (b adminTenantCreateBody) valid() fieldErrors {
	fe := fieldErrors{}
	if checkRequired(fe, "slug", b.Slug) && !tenancy.ValidSlug(*b.Slug) {
		fe.add("slug", "must be 3-63 characters of a-z, 0-9 and -, starting and ending with a letter or digit")
	}
	if checkRequired(fe, "name", b.Name) {
		checkText(fe, "name", *b.Name, textrule.TenantName)
	}
	if checkRequired(fe, "admin_email", b.AdminEmail) {
		checkText(fe, "admin_email", *b.AdminEmail, textrule.UserEmail)
	}
	if b.AdminName != nil {
		checkText(fe, "admin_name", *b.AdminName, textrule.UserName)
	}
	return fe
}

// handleTenantCreate: POST /v1/admin/tenants onboards a tenant, its first
// admin and that admin's first API key (lifecycle.Onboard).
func (s *server) handleTenantCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, ok := decodeValid[adminTenantCreateBody](w, r, "application/json")
		if !ok {
			return
		}
		t := lifecycle.Tenant{Slug: *in.Slug, Name: *in.Name, AdminEmail: *in.AdminEmail}
		if in.AdminName != nil {
			t.AdminName = *in.AdminName
		}
		placement := ""
		if in.Cell != nil {
			placement = *in.Cell
		}
		o, err := s.onboardInCell(r.Context(), placement, t)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", s.apiPath(r, "admin", "tenants", o.Tenant.ID.String()))
		encode(w, http.StatusCreated, RenderOnboarded(o))
	})
}

// adminTenantPatchBody is PATCH /v1/admin/tenants/{id}: rename, suspend or
// reactivate (which also cancels a pending deletion), and set or clear
// (null) the tenant's own limits.
type adminTenantPatchBody struct {
	Name   optional[string] `json:"name"`
	Status optional[string] `json:"status"`
	Limits *tenantLimitsIO  `json:"limits"`
}

func (b adminTenantPatchBody) valid() fieldErrors {
	fe := fieldErrors{}
	any := b.Limits != nil
	if checkPatch(fe, "name", b.Name) {
		any = true
		checkText(fe, "name", b.Name.Value, textrule.TenantName)
	}
	if checkPatch(fe, "status", b.Status) {
		any = true
		if st := dbtype.TenantStatus(b.Status.Value); st != dbtype.TenantStatusActive && st != dbtype.TenantStatusSuspended {
			fe.add("status", "must be active or suspended (DELETE marks a tenant for deletion)")
		}
	}
	if l := b.Limits; l != nil {
		if l.RateLimit.Set && !l.RateLimit.Null && !(l.RateLimit.Value > 0 && l.RateLimit.Value <= 1e6) {
			fe.add("limits.rate_limit", "must be above 0 and at most 1000000 requests per second, or null")
		}
		for _, c := range []struct {
			name   string
			v      optional[int32]
			lo, hi int32
		}{{"rate_burst", l.RateBurst, 1, 1000000}, {"max_concurrency", l.MaxConcurrency, 1, 10000}, {"statement_timeout_ms", l.StatementTimeoutMs, 1, 3600000}} {
			if c.v.Set && !c.v.Null && (c.v.Value < c.lo || c.v.Value > c.hi) {
				fe.add("limits."+c.name, "must be from "+strconv.Itoa(int(c.lo))+" to "+strconv.Itoa(int(c.hi))+", or null")
			}
		}
	}
	if !any && len(fe) == 0 {
		fe.add("", "send at least one of name, status, limits")
	}
	return fe
}

// merge applies a PATCH field to a current value: absent keeps, null clears.
func merge[T any](cur *T, o optional[T]) *T {
	switch {
	case !o.Set:
		return cur
	case o.Null:
		return nil
	default:
		v := o.Value
		return &v
	}
}

// handleTenantPatch: PATCH /v1/admin/tenants/{id}.
func (s *server) handleTenantPatch() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		in, ok := decodeValid[adminTenantPatchBody](w, r, "application/json", "application/merge-patch+json")
		if !ok {
			return
		}
		var t dbsqlc.Tenant
		err := db.UnscopedTx(r.Context(), s.platformPool, func(q *dbsqlc.Queries) error {
			// Read and change under the row's lock: concurrent PATCHes of
			// different limits do not undo each other.
			var err error
			if t, err = q.TenantGetForUpdate(r.Context(), id); err != nil {
				return err
			}
			if t.Status == dbtype.TenantStatusDeleting && in.Status.Set && dbtype.TenantStatus(in.Status.Value) != dbtype.TenantStatusActive {
				return lifecycle.ErrDeleting
			}
			if t.Status == dbtype.TenantStatusArchived && in.Status.Set {
				return lifecycle.ErrArchived // its rows are in its archive: only a restore changes it
			}
			if in.Name.Set || in.Status.Set {
				if t, err = q.TenantUpdate(r.Context(), dbsqlc.TenantUpdateParams{ID: t.ID, Name: in.Name.ptr(), Status: in.Status.ptr()}); err != nil {
					return err
				}
			}
			if l := in.Limits; l != nil {
				t, err = q.TenantSetLimits(r.Context(), dbsqlc.TenantSetLimitsParams{Slug: t.Slug,
					RateLimit: merge(t.RateLimit, l.RateLimit), RateBurst: merge(t.RateBurst, l.RateBurst),
					MaxConcurrency: merge(t.MaxConcurrency, l.MaxConcurrency), StatementTimeoutMs: merge(t.StatementTimeoutMs, l.StatementTimeoutMs)})
			}
			return err
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.resolver.Forget(t.ID, t.Slug)
		encode(w, http.StatusOK, RenderTenant(t))
	})
}

// handleTenantDelete: DELETE /v1/admin/tenants/{id} deletes a tenant and
// every row it owns now (204), or, with ?grace=<duration>, marks it for
// deletion after that long (202): its requests are refused at once, and the
// purge deletes it when the grace period is over unless it is reactivated
// first.
func (s *server) handleTenantDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.adminTenant(w, r)
		if !ok {
			return
		}
		var grace time.Duration
		for name, vs := range r.URL.Query() {
			if name != "grace" || len(vs) != 1 {
				writeProblem(w, r, probBadRequest, "DELETE takes one query parameter, grace (a duration such as 72h)")
				return
			}
			d, err := time.ParseDuration(vs[0])
			if err != nil || d < 0 || d > 365*24*time.Hour {
				writeProblem(w, r, probBadRequest, "grace must be a duration from 0s to 8760h, such as 72h")
				return
			}
			grace = d
		}
		defer s.resolver.Forget(t.ID, t.Slug)
		if grace == 0 {
			if err := s.deleteInCell(r.Context(), t); err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := lifecycle.Delete(r.Context(), s.platformPool, t.ID); err != nil {
				s.writeError(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		marked, err := lifecycle.SetStatus(r.Context(), s.platformPool, t.ID, dbtype.TenantStatusDeleting, grace)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		encode(w, http.StatusAccepted, RenderTenant(marked))
	})
}
