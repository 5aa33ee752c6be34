-- The start-up and /readyz safety check (db/safety.go): conditions under which
-- the server's role could see across tenants. Each query returns one row per
-- problem, so an empty result means safe.
--
-- A role the connection can become counts as the connection (issue 14;
-- DESIGN.md, leak vector 11): SET ROLE works for every role it is a member
-- of, at any depth, whether or not it inherits, so membership is tested with
-- pg_has_role(…, 'MEMBER'), never 'USAGE' (which only sees what is inherited
-- and says no for a NOINHERIT role). The session user counts too: a
-- connection that logged in as one role and only set another (options
-- -c role=…) can RESET ROLE. sql/audit/03, 04, 12 and 20 ask the same of
-- every login role.

-- name: SafetyRoleProblems :many
-- Roles the connection can become (itself included) that bypass RLS or can
-- make themselves anything: a superuser, BYPASSRLS, CREATEROLE (grants itself
-- any role but a superuser, the owner included), or one of the predefined
-- roles that act as the server's operating system user (PostgreSQL docs,
-- "Predefined Roles": they can gain superuser access).
SELECT r.rolname::text AS role_name,
       (r.rolname = current_user)::boolean       AS is_current,
       coalesce(r.rolsuper, false)::boolean      AS is_superuser,
       coalesce(r.rolbypassrls, false)::boolean  AS bypasses_rls,
       coalesce(r.rolcreaterole, false)::boolean AS creates_roles,
       (r.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))::boolean AS server_files
FROM pg_catalog.pg_roles r
WHERE (pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') OR pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
  AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole
       OR r.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
ORDER BY r.rolname;

-- name: SafetyTableProblems :many
-- Tenant tables (those with a tenant_id column) that lack enabled or forced
-- RLS, are owned by a role the connection can become, or on which such a role
-- holds a privilege RLS does not govern (TRUNCATE, TRIGGER, REFERENCES on
-- the table or on any column; leak vector 7). Superusers are left out here:
-- SafetyRoleProblems names them, and they hold everything.
WITH reach AS (
    SELECT r.oid, r.rolname
    FROM pg_catalog.pg_roles r
    WHERE (pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') OR pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
      AND NOT r.rolsuper
), tenant_tables AS (
    SELECT c.oid, c.relname, c.relowner, c.relrowsecurity, c.relforcerowsecurity
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
), problems AS (
    SELECT t.relname::text AS table_name,
           t.relrowsecurity AS rls_enabled,
           t.relforcerowsecurity AS rls_forced,
           coalesce((SELECT r.rolname::text FROM reach r WHERE r.oid = t.relowner), '')::text AS owner_reached,
           coalesce((SELECT string_agg(p.priv || ' through ' || r.rolname, ', ' ORDER BY p.priv, r.rolname)
                     FROM reach r
                     CROSS JOIN unnest(ARRAY['TRUNCATE', 'TRIGGER', 'REFERENCES']) AS p(priv)
                     WHERE r.oid <> t.relowner -- named as the owner
                       AND (pg_catalog.has_table_privilege(r.oid, t.oid, p.priv)
                        OR (p.priv = 'REFERENCES' AND pg_catalog.has_any_column_privilege(r.oid, t.oid, p.priv)))), '')::text AS unsafe_grants
    FROM tenant_tables t
)
SELECT table_name, rls_enabled, rls_forced, owner_reached, unsafe_grants
FROM problems
WHERE NOT rls_enabled OR NOT rls_forced OR owner_reached <> '' OR unsafe_grants <> ''
ORDER BY table_name;

-- name: SafetyOwnedObjects :many
-- Roles the connection can become that own anything else in a schema that
-- holds tenant tables, or the schema itself: the owner of a function can
-- replace it (a trigger function sees every tenant's rows), the owner of a
-- schema can drop what is in it, the owner of a relation can alter it. One
-- row per owning role, with up to five of its objects as examples. The
-- database's owner is a member of pg_database_owner, which owns the public
-- schema from PostgreSQL 15 on.
WITH reach AS (
    SELECT r.oid, r.rolname
    FROM pg_catalog.pg_roles r
    WHERE (pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') OR pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
      AND NOT r.rolsuper
), schemas AS (
    SELECT DISTINCT n.oid, n.nspname, n.nspowner
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
), objects AS (
    SELECT 'schema ' || quote_ident(s.nspname) AS object, s.nspowner AS owner FROM schemas s
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'view ' ELSE 'table ' END
           || c.oid::regclass::text, c.relowner
    FROM pg_catalog.pg_class c JOIN schemas s ON s.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text, p.proowner
    FROM pg_catalog.pg_proc p JOIN schemas s ON s.oid = p.pronamespace
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text, t.typowner
    FROM pg_catalog.pg_type t JOIN schemas s ON s.oid = t.typnamespace
    WHERE t.typrelid = 0 AND t.typelem = 0
)
SELECT r.rolname::text AS role_name,
       (r.rolname = current_user)::boolean AS is_current,
       count(*)::bigint AS owned,
       array_to_string((array_agg(o.object ORDER BY o.object))[1:5], ', ')::text AS examples
FROM objects o
JOIN reach r ON r.oid = o.owner
GROUP BY r.rolname
ORDER BY r.rolname;

-- name: SafetyRegistryReach :many
-- Roles other than itself that the connection can become and that may read
-- or change the tenant registry (public.tenants): every tenant's name, slug
-- and status, and deleting a tenant deletes all its rows. rowfence_platform
-- holds that on purpose; no serving role may become it (sql/audit/12).
SELECT r.rolname::text AS role_name
FROM pg_catalog.pg_roles r
WHERE (pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') OR pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
  AND r.rolname <> current_user
  AND NOT r.rolsuper
  AND EXISTS (SELECT 1 FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(priv)
              WHERE pg_catalog.has_table_privilege(r.oid, pg_catalog.to_regclass('public.tenants'), p.priv))
ORDER BY r.rolname;

-- name: SafetyTenantTableCount :one
-- Zero tenant tables means the schema is not migrated: not ready.
SELECT count(*) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema');

-- name: SafetySessionSettings :one
-- The tenant and role of a unit of work come only from set_config(…, true)
-- inside its transaction (db/scope.go; leak vector 2). Outside one they read
-- '' (vector 3). A session-level value (a startup option: PGOPTIONS in the
-- server's environment, or options= in the connection string) would apply
-- to every statement run outside One and Tx, on every connection.
SELECT coalesce(pg_catalog.current_setting('app.tenant_id', true), '')::text AS tenant_id,
       coalesce(pg_catalog.current_setting('app.role', true), '')::text AS app_role;
