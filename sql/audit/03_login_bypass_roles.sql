-- Roles that can log in and are, or can become through membership, a
-- superuser or BYPASSRLS role: every such login skips RLS (leak vector 1).
-- The bootstrap superuser (the cluster's installing role) is always listed;
-- `rowfence audit` accepts it as the DBA's own account.
SELECT 'login-bypasses-rls' AS check_name,
       r.rolname::text AS object,
       concat_ws('; ',
         CASE WHEN b.rolsuper THEN format('superuser via %s', b.rolname) END,
         CASE WHEN b.rolbypassrls THEN format('BYPASSRLS via %s', b.rolname) END,
         CASE WHEN r.oid = 10 THEN 'bootstrap superuser' END,
         (SELECT 'member of ' || string_agg(g.rolname, ', ' ORDER BY g.rolname)
            FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)) AS detail
FROM pg_roles r
JOIN pg_roles b ON pg_has_role(r.oid, b.oid, 'USAGE')
WHERE r.rolcanlogin
  AND (b.rolsuper OR b.rolbypassrls)
ORDER BY 2, 3;
