-- The actual command x role matrix of every tenant table, for each serving
-- role and each app.role value (the documented ones, every literal a policy
-- compares app.role with, and values no policy should admit), under tenant A
-- and under no tenant, tried by pg_temp.rowfence_try (role_matrix_setup.sql)
-- as the serving role and as every role it can become (SET ROLE works for
-- any membership): a command is allowed when any of them may run it.
WITH tenant_tables AS (
    SELECT c.oid::regclass AS tbl, format('%I.%I', n.nspname, c.relname) AS table_name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
), app_roles AS (
    SELECT unnest(ARRAY['admin', 'member', 'viewer', 'auth', 'unknown', 'Admin', '']) AS app_role
    UNION
    SELECT (regexp_matches(coalesce(qual, '') || ' ' || coalesce(with_check, ''), '''([^'']*)''::text', 'g'))[1]
    FROM pg_policies
), tenants(label, tenant) AS (
    VALUES ('tenant A', 'a0000000-0000-4000-8000-00000000000a'), ('no tenant', '')
), tries AS (
    SELECT s.serving_role, t.table_name, c.command, r.app_role, tn.label,
           pg_temp.rowfence_try(b.rolname, t.tbl, 'a0000000-0000-4000-8000-00000000000a', tn.tenant, r.app_role, c.command)
           || CASE WHEN b.rolname <> s.serving_role THEN ' (as ' || b.rolname || ')' ELSE '' END AS outcome
    FROM (VALUES ('rowfence_app'), ('rowfence_platform')) AS s(serving_role)
    JOIN pg_roles b ON pg_has_role(s.serving_role, b.oid, 'MEMBER')
    CROSS JOIN tenant_tables t
    CROSS JOIN app_roles r
    CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE')) AS c(command)
    CROSS JOIN tenants tn
)
SELECT serving_role, table_name, command, app_role, label,
       coalesce(min(outcome) FILTER (WHERE outcome LIKE 'allowed%'), min(outcome)) AS outcome
FROM tries
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5;
