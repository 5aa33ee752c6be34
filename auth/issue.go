package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
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
func IssueKey(ctx context.Context, q *dbsqlc.Queries, tenant, userID uuid.UUID, role dbtype.Role, name string, expires *time.Time) (dbsqlc.APIKey, string, error) {
	if !role.Client() {
		return dbsqlc.APIKey{}, "", errors.New("auth: a key's role must be admin, member or viewer")
	}
	user, err := q.UserGet(ctx, userID)
	if errors.Is(err, db.ErrNotFound) {
		return dbsqlc.APIKey{}, "", ErrUnknownUser
	}
	if err != nil {
		return dbsqlc.APIKey{}, "", err
	}
	if !user.Role.AtLeast(role) {
		return dbsqlc.APIKey{}, "", ErrRoleAboveUser
	}
	k, err := NewAPIKey(tenant)
	if err != nil {
		return dbsqlc.APIKey{}, "", err
	}
	row, err := q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{ID: k.ID, UserID: userID, Name: name, Role: role,
		SecretHash: k.Hash(), ExpiresAt: expires})
	if err != nil {
		return dbsqlc.APIKey{}, "", err
	}
	return row, k.String(), nil
}
