-- Tenant registry. TenantLookup is the app role's only way in (a SECURITY
-- DEFINER function, sql/migrations/00002_tenancy.sql). TenantCreate and
-- TenantList are lifecycle operations: they run as the migrating role from the
-- CLI, never from the request path.

-- name: TenantLookup :one
SELECT l.id::uuid AS id, l.slug::text AS slug, l.status::text AS status
FROM tenant_lookup(sqlc.narg('id')::uuid, sqlc.narg('slug')::text) AS l;

-- name: TenantCreate :one
INSERT INTO tenants (id, slug, name) VALUES (@id, @slug, @name) RETURNING *;

-- name: TenantList :many
SELECT * FROM tenants ORDER BY slug;
