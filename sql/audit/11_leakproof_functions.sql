-- Functions outside the system catalogs marked LEAKPROOF. The planner pushes
-- leakproof functions below the policy, where they see other tenants' rows;
-- only a superuser can mark one, and rowfence marks none (leak vector 9).
SELECT 'leakproof-function' AS check_name,
       format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS object,
       'owner ' || pg_get_userbyid(p.proowner) AS detail
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.proleakproof
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2;
