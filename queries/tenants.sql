-- Tenant registry. TenantLookup is the app role's only way in (a SECURITY
-- DEFINER function, sql/migrations/00002_tenancy.sql). TenantCreate and
-- TenantList are lifecycle operations: they run as the migrating role from the
-- CLI, never from the request path.

-- name: TenantLookup :one
SELECT l.id::uuid AS id, l.slug::text AS slug, l.status::text AS status,
       -- 0: no override (the columns are NULL or positive)
       coalesce(l.rate_limit, 0)::float8 AS rate_limit, coalesce(l.rate_burst, 0)::int AS rate_burst,
       coalesce(l.max_concurrency, 0)::int AS max_concurrency,
       coalesce(l.statement_timeout_ms, 0)::int AS statement_timeout_ms,
       l.cell::text AS cell -- the cell holding the tenant's rows (00021)
FROM tenant_lookup(sqlc.narg('id')::uuid, sqlc.narg('slug')::text) AS l;

-- name: TenantCreate :one
INSERT INTO tenants (id, slug, name) VALUES (@id, @slug, @name) RETURNING *;

-- name: TenantList :many
SELECT * FROM tenants ORDER BY slug;

-- name: TenantSetLimits :one
-- NULL puts a limit back to the server's default.
UPDATE tenants SET rate_limit = sqlc.narg('rate_limit'), rate_burst = sqlc.narg('rate_burst'),
    max_concurrency = sqlc.narg('max_concurrency'), statement_timeout_ms = sqlc.narg('statement_timeout_ms')
WHERE slug = @slug
RETURNING *;
