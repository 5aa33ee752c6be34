// Package auth decides who is calling: it parses and verifies the two kinds
// of credential rowfence accepts (its own API keys and JWT bearer tokens),
// and turns a valid one into a Principal: a tenant, a user and a role.
//
// The database does the rest. A Principal's tenant and role become the
// request's db.Scope, and the policies on every tenant table enforce both
// (sql/migrations/00004_auth.sql).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// An API key reads
//
//	rfk_<tenant id: 32 hex>_<key id: 32 hex>_<secret: 64 hex>
//
// The key carries its tenant, so looking it up runs under that tenant's RLS
// context like any request: no database path that sees across tenants is
// needed. The secret is 256 random bits; only its SHA-256 is stored (a fast
// hash suffices for a secret that cannot be guessed), and comparison is in
// constant time.
const (
	apiKeyPrefix = "rfk_"
	apiKeyLen    = len(apiKeyPrefix) + 32 + 1 + 32 + 1 + 64
)

// APIKey is a parsed API key.
type APIKey struct {
	TenantID uuid.UUID
	ID       uuid.UUID
	Secret   [32]byte
}

// ErrMalformed: the credential is not in a form rowfence issues.
var ErrMalformed = errors.New("malformed credential")

// NewAPIKey makes a new random key for tenant.
func NewAPIKey(tenant uuid.UUID) (APIKey, error) {
	k := APIKey{TenantID: tenant}
	id, err := uuid.NewRandom()
	if err != nil {
		return APIKey{}, err
	}
	k.ID = id
	if _, err := rand.Read(k.Secret[:]); err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// String is the key as the client sends it. Show it once; never log it.
func (k APIKey) String() string {
	var b strings.Builder
	b.Grow(apiKeyLen)
	b.WriteString(apiKeyPrefix)
	b.WriteString(hex.EncodeToString(k.TenantID[:]))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(k.ID[:]))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(k.Secret[:]))
	return b.String()
}

// Hash is what the database stores for the key (api_keys.secret_hash).
func (k APIKey) Hash() []byte {
	h := sha256.Sum256(k.Secret[:])
	return h[:]
}

// LooksLikeAPIKey reports whether a bearer credential is meant as an API key
// (as opposed to a JWT), so that errors can say which one was wrong.
func LooksLikeAPIKey(s string) bool { return strings.HasPrefix(s, apiKeyPrefix) }

// ParseAPIKey reads a key in exactly the form String writes (lower-case hex).
func ParseAPIKey(s string) (APIKey, error) {
	if len(s) != apiKeyLen || !strings.HasPrefix(s, apiKeyPrefix) {
		return APIKey{}, ErrMalformed
	}
	rest := s[len(apiKeyPrefix):]
	if rest[32] != '_' || rest[65] != '_' {
		return APIKey{}, ErrMalformed
	}
	var k APIKey
	if !decodeHex(k.TenantID[:], rest[:32]) || !decodeHex(k.ID[:], rest[33:65]) ||
		!decodeHex(k.Secret[:], rest[66:]) || k.TenantID == uuid.Nil || k.ID == uuid.Nil {
		return APIKey{}, ErrMalformed
	}
	return k, nil
}

// decodeHex accepts lower-case hex only, so that one key has one spelling.
func decodeHex(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	n, err := hex.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}
