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
