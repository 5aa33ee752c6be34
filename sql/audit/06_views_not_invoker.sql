-- Views run with their owner's rights unless security_invoker is set, so a
-- view over a tenant table can bypass the caller's RLS (leak vector 7).
SELECT 'view-not-security-invoker' AS check_name,
       format('%I.%I', n.nspname, c.relname) AS object,
       'owner ' || pg_get_userbyid(c.relowner) AS detail
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT coalesce('security_invoker=true' = ANY (c.reloptions) OR 'security_invoker=on' = ANY (c.reloptions), false)
ORDER BY 2;
