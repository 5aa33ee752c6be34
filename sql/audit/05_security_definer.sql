-- SECURITY DEFINER functions run as their owner, who is not bound by the
-- policies of the caller (leak vector 7). Each one is a cross-tenant path;
-- one without a pinned search_path can also be hijacked by the caller.
-- The detail ends with who may execute it (direct grants, PUBLIC included;
-- a function nobody granted is PUBLIC's by default): `rowfence audit`
-- accepts tenant_lookup and enqueue_export only while that list is exactly
-- the documented one.
SELECT 'security-definer' AS check_name,
       format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS object,
       concat_ws('; ', 'owner ' || pg_get_userbyid(p.proowner),
         CASE WHEN EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%')
              THEN 'search_path pinned' ELSE 'search_path NOT pinned' END,
         'EXECUTE: ' || coalesce(
           (SELECT string_agg(g.name, ', ' ORDER BY g.name)
            FROM (SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS name
                  FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner) g),
           'nobody but its owner')) AS detail
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2;
