-- Roles that can log in (superusers aside: check 03 lists them) and can
-- become, at any depth and INHERIT or not (SET ROLE), a role that owns a
-- tenant table, anything else in a schema that holds tenant tables, or that
-- schema; or a role with CREATEROLE, which can grant itself any role but a
-- superuser, the owner included. An owner can switch a table's policies off;
-- the owner of a trigger function sees every tenant's rows pass through it;
-- the owner of a schema can drop what is in it (leak vectors 1 and 11). The
-- database's owner is a member of pg_database_owner, which owns the public
-- schema from PostgreSQL 15 on.
-- The migrating role must act as the owner: `rowfence audit` accepts the
-- role it runs as (DATABASE_URL), unless that is a serving role, and any
-- named with --accept-role. A serving role (rowfence_app, rowfence_platform)
-- here is always a defect: serve refuses to start with it.
WITH schemas AS (
    SELECT DISTINCT n.oid, n.nspname, n.nspowner
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
), objects AS (
    SELECT 'schema ' || quote_ident(s.nspname) AS object, s.nspowner AS owner FROM schemas s
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'view ' ELSE 'table ' END
           || c.oid::regclass::text, c.relowner
    FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text, p.proowner
    FROM pg_proc p JOIN schemas s ON s.oid = p.pronamespace
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text, t.typowner
    FROM pg_type t JOIN schemas s ON s.oid = t.typnamespace
    WHERE t.typrelid = 0 AND t.typelem = 0
), reach AS (
    SELECT r.oid AS login, r.rolname::text AS login_name, b.oid, b.rolname::text AS rolname, b.rolcreaterole
    FROM pg_roles r
    JOIN pg_roles b ON pg_has_role(r.oid, b.oid, 'MEMBER')
    WHERE r.rolcanlogin AND NOT r.rolsuper AND NOT b.rolsuper
), found AS (
    SELECT x.login_name,
           format('%s %s object(s), e.g. %s', CASE WHEN x.oid = x.login THEN 'owns' ELSE format('can become %s, which owns', x.rolname) END,
                  count(*), array_to_string((array_agg(o.object ORDER BY o.object))[1:3], ', ')) AS finding
    FROM reach x JOIN objects o ON o.owner = x.oid
    GROUP BY x.login_name, x.login, x.oid, x.rolname
    UNION ALL
    SELECT x.login_name,
           CASE WHEN x.oid = x.login THEN 'has CREATEROLE' ELSE format('can become %s, which has CREATEROLE', x.rolname) END
    FROM reach x WHERE x.rolcreaterole
)
SELECT 'login-can-become-owner' AS check_name,
       login_name AS object,
       string_agg(finding, '; ' ORDER BY finding) AS detail
FROM found
GROUP BY login_name
ORDER BY 2;
