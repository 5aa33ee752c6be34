package db_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// The credential check runs as app.role 'auth' and may stamp last_used_at
// on a live key, nothing else. Column grants are per database role, not per
// app.role, and the app role may update name and revoked_at (for admins), so
// the api_keys_auth_touch policy alone let 'auth' rename a live key; a
// trigger now refuses any other change made as 'auth'.
func TestAuthMayOnlyStampLastUsedAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	user, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "U", Email: "u@example.com", Role: "viewer"})
	})
	require.NoError(t, err)
	hash := sha256.Sum256([]byte("secret"))
	key, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) {
		return q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{ID: uuid.New(), UserID: user.ID, Name: "ci", Role: "viewer", SecretHash: hash[:]})
	})
	require.NoError(t, err)

	asAuth := func(stmt string) error {
		return pgx.BeginFunc(ctx, bundle.app, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', 'auth', true)", bundle.a.TenantID.String()); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, stmt, key.ID)
			return err
		})
	}
	for _, stmt := range []string{
		"update api_keys set name = 'renamed' where id = $1",
		"update api_keys set name = 'renamed', last_used_at = now() where id = $1",
		"update api_keys set revoked_at = now() where id = $1",
	} {
		require.ErrorIs(t, db.MapError(asAuth(stmt)), db.ErrForbidden, stmt)
	}
	require.NoError(t, asAuth("update api_keys set last_used_at = now() where id = $1"))

	k, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyGet(ctx, key.ID) })
	require.NoError(t, err)
	require.Equal(t, "ci", k.Name)
	require.Nil(t, k.RevokedAt)
	require.NotNil(t, k.LastUsedAt)

	// An admin still renames and revokes.
	_, err = db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyRevoke(ctx, key.ID) })
	require.NoError(t, err)
}
