-- Not a check: every policy, for the reader. Command, roles, permissive or
-- restrictive, and the expressions, one row per policy.
SELECT format('%I.%I', schemaname, tablename) AS table_name,
       policyname::text AS policy,
       cmd::text AS command,
       permissive::text AS kind,
       array_to_string(roles, ',') AS roles,
       coalesce(qual, '') AS using_expression,
       coalesce(with_check, '') AS with_check_expression
FROM pg_policies
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2;
