-- API key queries. As everywhere in queries/, none of them names the tenant:
-- the restrictive tenant_isolation policy on api_keys adds it, and the role
-- policies decide who may see or change keys (sql/migrations/00004_auth.sql).

-- name: APIKeyAuthenticate :one
-- The credential check (app.role = 'auth'): the key the client showed, and
-- the current role of the user it belongs to.
SELECT k.id, k.user_id, k.role, k.secret_hash, k.expires_at, k.last_used_at, k.revoked_at,
       u.role AS user_role
FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.id = @id;

-- name: APIKeyTouch :exec
UPDATE api_keys SET last_used_at = now()
WHERE id = @id AND revoked_at IS NULL;

-- name: APIKeyCreate :one
INSERT INTO api_keys (id, user_id, name, role, secret_hash, expires_at)
VALUES (@id, @user_id, @name, @role, @secret_hash, sqlc.narg('expires_at'))
RETURNING *;

-- name: APIKeyList :many
SELECT * FROM api_keys
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;

-- name: APIKeyGet :one
SELECT * FROM api_keys WHERE id = @id;

-- name: APIKeyRevoke :one
-- Revoking twice keeps the first revocation time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = @id
RETURNING *;

-- name: APIKeyLock :one
SELECT * FROM api_keys WHERE id = @id FOR UPDATE;
