package httpapi_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
)

type jwtKeys struct {
	hmac []byte
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
}

func newJWTKeys(t *testing.T) jwtKeys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return jwtKeys{hmac: []byte(strings.Repeat("s", 32)), rsa: rk, ec: ek}
}

// setupJWT serves with bearer tokens enabled (every algorithm) next to API keys.
func setupJWT(t *testing.T, keys jwtKeys) *testBundle {
	t.Helper()
	// The public keys go through the PEM parser serve uses.
	var pemData []byte
	for _, pub := range []crypto.PublicKey{&keys.rsa.PublicKey, &keys.ec.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		require.NoError(t, err)
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	pubs, err := auth.ParsePublicKeys(pemData)
	require.NoError(t, err)
	return setup(t, func(c *httpapi.Config) {
		authn, err := auth.New(auth.Config{Pool: c.Pool, Tenants: c.Resolver, JWT: &auth.JWTConfig{
			HMACSecret: keys.hmac, PublicKeys: pubs, Issuer: "https://idp.example", Audience: "rowfence",
		}})
		require.NoError(t, err)
		c.Auth = authn
	})
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func TestJWTBearerTokens(t *testing.T) {
	t.Parallel()
	keys := newJWTKeys(t)
	b := setupJWT(t, keys)
	now := time.Now()
	claims := func(over map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.example", "aud": "rowfence", "sub": b.users["acme"].String(),
			"tenant_id": b.acme.String(), "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}

	// Each algorithm, and the tenant by slug as well as by id.
	for name, tok := range map[string]string{
		"HS256":          sign(t, jwt.SigningMethodHS256, keys.hmac, claims(nil)),
		"RS256":          sign(t, jwt.SigningMethodRS256, keys.rsa, claims(nil)),
		"ES256":          sign(t, jwt.SigningMethodES256, keys.ec, claims(nil)),
		"tenant by slug": sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"tenant_id": "acme"})),
		"audience list":  sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"aud": []string{"other", "rowfence"}})),
	} {
		me := b.call(t, "GET", "/v1/me", "acme", "", bearer(tok)...)
		require.Equal(t, 200, me.status, "%s: %s", name, me.raw)
		require.Equal(t, "jwt", me.body["credential"])
		require.Equal(t, "admin", me.body["role"], "no role claim: the user's own role")
		require.NotContains(t, me.body, "key_id")
	}

	// The role claim can lower the user's role, never raise it.
	viewerUser := b.call(t, "POST", "/v1/users", "acme", `{"name":"V","email":"v@example.com","role":"viewer"}`).requireStatus(t, 201).body["id"].(string)
	asViewer := sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"sub": viewerUser, "role": "admin"}))
	require.Equal(t, "viewer", b.call(t, "GET", "/v1/me", "acme", "", bearer(asViewer)...).requireStatus(t, 200).body["role"])
	b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`, bearer(asViewer)...).requireStatus(t, 403)
	lowered := sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"role": "viewer"}))
	b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`, bearer(lowered)...).requireStatus(t, 403)

	// A valid token for acme naming globex: 403, like an API key.
	r := b.call(t, "GET", "/v1/products", "globex", "", bearer(sign(t, jwt.SigningMethodHS256, keys.hmac, claims(nil)))...).requireStatus(t, 403)
	require.Equal(t, "tenant-mismatch", r.problemType(t))

	rsaPub := x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	for name, tok := range map[string]string{
		"forged signature": sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), claims(nil)),
		"alg none":         none,
		"alg confusion":    sign(t, jwt.SigningMethodHS256, rsaPub, claims(nil)),
		"HS512":            sign(t, jwt.SigningMethodHS512, keys.hmac, claims(nil)),
		"wrong audience":   sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"aud": "someone-else"})),
		"no audience":      sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"aud": nil})),
		"wrong issuer":     sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"iss": "https://evil.example"})),
		"expired":          sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"exp": now.Add(-5 * time.Minute).Unix()})),
		"no exp":           sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"exp": nil})),
		"not yet valid":    sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})),
		"unknown user":     sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"sub": "7c1e0000-0000-4000-8000-000000000000"})),
		"globex's user":    sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"sub": b.users["globex"].String()})),
		"sub not a uuid":   sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"sub": "alice"})),
		"no tenant":        sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"tenant_id": nil})),
		"unknown tenant":   sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"tenant_id": "initech"})),
		"bad role":         sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"role": "owner"})),
		"ES256 by RSA key": strings.Join(strings.Split(sign(t, jwt.SigningMethodES256, keys.ec, claims(nil)), ".")[:2], ".") + "." + strings.Split(sign(t, jwt.SigningMethodRS256, keys.rsa, claims(nil)), ".")[2],
		"garbage":          "not.a.jwt",
	} {
		r := b.call(t, "GET", "/v1/me", "acme", "", bearer(tok)...)
		require.Equal(t, 401, r.status, "%s: %s", name, r.raw)
		require.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`, name)
	}

	// A token for a user deleted since is refused (the test server caches nothing).
	gone := b.call(t, "POST", "/v1/users", "acme", `{"name":"G","email":"g@example.com","role":"admin"}`).requireStatus(t, 201).body["id"].(string)
	tok := sign(t, jwt.SigningMethodHS256, keys.hmac, claims(map[string]any{"sub": gone}))
	b.call(t, "GET", "/v1/me", "acme", "", bearer(tok)...).requireStatus(t, 200)
	b.call(t, "DELETE", "/v1/users/"+gone, "acme", "").requireStatus(t, 204)
	b.call(t, "GET", "/v1/me", "acme", "", bearer(tok)...).requireStatus(t, 401)
}
