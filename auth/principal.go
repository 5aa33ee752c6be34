package auth

import (
	"context"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
)

// Principal is who a request runs as, once its credential has been verified.
type Principal struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Role     db.Role
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

// rank orders the client roles: each one may do everything the roles below it may.
func rank(r db.Role) int {
	switch r {
	case db.RoleAdmin:
		return 3
	case db.RoleMember:
		return 2
	case db.RoleViewer:
		return 1
	}
	return 0
}

// ClientRole reports whether r is a role a client can hold (not RoleAuth).
func ClientRole(r db.Role) bool { return rank(r) > 0 }

// Allows reports whether role may do what needs at least min.
func Allows(role, min db.Role) bool { return rank(role) > 0 && rank(role) >= rank(min) }

// lesser is the weaker of two roles: a key or token never grants more than
// its user currently has.
func lesser(a, b db.Role) db.Role {
	if rank(a) <= rank(b) {
		return a
	}
	return b
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's principal; ok is false when there is none.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
