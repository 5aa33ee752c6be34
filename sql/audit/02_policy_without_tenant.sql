-- Permissive policies on tenant tables that do not check the tenant setting
-- in USING and in WITH CHECK (when the command writes). Permissive policies
-- OR together, so one USING (true) opens the table (leak vector 6).
-- A policy without WITH CHECK uses its USING expression for writes. The
-- expression is matched as PostgreSQL prints the one in DESIGN.md; a policy
-- written any other way is reported for a person to judge.
SELECT 'policy-without-tenant' AS check_name,
       format('%I.%I policy %I', p.schemaname, p.tablename, p.policyname) AS object,
       format('%s %s for %s; USING %s; WITH CHECK %s', p.permissive, p.cmd, array_to_string(p.roles, ','),
              coalesce(p.qual, '(none)'), coalesce(p.with_check, '(USING)')) AS detail
FROM pg_policies p
JOIN pg_class c ON c.relname = p.tablename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
WHERE p.permissive = 'PERMISSIVE'
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
  AND (
        (p.cmd IN ('ALL', 'SELECT', 'UPDATE', 'DELETE')
         AND coalesce(p.qual, '') NOT LIKE '%tenant_id = (NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))::uuid%')
     OR (p.cmd IN ('ALL', 'INSERT', 'UPDATE')
         AND coalesce(p.with_check, p.qual, '') NOT LIKE '%tenant_id = (NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))::uuid%')
      )
ORDER BY 2;
