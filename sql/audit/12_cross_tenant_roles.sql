-- Roles that can read or change the tenant registry (public.tenants),
-- themselves or through a role they can become (SET ROLE works for any
-- membership, INHERIT or not), on the table or on one of its columns
-- (has_table_privilege does not count a column grant: GRANT UPDATE (status)
-- suspends any tenant), other than superusers and the owner and its
-- members (the migrating role; check 20 lists those that can log in): each
-- sees across tenants, and deleting a tenant deletes every row it owns
-- (ON DELETE CASCADE). rowfence_platform, the platform administration path,
-- is the one `rowfence audit` accepts; anything else here is a defect, a
-- serving role that can become rowfence_platform included.
SELECT 'cross-tenant-role' AS check_name,
       r.rolname::text AS object,
       format('%s on public.tenants%s%s', string_agg(DISTINCT p.label, ', '),
              CASE WHEN bool_or(b.oid <> r.oid)
                   THEN ' through ' || string_agg(DISTINCT b.rolname, ', ') FILTER (WHERE b.oid <> r.oid) || ' (SET ROLE)'
                   ELSE '' END,
              CASE WHEN r.rolcanlogin THEN '; can log in' ELSE '' END) AS detail
FROM pg_roles r
JOIN pg_roles b ON pg_has_role(r.oid, b.oid, 'MEMBER')
CROSS JOIN LATERAL (
    SELECT priv,
           CASE WHEN has_table_privilege(b.oid, to_regclass('public.tenants'), priv) THEN priv
                ELSE priv || ' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                      FROM pg_attribute a
                                      WHERE a.attrelid = to_regclass('public.tenants') AND a.attnum > 0 AND NOT a.attisdropped
                                        AND has_column_privilege(b.oid, a.attrelid, a.attnum, priv)) || ')'
           END AS label
    FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS u(priv)
    WHERE to_regclass('public.tenants') IS NOT NULL
      AND (has_table_privilege(b.oid, to_regclass('public.tenants'), priv)
           OR (priv <> 'DELETE' AND has_any_column_privilege(b.oid, to_regclass('public.tenants'), priv)))
) p
WHERE NOT r.rolsuper
  AND r.rolname NOT LIKE 'pg\_%'
  AND r.rolname <> 'rowfence_owner'
  AND NOT EXISTS (SELECT 1 FROM pg_roles o WHERE o.rolname = 'rowfence_owner' AND pg_has_role(r.oid, o.oid, 'MEMBER'))
GROUP BY r.rolname, r.rolcanlogin
ORDER BY 2;
