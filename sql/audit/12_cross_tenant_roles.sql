-- Roles that can read or change the tenant registry (public.tenants), other
-- than superusers and the owner and its members (the migrating role): each
-- sees across tenants, and deleting a tenant deletes every row it owns
-- (ON DELETE CASCADE). rowfence_platform, the platform administration path,
-- is the one `rowfence audit` accepts; anything else here is a defect.
SELECT 'cross-tenant-role' AS check_name,
       r.rolname::text AS object,
       format('%s on public.tenants%s', string_agg(p.priv, ', ' ORDER BY p.priv),
              CASE WHEN r.rolcanlogin THEN '; can log in' ELSE '' END) AS detail
FROM pg_roles r
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(priv)
WHERE to_regclass('public.tenants') IS NOT NULL
  AND NOT r.rolsuper
  AND r.rolname NOT LIKE 'pg\_%'
  AND r.rolname <> 'rowfence_owner'
  AND NOT EXISTS (SELECT 1 FROM pg_roles o WHERE o.rolname = 'rowfence_owner' AND pg_has_role(r.oid, o.oid, 'MEMBER'))
  AND has_table_privilege(r.oid, 'public.tenants', p.priv)
GROUP BY r.rolname, r.rolcanlogin
ORDER BY 2;
