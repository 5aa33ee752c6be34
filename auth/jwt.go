package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/textrule"
)

// JWTConfig configures bearer tokens issued by an identity provider.
type JWTConfig struct {
	// HMACSecret enables HS256 (at least 32 bytes).
	HMACSecret []byte
	// PublicKeys enable RS256 (*rsa.PublicKey, at least 2048 bits) and
	// ES256 (*ecdsa.PublicKey on P-256).
	PublicKeys []crypto.PublicKey
	// JWKSURL takes the keys from an identity provider's JWK Set (RFC 7517,
	// section 5) instead: https://, or http:// to a loopback address
	// (CheckJWKSURL). Exclusive with HMACSecret and PublicKeys: one source
	// of keys, so that the provider's removal of a key ends its tokens.
	// Each key must declare its alg (one of RS256-512, PS256-512,
	// ES256-512, EdDSA) and each token must name its key by kid.
	JWKSURL string
	// JWKSRefreshInterval is how often the set is fetched again (default
	// DefaultJWKSRefreshInterval): a key removed from the set verifies
	// nothing after at most this plus the Authenticator's CacheTTL.
	JWKSRefreshInterval time.Duration
	// JWKSUnknownKIDInterval bounds the fetches caused by tokens naming a
	// kid the cached set lacks (a rotation, or made-up tokens): at most one
	// per interval (default DefaultJWKSUnknownKIDInterval).
	JWKSUnknownKIDInterval time.Duration
	// JWKSClient fetches the set (nil: a client with a 5 s timeout).
	JWKSClient *http.Client
	// SubjectMapping says how the token names its user: SubjectID (the
	// default), SubjectExternalID or SubjectEmail.
	SubjectMapping SubjectMapping
	// AutoCreateRole, when set, creates the user a token names but the
	// tenant lacks, on first sign-in, with this role or the token's role
	// claim, whichever is less. Needs SubjectExternalID or SubjectEmail,
	// and a verified email claim (the user's email). "" is off.
	AutoCreateRole dbtype.Role
	// Issuer and Audience must match the token's iss and aud; both required.
	Issuer, Audience string
	// Claims naming the tenant (its UUID or slug), the user (a user id of
	// that tenant) and the role (admin, member or viewer; optional: absent
	// means the user's own role).
	TenantClaim, UserClaim, RoleClaim string
	// Leeway tolerates clock skew on exp and nbf.
	Leeway time.Duration
}

// SubjectMapping is how a token's subject names a rowfence user.
type SubjectMapping string

// The subject mappings (JWT_SUBJECT_MAPPING).
const (
	// SubjectID: the user claim is the user's rowfence id.
	SubjectID SubjectMapping = "id"
	// SubjectExternalID: the user claim is the user's external_id
	// (textrule.ExternalID), matched within the token's tenant only.
	SubjectExternalID SubjectMapping = "external_id"
	// SubjectEmail: the OpenID Connect email claim, when email_verified is
	// true (OpenID Connect Core 1.0, section 5.1), is the user's email,
	// case-insensitively, within the token's tenant only. An unverified
	// address is anyone's to claim, so it names nobody.
	SubjectEmail SubjectMapping = "email"
)

// Valid reports whether m is one of the mappings.
func (m SubjectMapping) Valid() bool {
	return m == SubjectID || m == SubjectExternalID || m == SubjectEmail
}

// Defaults for the claim names and clock skew.
const (
	DefaultTenantClaim = "tenant_id"
	DefaultUserClaim   = "sub"
	DefaultRoleClaim   = "role"
	DefaultLeeway      = 30 * time.Second
)

// jwtVerifier checks signatures and registered claims; what the claims
// name is checked against the database by the Authenticator.
type jwtVerifier struct {
	cfg    JWTConfig
	parser *jwt.Parser
	rsa    jwt.VerificationKeySet
	ecdsa  jwt.VerificationKeySet
	jwks   *jwks // nil without JWKSURL
}

func newJWTVerifier(cfg JWTConfig) (*jwtVerifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("auth: JWT needs an issuer and an audience")
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = DefaultTenantClaim
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = DefaultUserClaim
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.SubjectMapping == "" {
		cfg.SubjectMapping = SubjectID
	}
	if !cfg.SubjectMapping.Valid() {
		return nil, fmt.Errorf("auth: unknown subject mapping %q; want id, external_id or email", cfg.SubjectMapping)
	}
	if cfg.AutoCreateRole != "" {
		if !cfg.AutoCreateRole.Client() {
			return nil, fmt.Errorf("auth: the auto-create role %q is not admin, member or viewer", cfg.AutoCreateRole)
		}
		if cfg.SubjectMapping == SubjectID {
			return nil, errors.New("auth: creating users on sign-in needs the external_id or email subject mapping (a new user's id is the database's)")
		}
	}
	v := &jwtVerifier{cfg: cfg}
	var methods []string
	if cfg.JWKSURL != "" {
		if len(cfg.HMACSecret) > 0 || len(cfg.PublicKeys) > 0 {
			return nil, errors.New("auth: a JWKS URL excludes the HS256 secret and the public key file")
		}
		s, err := newJWKS(cfg)
		if err != nil {
			return nil, err
		}
		v.jwks = s
		methods = jwksAlgorithms
	}
	if len(cfg.HMACSecret) > 0 {
		if len(cfg.HMACSecret) < 32 {
			return nil, errors.New("auth: the HS256 secret must be at least 32 bytes")
		}
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	for _, k := range cfg.PublicKeys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("auth: RSA key of %d bits; at least 2048 are needed", k.N.BitLen())
			}
			v.rsa.Keys = append(v.rsa.Keys, k)
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, errors.New("auth: only P-256 EC keys are supported (ES256)")
			}
			v.ecdsa.Keys = append(v.ecdsa.Keys, k)
		default:
			return nil, fmt.Errorf("auth: unsupported public key type %T", k)
		}
	}
	if len(v.rsa.Keys) > 0 {
		methods = append(methods, jwt.SigningMethodRS256.Alg())
	}
	if len(v.ecdsa.Keys) > 0 {
		methods = append(methods, jwt.SigningMethodES256.Alg())
	}
	if len(methods) == 0 {
		return nil, errors.New("auth: JWT needs an HS256 secret, a public key or a JWKS URL")
	}
	// Only the configured algorithms: "none" and algorithm confusion (an
	// RS256 public key used as an HS256 secret) are refused before any key
	// is chosen, and keyFor hands each algorithm only its own kind of key.
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	)
	return v, nil
}

// close stops the JWKS refresh, if any.
func (v *jwtVerifier) close() {
	if v.jwks != nil {
		v.jwks.close()
	}
}

func (v *jwtVerifier) keyFor(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case jwt.SigningMethodHS256.Alg():
		return v.cfg.HMACSecret, nil
	case jwt.SigningMethodRS256.Alg():
		return v.rsa, nil
	case jwt.SigningMethodES256.Alg():
		return v.ecdsa, nil
	}
	return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
}

// tokenClaims is what a verified token says. Every text in it has passed
// its textrule field.
type tokenClaims struct {
	tenant  string      // a tenant UUID or slug
	user    uuid.UUID   // SubjectID: the user's id
	subject string      // SubjectExternalID: the external id; SubjectEmail: the email
	role    dbtype.Role // "" when the token has none
	expires time.Time
	// email (verified; "" if none or not verified) and name ("" if none or
	// refused by textrule.UserName), for a user created on sign-in.
	email, name string
}

// verify checks the signature, exp, nbf, iss and aud, and reads the claims.
func (v *jwtVerifier) verify(ctx context.Context, raw string) (tokenClaims, error) {
	claims := jwt.MapClaims{}
	keyFor := v.keyFor
	if v.jwks != nil {
		keyFor = func(t *jwt.Token) (any, error) { return v.jwks.keyFor(ctx, t) }
	}
	if _, err := v.parser.ParseWithClaims(raw, claims, keyFor); err != nil {
		return tokenClaims{}, fmt.Errorf("token refused: %w", err)
	}
	var tc tokenClaims
	tenant, ok := claims[v.cfg.TenantClaim].(string)
	if !ok || tenant == "" {
		return tokenClaims{}, fmt.Errorf("token refused: no %q claim", v.cfg.TenantClaim)
	}
	tc.tenant = tenant
	if email, _ := claims["email"].(string); email != "" && verifiedEmail(claims["email_verified"]) &&
		textrule.UserEmail.Check(email) == nil {
		tc.email = email
	}
	if name, _ := claims["name"].(string); textrule.UserName.Check(name) == nil {
		tc.name = name
	}
	user, _ := claims[v.cfg.UserClaim].(string)
	switch v.cfg.SubjectMapping {
	case SubjectID:
		id, err := uuid.Parse(user)
		if err != nil || len(user) != 36 || id == uuid.Nil {
			return tokenClaims{}, fmt.Errorf("token refused: the %q claim must be a user id", v.cfg.UserClaim)
		}
		tc.user = id
	case SubjectExternalID:
		if err := textrule.ExternalID.Check(user); err != nil {
			return tokenClaims{}, fmt.Errorf("token refused: the %q claim %s", v.cfg.UserClaim, err)
		}
		tc.subject = user
	case SubjectEmail:
		if tc.email == "" {
			return tokenClaims{}, errors.New(`token refused: no valid "email" claim with "email_verified": true`)
		}
		tc.subject = tc.email
	}
	if raw, present := claims[v.cfg.RoleClaim]; present {
		role, _ := raw.(string)
		tc.role = dbtype.Role(role)
		if !tc.role.Client() {
			return tokenClaims{}, fmt.Errorf("token refused: the %q claim must be admin, member or viewer", v.cfg.RoleClaim)
		}
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return tokenClaims{}, errors.New("token refused: no exp")
	}
	tc.expires = exp.Time
	return tc, nil
}

// verifiedEmail reads email_verified: a JSON true, or the string "true"
// that some providers send (Amazon Cognito).
func verifiedEmail(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// ParsePublicKeys reads every PUBLIC KEY (PKIX) or RSA PUBLIC KEY block of a
// PEM file, for JWTConfig.PublicKeys.
func ParsePublicKeys(pemData []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			break
		}
		switch block.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: public key %d: %w", len(keys)+1, err)
			}
			keys = append(keys, k)
		case "RSA PUBLIC KEY":
			k, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: public key %d: %w", len(keys)+1, err)
			}
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("auth: unexpected PEM block %q; want PUBLIC KEY", block.Type)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return keys, nil
}
