-- The role model: what each serving role may do in each tenant table under
-- each value of app.role, through which columns, and what the catalog lets
-- it do. Inside a tenant the restrictive tenant policy bounds every
-- permissive policy, but a permissive policy that admits more roles (USING
-- (true), a role list that grew) or a grant of a new command lets a role do
-- what the README says it may not: a viewer that creates products (issue 14,
-- item 2; DESIGN.md, leak vector 6). A grant of one more column does too:
-- UPDATE (tenant_id) moves a row to another tenant, UPDATE (role) on
-- api_keys raises a key's role (issue 14, security review). Three kinds of
-- finding:
--   policy-widens-role        a permissive policy admits an app.role to a
--                             command the model does not give it, and
--                             nothing else stops it;
--   grant-widens-role         a serving role holds (itself or through a role
--                             it can become) a command on a tenant table that
--                             the model gives it under no app.role, or the
--                             table is missing from the model;
--   column-grant-widens-role  a serving role can name a column (SELECT,
--                             INSERT, UPDATE, REFERENCES; itself or through a
--                             role it can become, granted on the column or
--                             the table) of a tenant table, the tenant
--                             registry or a table the model lists, that the
--                             model's columns do not give it; INSERT or
--                             UPDATE of a tenant table's tenant_id always,
--                             whatever the model says.
--
-- The model below is the one documented in README.md ("Roles inside a
-- tenant") and docs/SECURITY.md, kept here once: `rowfence audit` reads it
-- here, and audit.TestRoleMatrixMatchesTheModel compares it with what each
-- serving role can actually do, tried statement by statement, and
-- audit.TestColumnModelIsWhatTheMigrationsGrant its columns with the grants
-- of sql/migrations. Every other app.role value (unset, empty, unknown) may
-- do nothing. rowfence_platform always works as admin; its other rows are
-- what the same policies allow.
--
-- Each row: serving role, table, command, the app.role values it may run the
-- command under (NULL: the table is no tenant table and app.role does not
-- gate it: the registry, the platform keys, the cells and the moves, which only
-- rowfence_platform reaches), and the columns it may name in it (NULL: every column, a grant on
-- the table; '{}': none, nothing granted). Never tenant_id for INSERT or
-- UPDATE: the column defaults from the tenant setting.
--
-- How the catalog is read: a permissive policy applies to a serving role
-- when it is for PUBLIC or for a role the serving role can become. Its
-- expression admits the app.role values it names when it is, as PostgreSQL
-- prints it, exactly
--     (current_setting('app.role'::text, true) = <one or more literals>),
--     (tenant_id = CASE WHEN <that> THEN <tenant setting> ELSE NULL::uuid END), or
--     (<that> AND <anything>);
-- any other expression admits every value. A command is allowed under a
-- value when the serving role holds the privilege (on the table or a
-- column), some permissive policy admits the value for each clause the
-- command needs (USING for SELECT, UPDATE, DELETE; WITH CHECK, else USING,
-- for INSERT and UPDATE) and every restrictive one does too; on a table
-- without row level security, whenever the privilege is held (check 01
-- reports that table as well). A column privilege is held when
-- has_column_privilege says so for the serving role or any role it can
-- become (a grant to PUBLIC counts).
WITH role_model(serving_role, table_name, command, app_roles, columns) AS (
-- role model: begin
VALUES
    ('rowfence_app',      'public.products',         'SELECT', '{admin,member,viewer}'::text[], NULL::text[]),
    ('rowfence_app',      'public.products',         'INSERT', '{admin,member}',               '{name,description,price}'),
    ('rowfence_app',      'public.products',         'UPDATE', '{admin,member}',               '{name,description,price,updated_at}'),
    ('rowfence_app',      'public.products',         'DELETE', '{admin,member}',               NULL),
    ('rowfence_app',      'public.users',            'SELECT', '{admin,member,viewer,auth}',   NULL),
    ('rowfence_app',      'public.users',            'INSERT', '{admin}',                      '{name,email,role,external_id}'),
    ('rowfence_app',      'public.users',            'UPDATE', '{admin}',                      '{name,email,role,external_id,updated_at}'),
    ('rowfence_app',      'public.users',            'DELETE', '{admin}',                      NULL),
    ('rowfence_app',      'public.api_keys',         'SELECT', '{admin,auth}',                 NULL),
    ('rowfence_app',      'public.api_keys',         'INSERT', '{admin}',                      '{id,user_id,name,role,secret_hash,expires_at}'),
    ('rowfence_app',      'public.api_keys',         'UPDATE', '{admin,auth}',                 '{name,last_used_at,revoked_at}'),
    ('rowfence_app',      'public.api_keys',         'DELETE', '{}',                           '{}'),
    ('rowfence_app',      'public.exports',          'SELECT', '{admin}',                      NULL),
    ('rowfence_app',      'public.exports',          'INSERT', '{admin}',                      '{requested_by,expires_at}'),
    ('rowfence_app',      'public.exports',          'UPDATE', '{admin}',                      '{expires_at}'),
    ('rowfence_app',      'public.exports',          'DELETE', '{}',                           '{}'),
    ('rowfence_app',      'public.export_chunks',    'SELECT', '{admin}',                      NULL),
    ('rowfence_app',      'public.export_chunks',    'INSERT', '{}',                           '{}'),
    ('rowfence_app',      'public.export_chunks',    'UPDATE', '{}',                           '{}'),
    ('rowfence_app',      'public.export_chunks',    'DELETE', '{}',                           '{}'),
    ('rowfence_app',      'public.idempotency_keys', 'SELECT', '{admin,member,viewer}',        NULL),
    ('rowfence_app',      'public.idempotency_keys', 'INSERT', '{admin,member,viewer}',        '{key,request_hash,status,response_headers,response_body}'),
    ('rowfence_app',      'public.idempotency_keys', 'UPDATE', '{}',                           '{}'),
    ('rowfence_app',      'public.idempotency_keys', 'DELETE', '{admin,member,viewer}',        NULL),
    ('rowfence_platform', 'public.products',         'SELECT', '{admin,member,viewer}',        NULL),
    ('rowfence_platform', 'public.products',         'INSERT', '{}',                           '{}'),
    ('rowfence_platform', 'public.products',         'UPDATE', '{}',                           '{}'),
    ('rowfence_platform', 'public.products',         'DELETE', '{}',                           '{}'),
    ('rowfence_platform', 'public.users',            'SELECT', '{admin,member,viewer,auth}',   NULL),
    ('rowfence_platform', 'public.users',            'INSERT', '{admin}',                      '{name,email,role}'),
    ('rowfence_platform', 'public.users',            'UPDATE', '{}',                           '{}'),
    ('rowfence_platform', 'public.users',            'DELETE', '{}',                           '{}'),
    ('rowfence_platform', 'public.api_keys',         'SELECT', '{admin,auth}',                 NULL),
    ('rowfence_platform', 'public.api_keys',         'INSERT', '{admin}',                      '{id,user_id,name,role,secret_hash,expires_at}'),
    ('rowfence_platform', 'public.api_keys',         'UPDATE', '{}',                           '{}'),
    ('rowfence_platform', 'public.api_keys',         'DELETE', '{}',                           '{}'),
    ('rowfence_platform', 'public.exports',          'SELECT', '{admin}',                      NULL),
    ('rowfence_platform', 'public.exports',          'INSERT', '{}',                           '{}'),
    ('rowfence_platform', 'public.exports',          'UPDATE', '{admin}',                      '{status,error,counts,bytes,chunks,finished_at}'),
    ('rowfence_platform', 'public.exports',          'DELETE', '{admin}',                      NULL),
    ('rowfence_platform', 'public.export_chunks',    'SELECT', '{admin}',                      NULL),
    ('rowfence_platform', 'public.export_chunks',    'INSERT', '{admin}',                      '{export_id,seq,data}'),
    ('rowfence_platform', 'public.export_chunks',    'UPDATE', '{}',                           '{}'),
    ('rowfence_platform', 'public.export_chunks',    'DELETE', '{admin}',                      NULL),
    ('rowfence_platform', 'public.idempotency_keys', 'SELECT', '{admin,member,viewer}',        NULL),
    ('rowfence_platform', 'public.idempotency_keys', 'INSERT', '{}',                           '{}'),
    ('rowfence_platform', 'public.idempotency_keys', 'UPDATE', '{}',                           '{}'),
    ('rowfence_platform', 'public.idempotency_keys', 'DELETE', '{admin,member,viewer}',        NULL),
    ('rowfence_platform', 'public.tenants',          'SELECT', NULL,                           NULL),
    ('rowfence_platform', 'public.tenants',          'INSERT', NULL,                           NULL),
    ('rowfence_platform', 'public.tenants',          'UPDATE', NULL,                           NULL),
    ('rowfence_platform', 'public.tenants',          'DELETE', NULL,                           NULL),
    ('rowfence_platform', 'public.platform_keys',    'SELECT', NULL,                           NULL),
    ('rowfence_platform', 'public.platform_keys',    'INSERT', NULL,                           NULL),
    ('rowfence_platform', 'public.platform_keys',    'UPDATE', NULL,                           NULL),
    ('rowfence_platform', 'public.platform_keys',    'DELETE', NULL,                           '{}'),
    -- The catalog's list of tenant cells (00021_cells.sql): platform-only.
    ('rowfence_platform', 'public.cells',            'SELECT', NULL,                           NULL),
    ('rowfence_platform', 'public.cells',            'INSERT', NULL,                           NULL),
    ('rowfence_platform', 'public.cells',            'UPDATE', NULL,                           NULL),
    ('rowfence_platform', 'public.cells',            'DELETE', NULL,                           '{}'),
    -- The catalog's record of tenant moves (00022_tenant_moves.sql): platform-only.
    ('rowfence_platform', 'public.tenant_moves',     'SELECT', NULL,                           NULL),
    ('rowfence_platform', 'public.tenant_moves',     'INSERT', NULL,                           NULL),
    ('rowfence_platform', 'public.tenant_moves',     'UPDATE', NULL,                           NULL),
    ('rowfence_platform', 'public.tenant_moves',     'DELETE', NULL,                           '{}')
-- role model: end
), model AS (
    SELECT m.serving_role, m.table_name, m.command, r.app_role
    FROM role_model m CROSS JOIN unnest(m.app_roles) AS r(app_role)
), serving AS (
    SELECT r.oid, r.rolname::text AS rolname
    FROM pg_roles r
    WHERE r.rolname IN (SELECT serving_role FROM role_model)
), tenant_tables AS (
    SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS table_name, c.relrowsecurity
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
), commands(command, polcmd) AS (
    VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')
), clauses(command, clause) AS (
    VALUES ('SELECT', 'USING'), ('INSERT', 'WITH CHECK'), ('UPDATE', 'USING'), ('UPDATE', 'WITH CHECK'), ('DELETE', 'USING')
), patterns AS (
    -- The role gate, with the literals it compares with as its only
    -- capturing group, and the tenant setting as the folded form names it.
    SELECT '\(current_setting\(''app\.role''::text, true\) (= ''[^'']*''::text|= ANY \(ARRAY\[''[^'']*''::text(?:, ''[^'']*''::text)*\]\))\)' AS gate,
           '\(NULLIF\(current_setting\(''app\.tenant_id''::text, true\), ''''::text\)\)::uuid' AS tenant
), policies AS (
    -- One row per policy, command and clause it takes part in, with the
    -- app.role values its expression admits (NULL: every value).
    SELECT p.polrelid, p.polname::text AS polname, p.polpermissive, p.polroles, c.command, k.clause, e.expr,
           (SELECT array_agg(m[1]) FROM regexp_matches(g.literals, '''([^'']*)''::text', 'g') AS m) AS admits
    FROM pg_policy p
    JOIN commands c ON p.polcmd IN ('*', c.polcmd)
    JOIN clauses k ON k.command = c.command
    CROSS JOIN patterns
    CROSS JOIN LATERAL (
        SELECT regexp_replace(CASE k.clause WHEN 'USING' THEN pg_get_expr(p.polqual, p.polrelid)
                                   ELSE coalesce(pg_get_expr(p.polwithcheck, p.polrelid), pg_get_expr(p.polqual, p.polrelid)) END,
                              '\s+', ' ', 'g') AS expr) e
    CROSS JOIN LATERAL (
        SELECT coalesce(substring(e.expr FROM '^' || patterns.gate || '$'),
                        substring(e.expr FROM '^\(tenant_id = CASE WHEN ' || patterns.gate || ' THEN ' || patterns.tenant || ' ELSE NULL::uuid END\)$'),
                        substring(e.expr FROM '^\(' || patterns.gate || ' AND .*\)$')) AS literals) g
    WHERE e.expr IS NOT NULL -- a clause the policy leaves out adds nothing
), app_roles AS (
    -- The values tried: the model's, every literal a policy compares
    -- app.role with, and '' for every other value (unset, empty, unknown).
    SELECT app_role FROM model
    UNION SELECT unnest(admits) FROM policies
    UNION SELECT ''
), applies AS (
    SELECT s.rolname AS serving_role, t.table_name, t.relrowsecurity, p.*
    FROM policies p
    JOIN tenant_tables t ON t.oid = p.polrelid
    JOIN serving s ON p.polroles = '{0}' OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr(oid) WHERE pg_has_role(s.oid, pr.oid, 'MEMBER'))
), granted AS (
    -- Commands a serving role holds on a tenant table, itself or through a
    -- role it can become (SET ROLE works for any membership).
    SELECT s.rolname AS serving_role, t.oid, t.table_name, t.relrowsecurity, c.command,
           string_agg(DISTINCT b.rolname, ', ') FILTER (WHERE b.oid <> s.oid) AS through
    FROM serving s
    CROSS JOIN tenant_tables t
    CROSS JOIN commands c
    JOIN pg_roles b ON pg_has_role(s.oid, b.oid, 'MEMBER')
    WHERE has_table_privilege(b.oid, t.oid, c.command)
       OR (c.command IN ('SELECT', 'INSERT', 'UPDATE') AND has_any_column_privilege(b.oid, t.oid, c.command))
    GROUP BY s.rolname, t.oid, t.table_name, t.relrowsecurity, c.command
), verdicts AS (
    -- For each serving role, table, command, clause and app.role value:
    -- does some permissive policy admit it, and does every restrictive one?
    SELECT a.serving_role, a.polrelid, a.command, a.clause, r.app_role,
           bool_or(a.polpermissive AND (a.admits IS NULL OR r.app_role = ANY (a.admits))) AS permitted,
           bool_and(a.polpermissive OR a.admits IS NULL OR r.app_role = ANY (a.admits)) AS unrestricted
    FROM applies a
    CROSS JOIN app_roles r
    GROUP BY a.serving_role, a.polrelid, a.command, a.clause, r.app_role
), admitted AS (
    -- The values the policies let through every clause the command needs.
    SELECT v.serving_role, v.polrelid, v.command, v.app_role
    FROM verdicts v
    WHERE v.permitted AND v.unrestricted
    GROUP BY v.serving_role, v.polrelid, v.command, v.app_role
    HAVING count(*) = (SELECT count(*) FROM clauses k WHERE k.command = v.command)
), allowed AS (
    -- What the catalog lets each serving role do, under each app.role value.
    SELECT g.serving_role, g.table_name, g.command, r.app_role, g.through, g.relrowsecurity
    FROM granted g
    CROSS JOIN app_roles r
    WHERE NOT g.relrowsecurity
    UNION ALL
    SELECT g.serving_role, g.table_name, g.command, d.app_role, g.through, g.relrowsecurity
    FROM granted g
    JOIN admitted d ON d.serving_role = g.serving_role AND d.polrelid = g.oid AND d.command = g.command
    WHERE g.relrowsecurity
), model_commands AS (
    SELECT DISTINCT serving_role, table_name, command FROM model
), widened AS (
    SELECT a.*, mc.command IS NOT NULL AS command_in_model
    FROM allowed a
    LEFT JOIN model_commands mc ON mc.serving_role = a.serving_role AND mc.table_name = a.table_name AND mc.command = a.command
    LEFT JOIN model m ON m.serving_role = a.serving_role AND m.table_name = a.table_name
                     AND m.command = a.command AND m.app_role = a.app_role
    WHERE m.app_role IS NULL
), column_tables AS (
    -- Every tenant table, the tenant registry and every table the model
    -- lists: the tables whose columns the serving roles must not widen.
    SELECT t.oid, t.table_name, true AS tenant_table FROM tenant_tables t
    UNION
    SELECT c.oid, format('%I.%I', n.nspname, c.relname), false
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid IN (SELECT to_regclass(table_name) FROM role_model UNION SELECT to_regclass('public.tenants'))
      AND c.oid NOT IN (SELECT oid FROM tenant_tables)
), column_privileges AS (
    -- Each column a serving role can name with each privilege, itself or
    -- through a role it can become, and the model's columns for it.
    SELECT s.rolname AS serving_role, t.table_name, p.privilege, a.attnum, a.attname::text AS column_name,
           t.tenant_table AND a.attname = 'tenant_id' AND p.privilege IN ('INSERT', 'UPDATE') AS moves_tenant,
           string_agg(DISTINCT b.rolname, ', ') FILTER (WHERE b.oid <> s.oid) AS through
    FROM serving s
    CROSS JOIN column_tables t
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
    CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('REFERENCES')) AS p(privilege)
    JOIN pg_roles b ON pg_has_role(s.oid, b.oid, 'MEMBER')
    WHERE has_column_privilege(b.oid, t.oid, a.attnum, p.privilege)
    GROUP BY s.rolname, t.table_name, t.tenant_table, p.privilege, a.attnum, a.attname
), widened_columns AS (
    SELECT cp.*, m.columns AS model_columns, m.command IS NOT NULL AS command_in_model
    FROM column_privileges cp
    LEFT JOIN role_model m ON m.serving_role = cp.serving_role AND m.table_name = cp.table_name AND m.command = cp.privilege
    WHERE cp.moves_tenant
       OR m.command IS NULL
       OR NOT (m.columns IS NULL OR cp.column_name = ANY (m.columns))
)
-- The policies that let a role do more than the model says.
SELECT 'policy-widens-role' AS check_name,
       format('%s policy %I', table_name, polname) AS object,
       string_agg(cell, '; ' ORDER BY cell) || '; the role model (sql/audit/21_role_model.sql) does not allow it' AS detail
FROM (
    SELECT w.table_name, a.polname,
           format('%s under app.role %s may %s', w.serving_role,
                  CASE w.app_role WHEN '' THEN '(unset or unknown)' ELSE w.app_role END,
                  string_agg(DISTINCT w.command, ', ')) AS cell
    FROM widened w
    JOIN applies a ON a.serving_role = w.serving_role AND a.table_name = w.table_name AND a.command = w.command
                  AND a.polpermissive AND (a.admits IS NULL OR w.app_role = ANY (a.admits))
    WHERE w.command_in_model AND w.relrowsecurity
    GROUP BY w.table_name, a.polname, w.serving_role, w.app_role
) cells
GROUP BY table_name, polname
UNION ALL
-- Commands the model gives a serving role under no app.role at all, or on a
-- table it does not know, or on a table without row level security.
SELECT 'grant-widens-role' AS check_name,
       format('%s on %s', w.serving_role, w.table_name) AS object,
       format('%s%s under app.role %s; the role model (sql/audit/21_role_model.sql) %s',
              string_agg(DISTINCT w.command, ', '),
              CASE WHEN bool_or(w.through IS NOT NULL) THEN ' (through ' || string_agg(DISTINCT w.through, ', ') || ')' ELSE '' END,
              string_agg(DISTINCT CASE w.app_role WHEN '' THEN '(unset or unknown)' ELSE w.app_role END, ', '),
              CASE WHEN bool_and(w.relrowsecurity) THEN 'does not allow it' ELSE 'does not allow it, and row level security is off' END) AS detail
FROM widened w
WHERE NOT w.command_in_model OR NOT w.relrowsecurity
GROUP BY w.serving_role, w.table_name
UNION ALL
-- Columns beyond the model's, tenant_id written by a serving role first.
SELECT 'column-grant-widens-role' AS check_name,
       format('%s on %s', serving_role, table_name) AS object,
       format('%s%s; %sthe role model (sql/audit/21_role_model.sql) does not allow it',
              string_agg(cell, '; ' ORDER BY cell),
              CASE WHEN bool_or(through IS NOT NULL) THEN ' (through ' || string_agg(DISTINCT through, ', ') || ')' ELSE '' END,
              CASE WHEN bool_or(moves_tenant)
                   THEN 'tenant_id is the row''s tenant: a serving role that can INSERT or UPDATE it moves rows into another tenant, and none ever may; '
                   ELSE '' END) AS detail
FROM (
    SELECT serving_role, table_name, privilege,
           format('%s (%s), where the model gives %s', privilege, string_agg(quote_ident(column_name), ', ' ORDER BY attnum),
                  CASE WHEN NOT bool_and(command_in_model) OR min(model_columns) = '{}' THEN 'no column'
                       WHEN min(model_columns) IS NULL THEN 'every column but tenant_id'
                       ELSE 'only (' || array_to_string(min(model_columns), ', ') || ')' END) AS cell,
           bool_or(moves_tenant) AS moves_tenant,
           string_agg(DISTINCT through, ', ') AS through
    FROM widened_columns
    GROUP BY serving_role, table_name, privilege
) cells
GROUP BY serving_role, table_name
ORDER BY 1, 2;
