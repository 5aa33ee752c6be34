package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
)

var (
	// ErrUnknownUser: the key's user does not exist in the tenant.
	ErrUnknownUser = &db.Error{Code: db.ErrInvalid, Field: "user_id", Message: "no such user in this tenant"}
	// ErrRoleAboveUser: a key may not have a higher role than its user.
	ErrRoleAboveUser = &db.Error{Code: db.ErrInvalid, Field: "role", Message: "a key cannot have a higher role than its user"}
)

// IssueKey creates an API key for a user of tenant, inside the caller's
// transaction (q runs with the tenant's scope and the admin role), and
// returns its row and the key itself, which is never stored and must be
// shown to the caller once.
func IssueKey(ctx context.Context, q *db.Queries, tenant, userID uuid.UUID, role db.Role, name string, expires *time.Time) (db.APIKey, string, error) {
	if !ClientRole(role) {
		return db.APIKey{}, "", errors.New("auth: a key's role must be admin, member or viewer")
	}
	user, err := q.UserGet(ctx, userID)
	if errors.Is(err, db.ErrNotFound) {
		return db.APIKey{}, "", ErrUnknownUser
	}
	if err != nil {
		return db.APIKey{}, "", err
	}
	if rank(role) > rank(db.Role(user.Role)) {
		return db.APIKey{}, "", ErrRoleAboveUser
	}
	k, err := NewAPIKey(tenant)
	if err != nil {
		return db.APIKey{}, "", err
	}
	row, err := q.APIKeyCreate(ctx, db.APIKeyCreateParams{ID: k.ID, UserID: userID, Name: name, Role: string(role),
		SecretHash: k.Hash(), ExpiresAt: expires})
	if err != nil {
		return db.APIKey{}, "", err
	}
	return row, k.String(), nil
}
