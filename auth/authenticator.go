package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/cache"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/invalidation"
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
	// ErrNotCached: AuthenticateIf or VerifyIf could not answer without
	// the database (their lookup said no).
	ErrNotCached = errors.New("credential not in the cache")
)

// invalid wraps ErrInvalid with the reason, for logs.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Config configures an Authenticator.
type Config struct {
	// Pool is the app role's pool; lookups run under the credential's own
	// tenant with dbtype.RoleAuth.
	Pool *pgxpool.Pool
	// CacheTTL bounds how long a verified credential (or a refusal) is
	// believed without asking the database again: revoking a key, deleting
	// a user or lowering a role takes effect within it on other instances
	// (at once on the one that made the change: Forget, ForgetUser). 0
	// disables caching.
	CacheTTL time.Duration
	// CacheSize bounds each credential cache's found entries (default
	// cache.DefaultSize); unknown credentials have a tenth of it, apart, so
	// they can never evict a good one (leak vector 13).
	CacheSize int
	// JWT enables bearer tokens; nil refuses them.
	JWT *JWTConfig
	// Tenants resolves a token's tenant claim (a UUID or a slug); required
	// with JWT.
	Tenants *tenancy.Resolver
	// PoolFor, when set, returns the app pool of the cell holding tenant
	// (package cells: a tenant's users and API keys live in its cell);
	// tenancy.ErrUnknown makes the credential invalid. nil: Pool holds
	// every tenant.
	PoolFor func(ctx context.Context, tenant uuid.UUID) (*pgxpool.Pool, error)
	// StatementTimeout bounds the lookups; AcquireTimeout their wait for a
	// pooled connection (as for requests: past it, db.ErrPoolExhausted).
	StatementTimeout, AcquireTimeout time.Duration
}

// DefaultCacheTTL is the documented bound on revocation.
const DefaultCacheTTL = 5 * time.Second

// touchEvery limits last_used_at writes to one per key per interval.
const touchEvery = time.Minute

// Authenticator verifies credentials, caching results for Config.CacheTTL
// so that a request's only database round trip is its own work. Its caches
// are bounded and cannot be flushed by made-up credentials (package cache).
type Authenticator struct {
	cfg Config
	jwt *jwtVerifier
	now func() time.Time

	keys *cache.Cache[keyRef, keyEntry]
	// keyRefresher renews the keys in use in batches (cache.Refresher).
	keyRefresher *cache.Refresher[keyRef, keyEntry, APIKey]
	// verified is OnVerified's function.
	verified atomic.Pointer[func(cred string)]
	tokens   *cache.Cache[[32]byte, tokenEntry] // by the token's SHA-256
}

type keyRef struct{ tenant, id uuid.UUID }

// keyEntry is a key found in the database; keys that were not are the
// cache's negative entries.
type keyEntry struct {
	hash      []byte
	principal Principal
	expiresAt *time.Time // the key's own expiry
	revoked   bool
}

// tokenEntry is a verified token whose tenant and user exist; tokens whose
// do not are the cache's negative entries.
type tokenEntry struct {
	principal Principal
	expires   time.Time // the token's exp: the entry ends then, if before the TTL
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) { return newAuthenticator(cfg, nil) }

// newAuthenticator is New with a test's clock (nil: time.Now).
func newAuthenticator(cfg Config, clock func() time.Time) (*Authenticator, error) {
	a := &Authenticator{cfg: cfg, now: time.Now}
	if clock != nil {
		a.now = clock
	}
	a.keys = cache.New[keyRef, keyEntry](cache.Options[keyEntry]{Name: "api_keys", TTL: cfg.CacheTTL,
		Size: cfg.CacheSize, NegativeSize: cfg.CacheSize / 10, Now: clock, Refresh: true})
	a.keyRefresher = cache.NewRefresher(a.keys, a.lookupKeys, cfg.StatementTimeout+cfg.AcquireTimeout)
	a.tokens = cache.New[[32]byte, tokenEntry](cache.Options[tokenEntry]{Name: "tokens", TTL: cfg.CacheTTL,
		Size: cfg.CacheSize, NegativeSize: cfg.CacheSize / 10, Now: clock,
		Deadline: func(e tokenEntry) time.Time { return e.expires }})
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

// OnVerified sets f to be told of each API key the database verified
// again in the background (cache.Refresher): a key in use reaches the
// database only there, and the failed-credential throttle vouches for the
// credentials the database verified (httpapi).
func (a *Authenticator) OnVerified(f func(cred string)) { a.verified.Store(&f) }

// Close stops the background work (the JWKS refresh). The Authenticator
// still answers afterwards, from the keys it has.
func (a *Authenticator) Close() {
	if a.jwt != nil {
		a.jwt.close()
	}
}

var (
	// ErrNoBearer: no Authorization header, or one of another scheme or
	// without a credential.
	ErrNoBearer = errors.New("no Authorization: Bearer credential")
	// ErrSeveralAuthorization: more than one Authorization header field.
	// Authorization is no list (RFC 9110, section 5.3: its value is one
	// credential), so which one was meant is unknown: none is used.
	ErrSeveralAuthorization = errors.New("more than one Authorization header")
)

// BearerCredential is the one reading of a request's Authorization header,
// for API keys, tokens, platform keys and the metrics token alike. fields
// are all its field values (http.Header.Values("Authorization")); there
// must be exactly one, "Bearer <credential>" with the scheme in any case
// (RFC 6750, section 2.1; RFC 9110, section 11.1). The credential is never
// empty and starts with no space. Errors: ErrNoBearer,
// ErrSeveralAuthorization.
func BearerCredential(fields []string) (cred string, err error) {
	switch len(fields) {
	case 0:
		return "", ErrNoBearer
	case 1:
	default:
		return "", ErrSeveralAuthorization
	}
	scheme, cred, found := strings.Cut(fields[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoBearer
	}
	if cred = strings.TrimLeft(cred, " "); cred == "" {
		return "", ErrNoBearer
	}
	return cred, nil
}

// Authenticate verifies a bearer credential: an API key (rfk_…) or, when
// configured, a JWT.
func (a *Authenticator) Authenticate(ctx context.Context, cred string) (Principal, error) {
	return a.authenticate(ctx, cred, always)
}

// AuthenticateIf is Authenticate asking the database (and verifying a
// token's signature) only when the cache cannot answer and lookup, asked
// then, allows it; otherwise it returns ErrNotCached. The credential
// throttle decides there, so that a cached credential costs no look at it.
func (a *Authenticator) AuthenticateIf(ctx context.Context, cred string, lookup func() bool) (Principal, error) {
	return a.authenticate(ctx, cred, lookup)
}

func always() bool { return true }

func (a *Authenticator) authenticate(ctx context.Context, cred string, lookup func() bool) (Principal, error) {
	if cred == "" {
		return Principal{}, ErrNoCredential
	}
	if LooksLikeAPIKey(cred) {
		k, err := ParseAPIKey(cred)
		if err != nil {
			return Principal{}, invalid("malformed API key")
		}
		return a.apiKey(ctx, k, lookup)
	}
	if a.jwt == nil {
		return Principal{}, invalid("not an API key, and bearer tokens are not enabled")
	}
	return a.token(ctx, cred, lookup)
}

// Forget drops a key from this instance's cache at once (its revocation
// reaches other instances within CacheTTL).
func (a *Authenticator) Forget(tenant, keyID uuid.UUID) {
	a.keys.Delete(keyRef{tenant, keyID})
}

// ForgetUser drops every cached credential of a user (API keys and tokens)
// at once, so that a change of the user's role, or their deletion, holds on
// this instance from the next request (other instances: within CacheTTL).
func (a *Authenticator) ForgetUser(tenant, user uuid.UUID) {
	a.keys.DeleteFunc(func(_ keyRef, e keyEntry) bool {
		return e.principal.TenantID == tenant && e.principal.UserID == user
	})
	a.tokens.DeleteFunc(func(_ [32]byte, e tokenEntry) bool {
		return e.principal.TenantID == tenant && e.principal.UserID == user
	})
}

// ForgetTenants drops every cached credential of these tenants (an
// invalidation.Cache: the database announced a change to their keys or
// users).
func (a *Authenticator) ForgetTenants(tenants map[uuid.UUID]struct{}) {
	a.keys.DeleteFunc(func(_ keyRef, e keyEntry) bool { _, ok := tenants[e.principal.TenantID]; return ok })
	a.tokens.DeleteFunc(func(_ [32]byte, e tokenEntry) bool { _, ok := tenants[e.principal.TenantID]; return ok })
}

// ForgetAll drops every cached credential (an invalidation.Cache).
func (a *Authenticator) ForgetAll() {
	a.keys.DeleteAll()
	a.tokens.DeleteAll()
}

// Listening keeps verified credentials for invalidation.ExtendedTTL while
// every change is heard, and for CacheTTL otherwise (an
// invalidation.Cache).
func (a *Authenticator) Listening(live bool) {
	ttl := invalidation.TTL(a.cfg.CacheTTL, live)
	a.keys.SetTTL(ttl)
	a.tokens.SetTTL(ttl)
}

// Caches are the authenticator's caches, for metrics.
func (a *Authenticator) Caches() []cache.Observable {
	return []cache.Observable{a.keys, a.tokens}
}

// pool is the app pool of tenant's cell (Config.PoolFor). Errors:
// tenancy.ErrUnknown, and those of the tenant lookup.
func (a *Authenticator) pool(ctx context.Context, tenant uuid.UUID) (*pgxpool.Pool, error) {
	if a.cfg.PoolFor == nil {
		return a.cfg.Pool, nil
	}
	return a.cfg.PoolFor(ctx, tenant)
}

// one is db.One on the app pool of tenant's cell.
func one[T any](ctx context.Context, a *Authenticator, tenant uuid.UUID, s db.Scope, fn func(q *dbsqlc.Queries) (T, error)) (T, error) {
	pool, err := a.pool(ctx, tenant)
	if err != nil {
		var zero T
		return zero, err
	}
	return db.One(ctx, pool, s, fn)
}

func (a *Authenticator) scope(tenant uuid.UUID) db.Scope {
	return db.Scope{TenantID: tenant, Role: dbtype.RoleAuth, StatementTimeout: a.cfg.StatementTimeout, AcquireTimeout: a.cfg.AcquireTimeout}
}

func (a *Authenticator) apiKey(ctx context.Context, k APIKey, lookup func() bool) (Principal, error) {
	ref := keyRef{k.TenantID, k.ID}
	now := a.now()
	hash := k.Hash() // SHA-256 of the secret, compared in constant time below
	e, res := a.keys.Get(ref)
	if res == cache.Miss {
		if !lookup() {
			return Principal{}, ErrNotCached
		}
		ticket := a.keys.Ticket()
		found, ok, err := a.lookupKey(ctx, k, hash)
		switch {
		case err != nil:
			return Principal{}, err
		case !ok:
			a.keys.SetAbsent(ticket, ref)
			res = cache.Absent
		default:
			e = found
			a.keys.Set(ticket, ref, e)
			res = cache.Hit
		}
	}
	switch {
	case res == cache.Absent:
		return Principal{}, invalid("unknown API key %s", k.ID)
	case subtle.ConstantTimeCompare(e.hash, hash) != 1:
		return Principal{}, invalid("wrong secret for API key %s", k.ID)
	case e.revoked:
		return Principal{}, invalid("API key %s is revoked", k.ID)
	case e.expiresAt != nil && !now.Before(*e.expiresAt):
		return Principal{}, invalid("API key %s expired", k.ID)
	case !e.principal.Role.Client():
		return Principal{}, invalid("API key %s has no usable role", k.ID)
	}
	// A key in use is looked up again in the background before its entry
	// expires, with others in one round trip, instead of in a request's
	// path (cache.Refresher): only after it passed, so that the lookup's
	// touch records a real use.
	a.keyRefresher.Refresh(ref, k)
	return e.principal, nil
}

// lookupKeys looks keys up in the background (a cache.LoadMany): per cell,
// one round trip for every key, each in its own transaction in its own
// tenant's scope (db.Each), and one more for the keys to touch. It tells
// OnVerified's function of each key the database verified. A key whose
// lookup failed has its Err (its entry expires at its time); the others'
// answers stand. Keys that db.Each did not run, because an earlier one in
// the round trip failed, are looked up once more in another.
func (a *Authenticator) lookupKeys(ctx context.Context, keys []APIKey) ([]cache.Loaded[keyEntry], error) {
	out := make([]cache.Loaded[keyEntry], len(keys))
	byPool := map[*pgxpool.Pool][]int{}
	for i, k := range keys {
		pool, err := a.pool(ctx, k.TenantID)
		switch {
		case errors.Is(err, tenancy.ErrUnknown):
			continue // not found
		case err != nil:
			out[i].Err = err
			continue
		}
		byPool[pool] = append(byPool[pool], i)
	}
	for pool, idx := range byPool {
		var touch []int
		for attempt := 0; len(idx) > 0 && attempt < 2; attempt++ {
			rows, errs, _ := db.Each(ctx, pool, a.scopes(keys, idx), func(j int, q *dbsqlc.Queries) (dbsqlc.APIKeyAuthenticateRow, error) {
				return q.APIKeyAuthenticate(ctx, keys[idx[j]].ID)
			})
			var again []int
			for j, i := range idx {
				switch {
				case errors.Is(errs[j], db.ErrNotRun):
					again = append(again, i)
					out[i].Err = errs[j]
					continue
				case errors.Is(errs[j], db.ErrNotFound):
					continue
				case errs[j] != nil:
					out[i].Err = errs[j]
					continue
				}
				e, verified, due := a.keyEntry(keys[i], keys[i].Hash(), rows[j])
				out[i] = cache.Loaded[keyEntry]{Value: e, Found: true}
				if verified {
					if f := a.verified.Load(); f != nil {
						(*f)(keys[i].String())
					}
				}
				if due {
					touch = append(touch, i)
				}
			}
			idx = again
		}
		if len(touch) > 0 {
			// A failed touch costs nothing but a later last_used_at.
			_, _, _ = db.Each(ctx, pool, a.scopes(keys, touch), func(j int, q *dbsqlc.Queries) (struct{}, error) {
				return struct{}{}, q.APIKeyTouch(ctx, keys[touch[j]].ID)
			})
		}
	}
	return out, nil
}

// scopes are the lookup scopes of keys[idx[0]], keys[idx[1]], ...
func (a *Authenticator) scopes(keys []APIKey, idx []int) []db.Scope {
	s := make([]db.Scope, len(idx))
	for j, i := range idx {
		s[j] = a.scope(keys[i].TenantID)
	}
	return s
}

// lookupKey reads key k from the database (found false: no such key), and
// touches it when hash is its secret's and it was last used over
// touchEvery ago.
func (a *Authenticator) lookupKey(ctx context.Context, k APIKey, hash []byte) (e keyEntry, found bool, err error) {
	row, err := one(ctx, a, k.TenantID, a.scope(k.TenantID), func(q *dbsqlc.Queries) (dbsqlc.APIKeyAuthenticateRow, error) {
		return q.APIKeyAuthenticate(ctx, k.ID)
	})
	switch {
	case errors.Is(err, db.ErrNotFound), errors.Is(err, tenancy.ErrUnknown):
		return keyEntry{}, false, nil
	case err != nil:
		return keyEntry{}, false, err
	}
	e, _, due := a.keyEntry(k, hash, row)
	if due {
		if err := a.touch(ctx, k); err != nil {
			return keyEntry{}, false, err
		}
	}
	return e, true, nil
}

// keyEntry is what the cache keeps of key k's row; verified says whether
// hash is its secret's and the key is not revoked, due whether it should be
// touched (verified, and last used over touchEvery ago).
func (a *Authenticator) keyEntry(k APIKey, hash []byte, row dbsqlc.APIKeyAuthenticateRow) (e keyEntry, verified, due bool) {
	e = keyEntry{hash: row.SecretHash, expiresAt: row.ExpiresAt, revoked: row.RevokedAt != nil,
		principal: Principal{TenantID: k.TenantID, UserID: row.UserID, KeyID: k.ID, Kind: KindAPIKey,
			Role: row.Role.Lesser(row.UserRole)}}
	verified = !e.revoked && subtle.ConstantTimeCompare(e.hash, hash) == 1
	return e, verified, verified && (row.LastUsedAt == nil || a.now().Sub(*row.LastUsedAt) > touchEvery)
}

// touch records that a key was used; at most once a minute per key, and
// only on a cache miss, so it adds a write per key per minute, not per request.
func (a *Authenticator) touch(ctx context.Context, k APIKey) error {
	_, err := one(ctx, a, k.TenantID, a.scope(k.TenantID), func(q *dbsqlc.Queries) (struct{}, error) {
		return struct{}{}, q.APIKeyTouch(ctx, k.ID)
	})
	return err
}

func (a *Authenticator) token(ctx context.Context, raw string, lookup func() bool) (Principal, error) {
	sum := sha256.Sum256([]byte(raw))
	switch e, res := a.tokens.Get(sum); res {
	case cache.Hit:
		return e.principal, nil
	case cache.Absent:
		return Principal{}, invalid("token for a tenant or user that does not exist (cached)")
	}
	if !lookup() {
		return Principal{}, ErrNotCached
	}
	tc, err := a.jwt.verify(ctx, raw)
	if err != nil {
		// Not cached: a bad signature costs CPU only, and made-up tokens
		// must not take the cache's room.
		return Principal{}, invalid("%v", err)
	}
	ticket := a.tokens.Ticket()
	p, err := a.tokenPrincipal(ctx, tc)
	switch {
	case errors.Is(err, ErrInvalid):
		a.tokens.SetAbsent(ticket, sum)
	case err == nil:
		a.tokens.Set(ticket, sum, tokenEntry{principal: p, expires: tc.expires})
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
	user, role, err := a.tokenUser(ctx, tenant, tc)
	switch {
	case errors.Is(err, db.ErrNotFound) && a.jwt.cfg.AutoCreateRole != "":
		user, role, err = a.createUser(ctx, tenant, tc)
	case errors.Is(err, db.ErrNotFound):
		return Principal{}, invalid("token for user %s, who does not exist in tenant %s", tc.userText(), tenant)
	}
	if err != nil {
		return Principal{}, err
	}
	if tc.role != "" {
		role = tc.role.Lesser(role)
	}
	return Principal{TenantID: tenant, UserID: user, Role: role, Kind: KindJWT}, nil
}

// tokenUser finds the user a token names, in its tenant only (the
// credential check's scope: the tenant policy bounds the lookup, so another
// tenant's external_id or email matches nothing). Errors: db.ErrNotFound.
func (a *Authenticator) tokenUser(ctx context.Context, tenant uuid.UUID, tc tokenClaims) (uuid.UUID, dbtype.Role, error) {
	type found struct {
		id   uuid.UUID
		role dbtype.Role
	}
	f, err := one(ctx, a, tenant, a.scope(tenant), func(q *dbsqlc.Queries) (found, error) {
		switch a.jwt.cfg.SubjectMapping {
		case SubjectExternalID:
			r, err := q.UserByExternalID(ctx, &tc.subject)
			return found{r.ID, r.Role}, err
		case SubjectEmail:
			r, err := q.UserByVerifiedEmail(ctx, tc.subject)
			return found{r.ID, r.Role}, err
		}
		role, err := q.UserRole(ctx, tc.user)
		return found{tc.user, role}, err
	})
	return f.id, f.role, err
}

// createUser creates the user a token names on its first sign-in, with
// JWTConfig.AutoCreateRole or the token's role claim, whichever is less.
// It runs as app.role admin in the token's tenant, for this one INSERT:
// the users policies admit INSERT under admin only (00010), and the
// credential check ('auth') stays read-only. A conflict (a concurrent first
// sign-in, or another user holding the email) inserts nothing; the subject
// is then looked up again, and an email held by a user of another
// external_id names nobody: it is refused, never linked.
func (a *Authenticator) createUser(ctx context.Context, tenant uuid.UUID, tc tokenClaims) (uuid.UUID, dbtype.Role, error) {
	if tc.email == "" {
		return uuid.Nil, "", invalid("token for a new user without a verified email claim; not created")
	}
	role := a.jwt.cfg.AutoCreateRole
	if tc.role != "" {
		role = tc.role.Lesser(role)
	}
	name := tc.name
	if name == "" {
		name = tc.email
	}
	arg := dbsqlc.UserCreateOnSignInParams{Name: name, Email: tc.email, Role: role}
	if a.jwt.cfg.SubjectMapping == SubjectExternalID {
		arg.ExternalID = &tc.subject
	}
	admin := a.scope(tenant)
	admin.Role = dbtype.RoleAdmin
	row, err := one(ctx, a, tenant, admin, func(q *dbsqlc.Queries) (dbsqlc.UserCreateOnSignInRow, error) {
		return q.UserCreateOnSignIn(ctx, arg)
	})
	if err == nil {
		return row.ID, row.Role, nil
	}
	if !errors.Is(err, db.ErrNotFound) {
		return uuid.Nil, "", err
	}
	user, role, err := a.tokenUser(ctx, tenant, tc)
	if errors.Is(err, db.ErrNotFound) {
		return uuid.Nil, "", invalid("token for a new user whose email another user of tenant %s has; not created", tenant)
	}
	return user, role, err
}

// userText names the token's user for the server's log.
func (tc tokenClaims) userText() string {
	if tc.subject != "" {
		return tc.subject
	}
	return tc.user.String()
}
