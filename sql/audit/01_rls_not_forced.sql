-- Tenant tables (any table with a tenant_id column) without ENABLE or FORCE
-- ROW LEVEL SECURITY. Without ENABLE nobody is filtered; without FORCE the
-- owner is not (leak vector 1).
SELECT 'rls-not-forced' AS check_name,
       format('%I.%I', n.nspname, c.relname) AS object,
       concat_ws(', ',
         CASE WHEN NOT c.relrowsecurity THEN 'row level security not enabled' END,
         CASE WHEN NOT c.relforcerowsecurity THEN 'row level security not forced' END) AS detail
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
  AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
ORDER BY 2;
