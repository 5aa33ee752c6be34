package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db/dbtype"
)

// JWTConfig configures bearer tokens issued by an identity provider.
type JWTConfig struct {
	// HMACSecret enables HS256 (at least 32 bytes).
	HMACSecret []byte
	// PublicKeys enable RS256 (*rsa.PublicKey, at least 2048 bits) and
	// ES256 (*ecdsa.PublicKey on P-256).
	PublicKeys []crypto.PublicKey
	// Issuer and Audience must match the token's iss and aud; both required.
	Issuer, Audience string
	// Claims naming the tenant (its UUID or slug), the user (a user id of
	// that tenant) and the role (admin, member or viewer; optional: absent
	// means the user's own role).
	TenantClaim, UserClaim, RoleClaim string
	// Leeway tolerates clock skew on exp and nbf.
	Leeway time.Duration
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
	v := &jwtVerifier{cfg: cfg}
	var methods []string
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
		return nil, errors.New("auth: JWT needs an HS256 secret or a public key")
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

// tokenClaims is what a verified token says.
type tokenClaims struct {
	tenant  string // a tenant UUID or slug
	user    uuid.UUID
	role    dbtype.Role // "" when the token has none
	expires time.Time
}

// verify checks the signature, exp, nbf, iss and aud, and reads the claims.
func (v *jwtVerifier) verify(raw string) (tokenClaims, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keyFor); err != nil {
		return tokenClaims{}, fmt.Errorf("token refused: %w", err)
	}
	var tc tokenClaims
	tenant, ok := claims[v.cfg.TenantClaim].(string)
	if !ok || tenant == "" {
		return tokenClaims{}, fmt.Errorf("token refused: no %q claim", v.cfg.TenantClaim)
	}
	tc.tenant = tenant
	user, _ := claims[v.cfg.UserClaim].(string)
	id, err := uuid.Parse(user)
	if err != nil || len(user) != 36 || id == uuid.Nil {
		return tokenClaims{}, fmt.Errorf("token refused: the %q claim must be a user id", v.cfg.UserClaim)
	}
	tc.user = id
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
