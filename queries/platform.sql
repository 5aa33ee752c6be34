-- Platform administration (rowfence_platform, or the migrating role from the
-- CLI): the tenant registry and the platform keys. Never on a tenant's path.

-- name: PlatformKeyCreate :one
INSERT INTO platform_keys (id, name, secret_hash) VALUES (@id, @name, @secret_hash) RETURNING *;

-- name: PlatformKeyGet :one
SELECT * FROM platform_keys WHERE id = @id;

-- name: PlatformKeyList :many
SELECT * FROM platform_keys ORDER BY created_at, id;

-- name: PlatformKeyTouch :exec
UPDATE platform_keys SET last_used_at = now() WHERE id = @id AND revoked_at IS NULL;

-- name: PlatformKeyRevoke :one
UPDATE platform_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = @id RETURNING *;

-- name: TenantGet :one
SELECT * FROM tenants WHERE id = @id;

-- name: TenantBySlug :one
SELECT * FROM tenants WHERE slug = @slug;

-- name: TenantPage :many
SELECT * FROM tenants
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;

-- name: TenantUpdate :one
-- Name and status; purge_after follows status (set only while deleting).
UPDATE tenants SET
    name        = coalesce(sqlc.narg('name'), name),
    -- ::text: a typed column's sqlc.narg would lose its NULL (sqlc issue #3494).
    status      = coalesce(sqlc.narg('status')::text, status),
    purge_after = CASE WHEN coalesce(sqlc.narg('status')::text, status) = 'deleting'
                       THEN coalesce(sqlc.narg('purge_after'), purge_after, now())
                       ELSE NULL END
WHERE id = @id
RETURNING *;

-- name: TenantDelete :one
-- Deletes the tenant and, through ON DELETE CASCADE, every row it owns.
DELETE FROM tenants WHERE id = @id RETURNING id;

-- name: TenantPurge :one
-- Deletes the tenant, as TenantDelete does, only while it is marked for
-- deletion and its grace period is over. One statement, so the check and the
-- delete cannot be split: a tenant reactivated (or given more time) by a
-- transaction that commits while this one waits for its row is re-checked
-- in its new version (READ COMMITTED) and kept. No row: not due, or gone.
DELETE FROM tenants WHERE id = @id AND status = 'deleting' AND purge_after <= now() RETURNING slug;

-- name: TenantPurgeDue :many
-- Tenants marked for deletion whose grace period is over, oldest first.
SELECT id, slug FROM tenants WHERE status = 'deleting' AND purge_after <= now()
ORDER BY purge_after LIMIT 100;

-- name: TenantGetForUpdate :one
SELECT * FROM tenants WHERE id = @id FOR UPDATE;

-- name: TenantIDs :many
-- Every tenant, for jobs that visit each one under its own setting.
SELECT id FROM tenants WHERE (@after_id::uuid) < id ORDER BY id LIMIT 1000;
