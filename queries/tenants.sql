-- Tenant registry. TenantLookup is the app role's only way in (a SECURITY
-- DEFINER function, sql/migrations/00002_tenancy.sql). TenantCreate and
-- TenantList are lifecycle operations: they run as the migrating role from the
-- CLI, never from the request path.

-- name: TenantLookup :many
-- The tenants of many keys in one statement (tenancy.Resolver: a lookup in a
-- request's path is one key, its background refresh a batch of them,
-- cache.Refresher). Key n (from 1) is (ids[n], slugs[n]), the nil UUID or ''
-- for the part it does not name; a key without a tenant has no row.
SELECT k.n::int AS n, l.id::uuid AS id, l.slug::text AS slug, l.status::text AS status,
       -- 0: no override (the columns are NULL or positive)
       coalesce(l.rate_limit, 0)::float8 AS rate_limit, coalesce(l.rate_burst, 0)::int AS rate_burst,
       coalesce(l.max_concurrency, 0)::int AS max_concurrency,
       coalesce(l.statement_timeout_ms, 0)::int AS statement_timeout_ms,
       l.cell::text AS cell -- the cell holding the tenant's rows (00021)
FROM unnest(sqlc.arg('ids')::uuid[]) WITH ORDINALITY AS k(id, n)
JOIN unnest(sqlc.arg('slugs')::text[]) WITH ORDINALITY AS s(slug, n) USING (n),
     LATERAL tenant_lookup(nullif(k.id, '00000000-0000-0000-0000-000000000000'::uuid), nullif(s.slug, '')) AS l;

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
