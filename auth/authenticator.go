package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/tenancy"
)

// Errors from Authenticate. All of them are a 401; anything else (the
// database did not answer) is not the client's fault.
var (
	// ErrNoCredential: the request carries no credential.
	ErrNoCredential = errors.New("no credential")
	// ErrInvalid: the credential is unknown, forged, revoked or expired, or
	// its user no longer exists. The detail (for the server's log only) says
	// which; the client is told no more than "invalid".
	ErrInvalid = errors.New("invalid credential")
)

// invalid wraps ErrInvalid with the reason, for logs.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Config configures an Authenticator.
type Config struct {
	// Pool is the app role's pool; lookups run under the credential's own
	// tenant with db.RoleAuth.
	Pool *pgxpool.Pool
	// CacheTTL bounds how long a verified credential (or a refusal) is
	// believed without asking the database again: revoking a key, deleting
	// a user or lowering a role takes effect within it. 0 disables caching.
	CacheTTL time.Duration
	// JWT enables bearer tokens; nil refuses them.
	JWT *JWTConfig
	// Tenants resolves a token's tenant claim (a UUID or a slug); required
	// with JWT.
	Tenants *tenancy.Resolver
	// StatementTimeout bounds the lookups; AcquireTimeout their wait for a
	// pooled connection (as for requests: past it, db.ErrPoolExhausted).
	StatementTimeout, AcquireTimeout time.Duration
}

// DefaultCacheTTL is the documented bound on revocation.
const DefaultCacheTTL = 5 * time.Second

// touchEvery limits last_used_at writes to one per key per interval.
const touchEvery = time.Minute

// maxCached bounds each cache; past it the cache starts over, so a flood of
// made-up credentials costs lookups, not memory.
const maxCached = 10000

// Authenticator verifies credentials, caching results for Config.CacheTTL
// so that a request's only database round trip is its own work.
type Authenticator struct {
	cfg Config
	jwt *jwtVerifier
	now func() time.Time

	mu     sync.Mutex
	keys   map[keyRef]keyEntry
	tokens map[[32]byte]tokenEntry
}

type keyRef struct{ tenant, id uuid.UUID }

type keyEntry struct {
	found     bool
	hash      []byte
	principal Principal
	expiresAt *time.Time // the key's own expiry
	revoked   bool
	until     time.Time // cache expiry
}

type tokenEntry struct {
	principal Principal
	err       error
	until     time.Time
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{cfg: cfg, now: time.Now, keys: map[keyRef]keyEntry{}, tokens: map[[32]byte]tokenEntry{}}
	if cfg.JWT != nil {
		if cfg.Tenants == nil {
			return nil, errors.New("auth: JWT needs a tenant resolver")
		}
		v, err := newJWTVerifier(*cfg.JWT)
		if err != nil {
			return nil, err
		}
		a.jwt = v
	}
	return a, nil
}

// JWTEnabled reports whether bearer tokens are accepted.
func (a *Authenticator) JWTEnabled() bool { return a.jwt != nil }

// BearerCredential extracts the credential of an Authorization header value:
// "Bearer <credential>" (the scheme in any case, RFC 9110). ok is false when
// the header is absent or uses another scheme.
func BearerCredential(header string) (cred string, ok bool) {
	scheme, cred, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimLeft(cred, " ")
	return cred, cred != ""
}

// Authenticate verifies a bearer credential: an API key (rfk_…) or, when
// configured, a JWT.
func (a *Authenticator) Authenticate(ctx context.Context, cred string) (Principal, error) {
	if cred == "" {
		return Principal{}, ErrNoCredential
	}
	if LooksLikeAPIKey(cred) {
		k, err := ParseAPIKey(cred)
		if err != nil {
			return Principal{}, invalid("malformed API key")
		}
		return a.apiKey(ctx, k)
	}
	if a.jwt == nil {
		return Principal{}, invalid("not an API key, and bearer tokens are not enabled")
	}
	return a.token(ctx, cred)
}

// Forget drops a key from this instance's cache at once (its revocation
// reaches other instances within CacheTTL).
func (a *Authenticator) Forget(tenant, keyID uuid.UUID) {
	a.mu.Lock()
	delete(a.keys, keyRef{tenant, keyID})
	a.mu.Unlock()
}

func (a *Authenticator) scope(tenant uuid.UUID) db.Scope {
	return db.Scope{TenantID: tenant, Role: db.RoleAuth, StatementTimeout: a.cfg.StatementTimeout, AcquireTimeout: a.cfg.AcquireTimeout}
}

func (a *Authenticator) apiKey(ctx context.Context, k APIKey) (Principal, error) {
	ref := keyRef{k.TenantID, k.ID}
	now := a.now()
	e, cached := a.cachedKey(ref, now)
	if !cached {
		row, err := db.One(ctx, a.cfg.Pool, a.scope(k.TenantID), func(q *db.Queries) (db.APIKeyAuthenticateRow, error) {
			return q.APIKeyAuthenticate(ctx, k.ID)
		})
		switch {
		case errors.Is(err, db.ErrNotFound):
			e = keyEntry{}
		case err != nil:
			return Principal{}, err
		default:
			e = keyEntry{found: true, hash: row.SecretHash, expiresAt: row.ExpiresAt, revoked: row.RevokedAt != nil,
				principal: Principal{TenantID: k.TenantID, UserID: row.UserID, KeyID: k.ID, Kind: KindAPIKey,
					Role: lesser(db.Role(row.Role), db.Role(row.UserRole))}}
		}
		a.storeKey(ref, e, now)
		if e.found && !e.revoked && subtle.ConstantTimeCompare(e.hash, k.Hash()) == 1 &&
			(row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > touchEvery) {
			if err := a.touch(ctx, k); err != nil {
				return Principal{}, err
			}
		}
	}
	switch {
	case !e.found:
		return Principal{}, invalid("unknown API key %s", k.ID)
	case subtle.ConstantTimeCompare(e.hash, k.Hash()) != 1:
		return Principal{}, invalid("wrong secret for API key %s", k.ID)
	case e.revoked:
		return Principal{}, invalid("API key %s is revoked", k.ID)
	case e.expiresAt != nil && !now.Before(*e.expiresAt):
		return Principal{}, invalid("API key %s expired", k.ID)
	case !ClientRole(e.principal.Role):
		return Principal{}, invalid("API key %s has no usable role", k.ID)
	}
	return e.principal, nil
}

// touch records that a key was used; at most once a minute per key, and
// only on a cache miss, so it adds a write per key per minute, not per request.
func (a *Authenticator) touch(ctx context.Context, k APIKey) error {
	_, err := db.One(ctx, a.cfg.Pool, a.scope(k.TenantID), func(q *db.Queries) (struct{}, error) {
		return struct{}{}, q.APIKeyTouch(ctx, k.ID)
	})
	return err
}

func (a *Authenticator) cachedKey(ref keyRef, now time.Time) (keyEntry, bool) {
	if a.cfg.CacheTTL <= 0 {
		return keyEntry{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.keys[ref]
	return e, ok && now.Before(e.until)
}

func (a *Authenticator) storeKey(ref keyRef, e keyEntry, now time.Time) {
	if a.cfg.CacheTTL <= 0 {
		return
	}
	e.until = now.Add(a.cfg.CacheTTL)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.keys) >= maxCached {
		clear(a.keys)
	}
	a.keys[ref] = e
}

func (a *Authenticator) token(ctx context.Context, raw string) (Principal, error) {
	sum := sha256.Sum256([]byte(raw))
	now := a.now()
	if a.cfg.CacheTTL > 0 {
		a.mu.Lock()
		e, ok := a.tokens[sum]
		a.mu.Unlock()
		if ok && now.Before(e.until) {
			return e.principal, e.err
		}
	}
	tc, err := a.jwt.verify(raw)
	if err != nil {
		// Not cached: a bad signature costs CPU only, and caching would let
		// made-up tokens crowd out good ones.
		return Principal{}, invalid("%v", err)
	}
	p, err := a.tokenPrincipal(ctx, tc)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return Principal{}, err
	}
	if a.cfg.CacheTTL > 0 {
		until := now.Add(a.cfg.CacheTTL)
		if tc.expires.Before(until) {
			until = tc.expires
		}
		a.mu.Lock()
		if len(a.tokens) >= maxCached {
			clear(a.tokens)
		}
		a.tokens[sum] = tokenEntry{principal: p, err: err, until: until}
		a.mu.Unlock()
	}
	return p, err
}

// tokenPrincipal checks what a verified token names against the database:
// its tenant must exist and its user must still exist in that tenant. The
// role is the token's, but never more than the user's own.
func (a *Authenticator) tokenPrincipal(ctx context.Context, tc tokenClaims) (Principal, error) {
	key, err := tenancy.ParseKey(tc.tenant)
	if err != nil {
		return Principal{}, invalid("the tenant claim %q is not a tenant slug or UUID", tc.tenant)
	}
	t, err := a.cfg.Tenants.Resolve(ctx, key)
	switch {
	case errors.Is(err, tenancy.ErrUnknown):
		return Principal{}, invalid("token for tenant %s, which does not exist", key)
	case err != nil:
		return Principal{}, err
	}
	tenant := t.ID
	userRole, err := db.One(ctx, a.cfg.Pool, a.scope(tenant), func(q *db.Queries) (string, error) {
		return q.UserRole(ctx, tc.user)
	})
	switch {
	case errors.Is(err, db.ErrNotFound):
		return Principal{}, invalid("token for user %s, who does not exist in tenant %s", tc.user, tenant)
	case err != nil:
		return Principal{}, err
	}
	role := db.Role(userRole)
	if tc.role != "" {
		role = lesser(tc.role, role)
	}
	return Principal{TenantID: tenant, UserID: tc.user, Role: role, Kind: KindJWT}, nil
}
