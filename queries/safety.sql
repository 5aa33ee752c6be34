-- The start-up and /readyz safety check (db/safety.go): conditions under which
-- the server's role could see across tenants. Each query returns one row per
-- problem, so an empty result means safe.

-- name: SafetyRoleProblems :many
-- The serving role itself, or any role it inherits, may bypass RLS.
SELECT r.rolname::text AS role_name,
       coalesce(r.rolsuper, false)::boolean     AS is_superuser,
       coalesce(r.rolbypassrls, false)::boolean AS bypasses_rls
FROM pg_catalog.pg_roles r
WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')
  AND (r.rolsuper OR r.rolbypassrls);

-- name: SafetyTableProblems :many
-- Tenant tables (those with a tenant_id column) the serving role owns (or may
-- act as the owner of), that lack enabled or forced RLS, or on which it holds a
-- privilege RLS does not govern.
SELECT c.relname::text                                         AS table_name,
       c.relrowsecurity                                        AS rls_enabled,
       c.relforcerowsecurity                                   AS rls_forced,
       pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE') AS owned,
       coalesce(pg_catalog.has_table_privilege(c.oid, 'TRUNCATE')
        OR pg_catalog.has_table_privilege(c.oid, 'REFERENCES')
        OR pg_catalog.has_table_privilege(c.oid, 'TRIGGER'), false)::boolean AS unsafe_grant
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (NOT c.relrowsecurity
       OR NOT c.relforcerowsecurity
       OR pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
       OR pg_catalog.has_table_privilege(c.oid, 'TRUNCATE')
       OR pg_catalog.has_table_privilege(c.oid, 'REFERENCES')
       OR pg_catalog.has_table_privilege(c.oid, 'TRIGGER'))
ORDER BY c.relname;

-- name: SafetyTenantTableCount :one
-- Zero tenant tables means the schema is not migrated: not ready.
SELECT count(*) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema');
