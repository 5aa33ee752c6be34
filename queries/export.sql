-- Per-tenant backup and restore (lifecycle/export.go). Like every query here
-- they never name the tenant: they run under its setting, so an export holds
-- that tenant's rows and nothing else, and an import writes only into it.

-- name: UserExport :many
SELECT * FROM users ORDER BY created_at, id;

-- name: ProductExport :many
SELECT * FROM products ORDER BY created_at, id;

-- name: APIKeyExport :many
SELECT * FROM api_keys ORDER BY created_at, id;

-- name: TenantRowCounts :one
SELECT (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM products) AS products,
       (SELECT count(*) FROM api_keys) AS api_keys;

-- name: UserImport :execrows
INSERT INTO users (id, name, email, role, created_at, updated_at)
-- Several set-returning functions in one select list run in lockstep.
SELECT unnest(@ids::uuid[]), unnest(@names::text[]), unnest(@emails::text[]), unnest(@roles::text[]),
       unnest(@created_ats::timestamptz[]), unnest(@updated_ats::timestamptz[]);

-- name: ProductImport :execrows
INSERT INTO products (id, name, description, price, created_at, updated_at)
SELECT unnest(@ids::uuid[]), unnest(@names::text[]), unnest(@descriptions::text[]), unnest(@prices::bigint[]),
       unnest(@created_ats::timestamptz[]), unnest(@updated_ats::timestamptz[]);

-- name: APIKeyImport :execrows
-- Nullable times travel as text, '' for NULL.
INSERT INTO api_keys (id, user_id, name, role, secret_hash, created_at, expires_at, last_used_at, revoked_at)
SELECT unnest(@ids::uuid[]), unnest(@user_ids::uuid[]), unnest(@names::text[]), unnest(@roles::text[]),
       unnest(@secret_hashes::bytea[]), unnest(@created_ats::timestamptz[]), nullif(unnest(@expires_ats::text[]), '')::timestamptz,
       nullif(unnest(@last_used_ats::text[]), '')::timestamptz, nullif(unnest(@revoked_ats::text[]), '')::timestamptz;

-- name: ExportCreate :one
-- Nothing (ErrNotFound) while the tenant has an export in progress: the
-- export jobs share one queue, so one tenant's burst of exports would delay
-- every other tenant's. An export in progress for longer than 15 minutes
-- (a stuck job) no longer counts.
INSERT INTO exports (requested_by)
SELECT @requested_by::uuid
WHERE NOT EXISTS (SELECT 1 FROM exports WHERE status IN ('pending', 'running') AND created_at > now() - interval '15 minutes')
RETURNING id, requested_by, status, error, counts, created_at, finished_at;

-- name: ExportInProgress :one
SELECT id FROM exports
WHERE status IN ('pending', 'running') AND created_at > now() - interval '15 minutes'
ORDER BY created_at LIMIT 1;

-- name: ExportGet :one
SELECT id, requested_by, status, error, counts, created_at, finished_at FROM exports WHERE id = @id;

-- name: ExportList :many
SELECT id, requested_by, status, error, counts, created_at, finished_at FROM exports
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;

-- name: ExportContent :one
SELECT status, content FROM exports WHERE id = @id;

-- name: ExportStart :one
-- The export job takes its export (run under the export's own tenant).
UPDATE exports SET status = 'running' WHERE id = @id AND status IN ('pending', 'running') RETURNING id;

-- name: ExportFinish :exec
UPDATE exports SET status = 'done', content = @content, counts = @counts, error = '', finished_at = now() WHERE id = @id;

-- name: ExportFail :exec
UPDATE exports SET status = @status, error = @error, finished_at = CASE WHEN @status = 'failed' THEN now() END WHERE id = @id;
