package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// TenantHeader names the tenant of a request in header mode (a slug or a
// tenant UUID).
const TenantHeader = "X-Tenant-ID"

// TenantMode is how a request names its tenant. Whatever it names must be
// the credential's own tenant.
type TenantMode string

const (
	// ModeHeader: the X-Tenant-ID header (the default).
	ModeHeader TenantMode = "header"
	// ModeSubdomain: the host's first label, {slug}.<BaseDomain>.
	ModeSubdomain TenantMode = "subdomain"
	// ModePath: a path prefix, /t/{slug}/v1/….
	ModePath TenantMode = "path"
	// ModeToken: the credential's tenant alone; an X-Tenant-ID header, if
	// sent anyway, must still match.
	ModeToken TenantMode = "token"
)

// ParseTenantMode reads a TENANT_MODE value.
func ParseTenantMode(s string) (TenantMode, error) {
	switch m := TenantMode(s); m {
	case ModeHeader, ModeSubdomain, ModePath, ModeToken:
		return m, nil
	case "":
		return ModeHeader, nil
	}
	return "", errors.New("tenant mode must be header, subdomain, path or token, not " + s)
}

// authenticate is where a request's tenant and role are decided, in this
// order: a credential must be present (401), the tenant the request names
// must be well-formed (400), the client address must not be throttled for
// failed credentials unless the cache vouches for this one (429), the
// credential must be valid (401), it must
// belong to the named tenant (403, and the same 403 whether or not the named
// tenant exists: nothing about it is looked up), the tenant must be active
// (403), within its rate limit and concurrency cap (429), and the
// credential's role must allow the route (403). Only then does the handler
// run, with a db.Scope carrying that tenant and role.
func (s *server) authenticate(min dbtype.Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Tenant data must never be served from a shared cache, to anyone.
		h := w.Header()
		h[hdrCacheControl] = noStore
		if s.mode == ModeHeader || s.mode == ModeToken {
			addVary(h, varyAuthorizationTenant)
		} else {
			addVary(h, varyAuthorization)
		}
		cred, ok := bearer(w, r, realm, "API key or token")
		if !ok {
			return
		}
		named, namedOK := s.namedTenant(w, r)
		if !namedOK {
			return
		}
		c := s.credentialCheck(r, cred)
		p, err := s.auth.AuthenticateIf(r.Context(), cred, c.lookup)
		if s.checkedCredential(w, r, credentialKind(cred), &c, err) {
			return
		}
		switch {
		case errors.Is(err, auth.ErrInvalid) && s.archivedKey(r, cred):
			// An archived tenant's keys left the live tables with its rows,
			// so they no longer verify; the key's own tenant id says why.
			writeProblem(w, r, probTenantArchived, "the tenant of this API key is archived: its data is kept, and a platform operator restores it (rowfence tenant restore)")
			return
		case errors.Is(err, auth.ErrInvalid):
			infoFrom(r).authErr = err.Error()
			s.unauthorized(w, r, "invalid_token", "the credential is invalid, revoked or expired")
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		t, err := s.resolver.Resolve(r.Context(), tenancy.Key{ID: p.TenantID})
		switch {
		case errors.Is(err, tenancy.ErrUnknown):
			// The tenant went away after the credential was cached.
			s.unauthorized(w, r, "invalid_token", "the credential is invalid, revoked or expired")
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		if named != (tenancy.Key{}) && named.ID != t.ID && named.Slug != t.Slug {
			writeProblem(w, r, probTenantMismatch, "the credential is not valid for the tenant this request names")
			return
		}
		info := infoFrom(r)
		info.tenant, info.principal, info.authenticated, info.resolved = t.Slug, p, true, t
		ctx := r.Context()
		if t.Cell != "" { // a tenant outside the default cell (package cells)
			pool, err := s.cells.App(t) // cells.ErrNotConfigured: a 503
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			ctx = context.WithValue(ctx, cellPoolKey{}, pool)
		}
		switch {
		case t.Status == dbtype.TenantStatusSuspended:
			writeProblem(w, r, probTenantSuspended, "tenant "+t.Slug+" is suspended")
			return
		case t.Status == dbtype.TenantStatusArchived:
			// Not 404: its rows are not missing, they are in its archive.
			writeProblem(w, r, probTenantArchived, "tenant "+t.Slug+" is archived: its data is kept, and a platform operator restores it (rowfence tenant restore)")
			return
		case t.Status == dbtype.TenantStatusDeleting:
			writeProblem(w, r, probForbidden, "tenant "+t.Slug+" is being deleted")
			return
		case t.Status != dbtype.TenantStatusActive:
			writeProblem(w, r, probForbidden, "tenant "+t.Slug+" is not active")
			return
		}
		// Every authenticated request counts against its tenant's limits,
		// refused ones included.
		release, admitted := s.admit(w, r, t)
		if !admitted {
			return
		}
		defer release()
		if !s.skipRoleCheck && !p.Role.AtLeast(min) {
			writeProblem(w, r, probForbidden, "role "+string(p.Role)+" may not do this; it needs "+string(min)+" or above")
			return
		}
		ctx = auth.WithPrincipalRef(tenancy.WithTenantRef(ctx, &info.resolved), &info.principal)
		if s.requestTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.requestTimeout)
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// archivedKey reports whether cred, a credential that did not verify, is an
// API key whose embedded tenant is archived. Only a holder of one of the
// tenant's keys (or of its random 122-bit id) learns that it is archived;
// a slug is never enough (docs/SECURITY.md, tenant archives).
func (s *server) archivedKey(r *http.Request, cred string) bool {
	k, err := auth.ParseAPIKey(cred)
	if err != nil {
		return false
	}
	t, err := s.resolver.Resolve(r.Context(), tenancy.Key{ID: k.TenantID})
	return err == nil && t.Status == dbtype.TenantStatusArchived
}

// namedTenant reads the tenant the request names, per the server's mode.
// The zero Key (with ok) means the request names none, which only token
// mode allows.
func (s *server) namedTenant(w http.ResponseWriter, r *http.Request) (named tenancy.Key, ok bool) {
	var raw, where string
	switch s.mode {
	case ModeHeader, ModeToken:
		values := r.Header[hdrTenant]
		switch {
		case len(values) > 1:
			writeProblem(w, r, probTenantMalformed, "send at most one "+TenantHeader+" header")
			return tenancy.Key{}, false
		case len(values) == 0 && s.mode == ModeToken:
			return tenancy.Key{}, true
		case len(values) == 0 || values[0] == "":
			writeProblem(w, r, probTenantRequired, "send the "+TenantHeader+" header with a tenant slug or tenant UUID")
			return tenancy.Key{}, false
		}
		raw, where = values[0], "the "+TenantHeader+" header"
	case ModeSubdomain:
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		label, found := strings.CutSuffix(host, "."+s.baseDomain)
		if !found || label == "" || strings.Contains(label, ".") {
			writeProblem(w, r, probTenantRequired, "address the API as https://{tenant}."+s.baseDomain)
			return tenancy.Key{}, false
		}
		raw, where = label, "the host name"
	case ModePath:
		raw, where = r.PathValue("tenant"), "the /t/{tenant} path prefix"
	}
	key, err := tenancy.ParseKey(raw)
	if err != nil {
		writeProblem(w, r, probTenantMalformed, where+" must be a tenant slug or tenant UUID")
		return tenancy.Key{}, false
	}
	return key, true
}

// realm is the API's in its 401 challenges (RFC 6750, section 3).
const realm = "rowfence"

// unauthorized answers 401 with the API's challenge (bearer.go).
func (s *server) unauthorized(w http.ResponseWriter, r *http.Request, code, detail string) {
	challenge(w, r, realm, code, detail)
}

// admit applies the tenant's rate limit and its share of the server's
// slots, waiting in the tenant's queue for a slot when it must (up to the
// limiter's queue timeout, or until the client goes away), and answering
// itself when the request may not go on: 429 rate-limited over the rate,
// 429 concurrency-limited when the tenant's queue is full or its own
// requests held its share for the whole wait, 503 unavailable when the
// server's slots were all held by others. Every answer to an admitted or
// refused request carries the IETF RateLimit and RateLimit-Policy headers
// (draft-ietf-httpapi-ratelimit-headers) when the tenant has a rate limit.
func (s *server) admit(w http.ResponseWriter, r *http.Request, t tenancy.Tenant) (release func(), ok bool) {
	lim := s.limiter
	if t.Cell != "" {
		// The tenant's cell's own slots (cells.Cell.Limiter): another cell's
		// busy pool is no reason to wait.
		if c, ok := s.cells.Get(t.Cell); ok && c.Limiter != nil {
			lim = c.Limiter
		}
	}
	if lim == nil {
		return func() {}, true
	}
	d, release := lim.Acquire(r.Context(), t.ID, t.Limits)
	if d.Quota > 0 {
		setRateLimitHeaders(w.Header(), d)
	}
	if d.Queued {
		s.metrics.Queued(d.Waited, d.Reason)
	}
	if d.Allowed {
		return release, true
	}
	if d.Reason == ratelimit.ReasonCanceled {
		// The client went away (or its deadline passed); nobody reads this.
		writeProblem(w, r, probUnavailable, "request canceled")
		return nil, false
	}
	s.metrics.Rejected(d.Reason, t.Slug)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(d.RetryAfter))))
	switch d.Reason {
	case ratelimit.ReasonRate:
		writeProblem(w, r, probRateLimited, "tenant "+t.Slug+" is over its request rate; retry after the Retry-After seconds")
	case ratelimit.ReasonQueueFull:
		writeProblem(w, r, probConcurrencyLimited, "tenant "+t.Slug+" has as many requests waiting as it may; retry shortly")
	case ratelimit.ReasonOverloaded:
		writeProblem(w, r, probUnavailable, "the server is busy with other tenants' requests; retry shortly")
	default:
		writeProblem(w, r, probConcurrencyLimited, "tenant "+t.Slug+" has as many requests in progress as it may; retry shortly")
	}
	return nil, false
}

// setRateLimitHeaders sets RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers): the tenant's quota q per window w
// seconds, and r requests remaining until t seconds from now. Both values
// are cut from one string, with strconv rather than fmt: every answer
// carries them (2 allocations instead of 8).
func setRateLimitHeaders(h http.Header, d ratelimit.Decision) {
	var buf [96]byte // on the stack: only the string below is allocated
	b := buf[:0]
	b = append(b, `"tenant";q=`...)
	b = strconv.AppendInt(b, int64(d.Quota), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.Window)), 10)
	policy := len(b)
	b = append(b, `"tenant";r=`...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.Reset)), 10)
	s := string(b)
	// One slice for both values; capped, so that an Add to either copies.
	v := []string{s[:policy], s[policy:]}
	h[hdrRateLimitPolicy], h[hdrRateLimit] = v[0:1:1], v[1:2:2]
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// scope is the database scope of a request that passed authenticate: its
// tenant, its role, and the tenant's statement timeout (or the server's).
func (s *server) scope(r *http.Request) db.Scope {
	p, _ := auth.FromContext(r.Context())
	sc := db.Scope{TenantID: p.TenantID, Role: p.Role, StatementTimeout: s.statementTimeout, AcquireTimeout: s.acquireTimeout}
	if t, ok := tenancy.FromContext(r.Context()); ok && t.Limits.StatementTimeout > 0 {
		sc.StatementTimeout = t.Limits.StatementTimeout
	}
	return sc
}

// rows records what a request read and wrote, for the per-tenant metrics.
func (s *server) rows(r *http.Request, read, written int) {
	s.metrics.Rows(infoFrom(r).tenant, read, written)
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

// cellPoolKey carries the app pool of the request's tenant's cell, when it
// is not the default one.
type cellPoolKey struct{}

// tenantPool is the app pool the request's statements run on: its tenant's
// cell's, chosen once by authenticate (no round trip: the cell comes with
// the cached tenant), else the default cell's.
func (s *server) tenantPool(r *http.Request) *pgxpool.Pool {
	if p, ok := r.Context().Value(cellPoolKey{}).(*pgxpool.Pool); ok {
		return p
	}
	return s.pool
}
