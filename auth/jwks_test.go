package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

// jwksServer is an identity provider's JWKS endpoint: a set the test
// changes, and a count of the fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]jwkset.JWKMarshal // by kid
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{keys: map[string]jwkset.JWKMarshal{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
		for _, k := range s.keys {
			set.Keys = append(set.Keys, k)
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

// publish adds the public half of key to the set as kid, declaring alg.
func (s *jwksServer) publish(t *testing.T, kid string, alg jwkset.ALG, key crypto.Signer) {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	require.NoError(t, err)
	s.mu.Lock()
	s.keys[kid] = jwk.Marshal()
	s.mu.Unlock()
}

func (s *jwksServer) remove(kid string) {
	s.mu.Lock()
	delete(s.keys, kid)
	s.mu.Unlock()
}

// jwksFixture is a database with tenants acme and globex, each with an
// admin, and an identity provider.
type jwksFixture struct {
	admin, app      *pgxpool.Pool
	resolver        *tenancy.Resolver
	acme, globex    uuid.UUID
	acmeAdmin       uuid.UUID
	idp             *jwksServer
	rsaKey, rsaKey2 *rsa.PrivateKey
	ecKey           *ecdsa.PrivateKey
}

func newJWKSFixture(t *testing.T) *jwksFixture {
	t.Helper()
	ctx := context.Background()
	tdb := pgtest.New(t)
	f := &jwksFixture{admin: tdb.AdminPool(t), app: tdb.AppPool(t, 4), acme: uuid.New(), globex: uuid.New(), idp: newJWKSServer(t)}
	f.resolver = tenancy.NewResolver(f.app, 0)
	for slug, id := range map[string]uuid.UUID{"acme": f.acme, "globex": f.globex} {
		require.NoError(t, db.Tx(ctx, f.admin, db.Scope{TenantID: id, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
			if _, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: id, Slug: slug, Name: slug}); err != nil {
				return err
			}
			u, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "Admin", Email: "admin@" + slug + ".example", Role: "admin"})
			if slug == "acme" {
				f.acmeAdmin = u.ID
			}
			return err
		}))
	}
	var err error
	f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	f.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	f.idp.publish(t, "rsa-1", jwkset.AlgRS256, f.rsaKey)
	f.idp.publish(t, "ec-1", jwkset.AlgES256, f.ecKey)
	return f
}

func (f *jwksFixture) authenticator(t *testing.T, cfg JWTConfig) *Authenticator {
	t.Helper()
	cfg.JWKSURL, cfg.Issuer, cfg.Audience = f.idp.URL, "https://idp.example", "rowfence"
	a, err := New(Config{Pool: f.app, Tenants: f.resolver, JWT: &cfg}) // no cache: every token is verified
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a
}

// claims for a token of acme's admin; over replaces claims (nil deletes).
func (f *jwksFixture) claims(over map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"iss": "https://idp.example", "aud": "rowfence", "sub": f.acmeAdmin.String(),
		"tenant_id": f.acme.String(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func signKID(t *testing.T, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// Keys from a JWKS: RSA and EC sign-in; a rotation (a new kid) accepted
// after the refresh it causes; a made-up kid flood that does not reach the
// endpoint more than once per JWKSUnknownKIDInterval and is refused without
// waiting; and only the algorithm each key declares.
func TestJWKSKeysAndRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newJWKSFixture(t)
	a := f.authenticator(t, JWTConfig{JWKSRefreshInterval: time.Hour, JWKSUnknownKIDInterval: time.Hour})
	require.EqualValues(t, 1, f.idp.fetches.Load(), "fetched once at start")

	for name, tok := range map[string]string{
		"RS256": signKID(t, jwt.SigningMethodRS256, "rsa-1", f.rsaKey, f.claims(nil)),
		"ES256": signKID(t, jwt.SigningMethodES256, "ec-1", f.ecKey, f.claims(nil)),
	} {
		p, err := a.Authenticate(ctx, tok)
		require.NoError(t, err, name)
		require.Equal(t, Principal{TenantID: f.acme, UserID: f.acmeAdmin, Role: dbtype.RoleAdmin, Kind: KindJWT}, p, name)
	}

	// Refused whatever the set holds: the wrong algorithm for a key, none,
	// HMAC with the public key as a secret, no kid, a key of another kid.
	rsaPub := x509.MarshalPKCS1PublicKey(&f.rsaKey.PublicKey)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	for name, tok := range map[string]string{
		"alg none":           none,
		"alg confusion":      signKID(t, jwt.SigningMethodHS256, "rsa-1", rsaPub, f.claims(nil)),
		"RS512 on RS256 key": signKID(t, jwt.SigningMethodRS512, "rsa-1", f.rsaKey, f.claims(nil)),
		"PS256 on RS256 key": signKID(t, jwt.SigningMethodPS256, "rsa-1", f.rsaKey, f.claims(nil)),
		"no kid":             signKID(t, jwt.SigningMethodRS256, "", f.rsaKey, f.claims(nil)),
		"kid of the EC key":  signKID(t, jwt.SigningMethodRS256, "ec-1", f.rsaKey, f.claims(nil)),
		"unpublished key":    signKID(t, jwt.SigningMethodRS256, "rsa-1", f.rsaKey2, f.claims(nil)),
	} {
		_, err := a.Authenticate(ctx, tok)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	require.EqualValues(t, 1, f.idp.fetches.Load(), "known kids cost no fetch")

	// Rotation: the provider publishes rsa-2 and signs with it; the first
	// token naming it makes the one fetch the limiter allows.
	f.idp.publish(t, "rsa-2", jwkset.AlgRS256, f.rsaKey2)
	rotated := signKID(t, jwt.SigningMethodRS256, "rsa-2", f.rsaKey2, f.claims(nil))
	_, err = a.Authenticate(ctx, rotated)
	require.NoError(t, err, "a new kid is accepted after a refresh")
	require.EqualValues(t, 2, f.idp.fetches.Load())

	// A flood of made-up kids: refused at once, and no fetch until the
	// interval has passed.
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				tok := signKID(t, jwt.SigningMethodRS256, "made-up-"+uuid.NewString(), f.rsaKey, f.claims(nil))
				_, err := a.Authenticate(ctx, tok)
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("flood %d/%d: %v", g, i, err)
				}
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 2, f.idp.fetches.Load(), "200 unknown kids fetched nothing more")
	require.Less(t, time.Since(start), 10*time.Second, "refused without waiting for the limiter")
	_, err = a.Authenticate(ctx, rotated)
	require.NoError(t, err, "the flood did not evict a good key")
}

// A key removed from the set verifies nothing after the next refresh: the
// bound is JWKSRefreshInterval (plus the Authenticator's CacheTTL, 0 here).
// An unknown kid's refresh also drops it, within JWKSUnknownKIDInterval.
func TestJWKSKeyRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newJWKSFixture(t)
	const refresh = 300 * time.Millisecond
	a := f.authenticator(t, JWTConfig{JWKSRefreshInterval: refresh, JWKSUnknownKIDInterval: time.Hour})
	tok := signKID(t, jwt.SigningMethodES256, "ec-1", f.ecKey, f.claims(nil))
	_, err := a.Authenticate(ctx, tok)
	require.NoError(t, err)

	f.idp.remove("ec-1")
	removed := time.Now()
	require.Eventually(t, func() bool {
		_, err := a.Authenticate(ctx, tok)
		return errors.Is(err, ErrInvalid)
	}, 10*refresh, refresh/10, "a removed key is refused after the refresh interval")
	require.Less(t, time.Since(removed), 3*refresh)
	// And it stays refused: the kid is unknown now, and the limiter allows
	// no fetch that would bring it back.
	_, err = a.Authenticate(ctx, tok)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = a.Authenticate(ctx, signKID(t, jwt.SigningMethodRS256, "rsa-1", f.rsaKey, f.claims(nil)))
	require.NoError(t, err, "the other keys stay")
}

// External subjects: the external_id in the token's tenant only; email only
// when verified; users created on first sign-in with the lesser of the
// configured role and the token's; claims refused by the text rules never
// reach SQL.
func TestJWKSSubjectMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newJWKSFixture(t)
	sign := func(over map[string]any) string {
		return signKID(t, jwt.SigningMethodES256, "ec-1", f.ecKey, f.claims(over))
	}
	// globex has a user with external_id idp|42; acme has none yet.
	var globex42 uuid.UUID
	require.NoError(t, db.Tx(ctx, f.app, db.Scope{TenantID: f.globex, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		sub := "idp|42"
		r, err := q.UserCreateOnSignIn(ctx, dbsqlc.UserCreateOnSignInParams{Name: "G", Email: "g@globex.example", Role: "member", ExternalID: &sub})
		globex42 = r.ID
		return err
	}))

	byExternal := f.authenticator(t, JWTConfig{SubjectMapping: SubjectExternalID})
	_, err := byExternal.Authenticate(ctx, sign(map[string]any{"sub": "idp|42"}))
	require.ErrorIs(t, err, ErrInvalid, "another tenant's external_id never matches")
	p, err := byExternal.Authenticate(ctx, sign(map[string]any{"sub": "idp|42", "tenant_id": "globex"}))
	require.NoError(t, err)
	require.Equal(t, Principal{TenantID: f.globex, UserID: globex42, Role: dbtype.RoleMember, Kind: KindJWT}, p)
	for name, sub := range map[string]any{
		"control character": "idp|\x00",
		"space":             "idp 42",
		"too long":          strings.Repeat("x", 256),
		"empty":             "",
		"not a string":      42,
		"a user id":         f.acmeAdmin.String(),
	} {
		_, err := byExternal.Authenticate(ctx, sign(map[string]any{"sub": sub}))
		require.ErrorIs(t, err, ErrInvalid, name)
	}

	// Created on first sign-in: the lesser of member (configured) and the
	// token's role; found again afterwards, not created twice.
	create := f.authenticator(t, JWTConfig{SubjectMapping: SubjectExternalID, AutoCreateRole: dbtype.RoleMember})
	newUser := map[string]any{"sub": "idp|42", "email": "Ann@acme.example", "email_verified": true, "name": "Ann", "role": "admin"}
	p, err = create.Authenticate(ctx, sign(newUser))
	require.NoError(t, err)
	require.Equal(t, dbtype.RoleMember, p.Role, "never above the configured role, whatever the token says")
	require.Equal(t, f.acme, p.TenantID)
	require.NotEqual(t, globex42, p.UserID, "the same subject in another tenant is another user")
	again, err := create.Authenticate(ctx, sign(newUser))
	require.NoError(t, err)
	require.Equal(t, p.UserID, again.UserID)
	u, err := db.One(ctx, f.app, db.Scope{TenantID: f.acme, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserGet(ctx, p.UserID)
	})
	require.NoError(t, err)
	require.Equal(t, "Ann", u.Name)
	require.Equal(t, "Ann@acme.example", u.Email)
	require.Equal(t, "idp|42", *u.ExternalID)
	require.Equal(t, dbtype.RoleMember, u.Role)

	asViewer, err := create.Authenticate(ctx, sign(map[string]any{"sub": "idp|7", "email": "v@acme.example",
		"email_verified": "true", "name": "\u202eevil", "role": "viewer"}))
	require.NoError(t, err)
	require.Equal(t, dbtype.RoleViewer, asViewer.Role, "never above the token's role claim")
	for name, over := range map[string]map[string]any{
		"no email":              {"sub": "idp|8"},
		"unverified email":      {"sub": "idp|8", "email": "x@acme.example", "email_verified": false},
		"email of another user": {"sub": "idp|8", "email": "ADMIN@acme.example", "email_verified": true},
		"email not an address":  {"sub": "idp|8", "email": "x", "email_verified": true},
	} {
		_, err := create.Authenticate(ctx, sign(over))
		require.ErrorIs(t, err, ErrInvalid, name)
	}
	n, err := db.One(ctx, f.app, db.Scope{TenantID: f.acme, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) (int, error) {
		users, err := q.UserList(ctx, dbsqlc.UserListParams{RowLimit: 100})
		return len(users), err
	})
	require.NoError(t, err)
	require.Equal(t, 3, n, "the admin, Ann and the viewer; nobody else was created")

	// By verified email, case-insensitively, in the token's tenant only.
	byEmail := f.authenticator(t, JWTConfig{SubjectMapping: SubjectEmail})
	p, err = byEmail.Authenticate(ctx, sign(map[string]any{"sub": "whatever", "email": "ADMIN@acme.example", "email_verified": true}))
	require.NoError(t, err)
	require.Equal(t, f.acmeAdmin, p.UserID)
	for name, over := range map[string]map[string]any{
		"unverified":             {"email": "admin@acme.example", "email_verified": false},
		"no email_verified":      {"email": "admin@acme.example"},
		"another tenant's email": {"email": "g@globex.example", "email_verified": true},
	} {
		_, err := byEmail.Authenticate(ctx, sign(over))
		require.ErrorIs(t, err, ErrInvalid, name)
	}
}

// The JWKS URL is https, or http to a loopback address; and one source of keys.
func TestJWKSConfigRefused(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://idp.example/jwks", "ftp://idp.example/jwks", "https://user:pw@idp.example/jwks", "/jwks", ""} {
		require.Error(t, CheckJWKSURL(u), u)
	}
	for _, u := range []string{"https://idp.example/jwks", "http://127.0.0.1:1/jwks", "http://[::1]/jwks", "http://localhost/jwks"} {
		require.NoError(t, CheckJWKSURL(u), u)
	}
	_, err := newJWTVerifier(JWTConfig{JWKSURL: "https://idp.example/jwks", HMACSecret: []byte(strings.Repeat("s", 32)), Issuer: "i", Audience: "a"})
	require.ErrorContains(t, err, "excludes")
	_, err = newJWTVerifier(JWTConfig{HMACSecret: []byte(strings.Repeat("s", 32)), Issuer: "i", Audience: "a", AutoCreateRole: dbtype.RoleMember})
	require.ErrorContains(t, err, "subject mapping")
}
