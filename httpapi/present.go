package httpapi

import (
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/lifecycle"
)

// One JSON shape per resource, written once: the API's handlers and the CLI
// (cmd/rowfence: `tenant create|list|limits|suspend|activate|delete|import`,
// `key create|list|revoke`) both print tenants, users and API keys through
// these, so the two cannot drift apart. The shapes are the contract's
// (openapi.yaml: Tenant, TenantCreated, User, APIKey); the tests check every
// API answer against it, and cmd.TestCLIPrintsTheAPIShapes the CLI's output.
// Times are UTC (RFC 3339); an absent time or limit is null, never left out.

// TenantJSON is a tenant (openapi.yaml, Tenant).
type TenantJSON struct {
	ID     uuid.UUID           `json:"id"`
	Slug   string              `json:"slug"`
	Name   string              `json:"name"`
	Status dbtype.TenantStatus `json:"status"`
	// CreatedAt is when it was onboarded.
	CreatedAt time.Time `json:"created_at"`
	// PurgeAfter is when the purge deletes it; set while its status is
	// deleting, else null.
	PurgeAfter *time.Time `json:"purge_after"`
	Limits     LimitsJSON `json:"limits"`
}

// LimitsJSON is a tenant's own limits (openapi.yaml, Limits); null is the
// server's default.
type LimitsJSON struct {
	RateLimit          *float64 `json:"rate_limit"`           // requests per second
	RateBurst          *int32   `json:"rate_burst"`           // token bucket size
	MaxConcurrency     *int32   `json:"max_concurrency"`      // requests doing database work at once
	StatementTimeoutMs *int32   `json:"statement_timeout_ms"` // milliseconds
}

// RenderTenant is t as the API and the CLI show it.
func RenderTenant(t dbsqlc.Tenant) TenantJSON {
	return TenantJSON{ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, CreatedAt: t.CreatedAt.UTC(),
		PurgeAfter: utcPtr(t.PurgeAfter), Limits: LimitsJSON{t.RateLimit, t.RateBurst, t.MaxConcurrency, t.StatementTimeoutMs}}
}

// UserJSON is a user of a tenant (openapi.yaml, User).
type UserJSON struct {
	ID       uuid.UUID   `json:"id"`
	TenantID uuid.UUID   `json:"tenant_id"`
	Name     string      `json:"name"`
	Email    string      `json:"email"`
	Role     dbtype.Role `json:"role"`
	// ExternalID is the user's subject at the identity provider
	// (JWT_SUBJECT_MAPPING=external_id); null if none.
	ExternalID *string   `json:"external_id"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// RenderUser is u as the API and the CLI show it.
func RenderUser(u dbsqlc.User) UserJSON {
	return UserJSON{ID: u.ID, TenantID: u.TenantID, Name: u.Name, Email: u.Email, Role: u.Role, ExternalID: u.ExternalID,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

// APIKeyJSON is an API key, never its secret (openapi.yaml, APIKey).
type APIKeyJSON struct {
	ID         uuid.UUID   `json:"id"`
	TenantID   uuid.UUID   `json:"tenant_id"`
	UserID     uuid.UUID   `json:"user_id"`
	Name       string      `json:"name"`
	Role       dbtype.Role `json:"role"`
	CreatedAt  time.Time   `json:"created_at"`
	ExpiresAt  *time.Time  `json:"expires_at"`
	LastUsedAt *time.Time  `json:"last_used_at"`
	RevokedAt  *time.Time  `json:"revoked_at"`
	// Key is the credential itself, present only in the answer that made
	// it (it is stored as a hash and cannot be shown again).
	Key string `json:"key,omitempty"`
}

// RenderAPIKey is k as the API and the CLI show it, without Key.
func RenderAPIKey(k dbsqlc.APIKey) APIKeyJSON {
	return APIKeyJSON{ID: k.ID, TenantID: k.TenantID, UserID: k.UserID, Name: k.Name, Role: k.Role,
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utcPtr(k.ExpiresAt), LastUsedAt: utcPtr(k.LastUsedAt), RevokedAt: utcPtr(k.RevokedAt)}
}

// TenantCreatedJSON is an onboarded tenant with its first admin and that
// admin's API key, Key included (openapi.yaml, TenantCreated).
type TenantCreatedJSON struct {
	TenantJSON
	Admin  UserJSON   `json:"admin"`
	APIKey APIKeyJSON `json:"api_key"`
}

// RenderOnboarded is what lifecycle.Onboard made, as the API and the CLI
// show it: the only time the key is shown.
func RenderOnboarded(o lifecycle.Onboarded) TenantCreatedJSON {
	key := RenderAPIKey(o.KeyRow)
	key.Key = o.Key
	return TenantCreatedJSON{TenantJSON: RenderTenant(o.Tenant), Admin: RenderUser(o.Admin), APIKey: key}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
