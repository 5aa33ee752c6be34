package auth

import (
	"context"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db/dbtype"
)

// Principal is who a request runs as, once its credential has been verified.
type Principal struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Role     dbtype.Role
	// KeyID is the API key used; uuid.Nil for a bearer token.
	KeyID uuid.UUID
	// Kind is "api_key" or "jwt".
	Kind string
}

// Credential kinds.
const (
	KindAPIKey = "api_key"
	KindJWT    = "jwt"
)

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return WithPrincipalRef(ctx, &p)
}

// WithPrincipalRef returns ctx carrying *p, which must not change
// afterwards. For a caller that keeps the principal anyway (the API's
// per-request record): no copy of it, one allocation less than
// WithPrincipal.
func WithPrincipalRef(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's principal; ok is false when there is none.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	if ref, _ := ctx.Value(ctxKey{}).(*Principal); ref != nil {
		return *ref, true
	}
	return Principal{}, false
}
