package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/cache"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// A platform admin key reads rfp_<key id: 32 hex>_<secret: 64 hex>. It
// carries no tenant: it opens /v1/admin, never a tenant's data, and no
// tenant credential opens /v1/admin.
const (
	platformKeyPrefix = "rfp_"
	platformKeyLen    = len(platformKeyPrefix) + 32 + 1 + 64
)

// PlatformKey is a parsed platform admin key.
type PlatformKey struct {
	ID     uuid.UUID
	Secret [32]byte
}

// NewPlatformKey makes a new random platform admin key.
func NewPlatformKey() (PlatformKey, error) {
	var k PlatformKey
	id, err := uuid.NewRandom()
	if err != nil {
		return k, err
	}
	k.ID = id
	_, err = rand.Read(k.Secret[:])
	return k, err
}

func (k PlatformKey) String() string {
	return platformKeyPrefix + hex.EncodeToString(k.ID[:]) + "_" + hex.EncodeToString(k.Secret[:])
}

// Hash is what platform_keys.secret_hash stores.
func (k PlatformKey) Hash() []byte {
	h := sha256.Sum256(k.Secret[:])
	return h[:]
}

// ParsePlatformKey reads a key in exactly the form String writes.
func ParsePlatformKey(s string) (PlatformKey, error) {
	var k PlatformKey
	if len(s) != platformKeyLen || !strings.HasPrefix(s, platformKeyPrefix) || s[len(platformKeyPrefix)+32] != '_' {
		return k, ErrMalformed
	}
	rest := s[len(platformKeyPrefix):]
	if !decodeHex(k.ID[:], rest[:32]) || !decodeHex(k.Secret[:], rest[33:]) || k.ID == uuid.Nil {
		return PlatformKey{}, ErrMalformed
	}
	return k, nil
}

// IssuePlatformKey stores a new platform admin key and returns it (shown once).
func IssuePlatformKey(ctx context.Context, q *dbsqlc.Queries, name string) (dbsqlc.PlatformKey, string, error) {
	k, err := NewPlatformKey()
	if err != nil {
		return dbsqlc.PlatformKey{}, "", err
	}
	row, err := q.PlatformKeyCreate(ctx, dbsqlc.PlatformKeyCreateParams{ID: k.ID, Name: name, SecretHash: k.Hash()})
	return row, k.String(), err
}

// Platform verifies platform admin keys against platform_keys, through the
// platform role's pool, caching answers for the TTL (the bound on
// revocation, as for tenant keys) in a bounded cache that made-up keys
// cannot flush (package cache, leak vector 13).
type Platform struct {
	pool *pgxpool.Pool
	now  func() time.Time
	keys *cache.Cache[uuid.UUID, platformEntry]
}

// platformEntry is a key found in platform_keys; keys that were not are the
// cache's negative entries.
type platformEntry struct {
	revoked bool
	hash    []byte
}

// NewPlatform verifies platform keys through pool (rowfence_platform's).
func NewPlatform(pool *pgxpool.Pool, ttl time.Duration) *Platform {
	p := &Platform{pool: pool, now: time.Now}
	p.keys = cache.New[uuid.UUID, platformEntry](cache.Options[platformEntry]{Name: "platform_keys", TTL: ttl})
	return p
}

// Caches are the verifier's caches, for metrics.
func (p *Platform) Caches() []cache.Observable { return []cache.Observable{p.keys} }

// Verify returns the id of the platform key cred, or ErrInvalid.
func (p *Platform) Verify(ctx context.Context, cred string) (uuid.UUID, error) {
	return p.verify(ctx, cred, always)
}

// VerifyIf is Verify asking the database only when the cache cannot answer
// and lookup, asked then, allows it (see Authenticator.AuthenticateIf).
func (p *Platform) VerifyIf(ctx context.Context, cred string, lookup func() bool) (uuid.UUID, error) {
	return p.verify(ctx, cred, lookup)
}

func (p *Platform) verify(ctx context.Context, cred string, lookup func() bool) (uuid.UUID, error) {
	k, err := ParsePlatformKey(cred)
	if err != nil {
		return uuid.Nil, invalid("not a platform admin key")
	}
	now := p.now()
	e, res := p.keys.Get(k.ID)
	if res == cache.Miss {
		if !lookup() {
			return uuid.Nil, ErrNotCached
		}
		ticket := p.keys.Ticket()
		row, err := db.Unscoped(p.pool).PlatformKeyGet(ctx, k.ID)
		switch {
		case errors.Is(err, db.ErrNotFound):
			p.keys.SetAbsent(ticket, k.ID)
			res = cache.Absent
		case err != nil:
			return uuid.Nil, err
		default:
			e = platformEntry{revoked: row.RevokedAt != nil, hash: row.SecretHash}
			p.keys.Set(ticket, k.ID, e)
			res = cache.Hit
			if !e.revoked && subtle.ConstantTimeCompare(e.hash, k.Hash()) == 1 &&
				(row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > touchEvery) {
				if err := db.Unscoped(p.pool).PlatformKeyTouch(ctx, k.ID); err != nil {
					return uuid.Nil, err
				}
			}
		}
	}
	switch {
	case res == cache.Absent:
		return uuid.Nil, invalid("unknown platform key %s", k.ID)
	case subtle.ConstantTimeCompare(e.hash, k.Hash()) != 1:
		return uuid.Nil, invalid("wrong secret for platform key %s", k.ID)
	case e.revoked:
		return uuid.Nil, invalid("platform key %s is revoked", k.ID)
	}
	return k.ID, nil
}
