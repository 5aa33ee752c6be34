-- Permissive policies on tenant tables that do not check the tenant setting,
-- on a table that has no restrictive tenant policy to bound them.
-- Permissive policies OR together, so one USING (true) opens the table (leak
-- vector 6), unless a RESTRICTIVE policy ANDs the tenant check onto every
-- statement. A table is bounded when it has a restrictive policy FOR ALL, for
-- PUBLIC, that checks the tenant in USING and in WITH CHECK; then its
-- permissive policies may decide by role alone (sql/migrations/00004_auth.sql).
-- A policy without WITH CHECK uses its USING expression for writes. The
-- expression is matched whole as PostgreSQL prints the one in docs/DESIGN.md
-- ("Tenant tables"), or its form with the readers' roles folded in
-- (00010_role_in_tenant_policy.sql: tenant_id = CASE WHEN <role in a list>
-- THEN <tenant setting> END, which compares with NULL, so matches no row, for
-- any other role); a policy written any other way is reported for a person
-- to judge.
WITH tenant_tables AS (
    SELECT c.oid, n.nspname, c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
), tenant_check AS (
    -- The whole expression, after whitespace is collapsed: one comparison
    -- and nothing ORed or ANDed onto it.
    SELECT '^\(tenant_id = (' || t || '|CASE WHEN \(current_setting\(''app\.role''::text, true\) '
           || '(= ANY \(ARRAY\[''[a-z]+''::text(, ''[a-z]+''::text)*\]\)|= ''[a-z]+''::text)\) THEN '
           || t || ' ELSE NULL::uuid END)\)$' AS re
    FROM (SELECT '\(NULLIF\(current_setting\(''app\.tenant_id''::text, true\), ''''::text\)\)::uuid' AS t) tenant
), checks AS (
    SELECT p.*,
           regexp_replace(coalesce(p.qual, ''), '\s+', ' ', 'g') ~ c.re AS using_checks,
           regexp_replace(coalesce(p.with_check, p.qual, ''), '\s+', ' ', 'g') ~ c.re AS check_checks
    FROM pg_policies p
    CROSS JOIN tenant_check c
    JOIN tenant_tables t ON t.nspname = p.schemaname AND t.relname = p.tablename
), bounded AS (
    SELECT DISTINCT schemaname, tablename
    FROM checks
    WHERE permissive = 'RESTRICTIVE' AND cmd = 'ALL' AND roles = '{public}'
      AND using_checks AND check_checks
)
SELECT 'policy-without-tenant' AS check_name,
       format('%I.%I policy %I', p.schemaname, p.tablename, p.policyname) AS object,
       format('%s %s for %s; USING %s; WITH CHECK %s', p.permissive, p.cmd, array_to_string(p.roles, ','),
              coalesce(p.qual, '(none)'), coalesce(p.with_check, '(USING)')) AS detail
FROM checks p
WHERE p.permissive = 'PERMISSIVE'
  AND NOT EXISTS (SELECT 1 FROM bounded b WHERE b.schemaname = p.schemaname AND b.tablename = p.tablename)
  AND ((p.cmd IN ('ALL', 'SELECT', 'UPDATE', 'DELETE') AND NOT p.using_checks)
    OR (p.cmd IN ('ALL', 'INSERT', 'UPDATE') AND NOT p.check_checks))
ORDER BY 2;
