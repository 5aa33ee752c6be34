-- Session defaults stored for a serving role (rowfence_app,
-- rowfence_platform), in this database or in every database: ALTER ROLE
-- <itself> SET needs no privilege, so the role can give every later session
-- of itself a statement_timeout of 1ms, a read-only default or a search_path,
-- reaching every tenant's requests (leak vector 12). `serve` refuses to
-- start, and /readyz fails, while there are any; remove them with ALTER ROLE
-- … RESET ALL and put settings in the connection string.
SELECT 'role-session-defaults' AS check_name,
       r.rolname::text AS object,
       format('%s: %s (ALTER ROLE %I%s RESET ALL)',
              CASE WHEN s.setdatabase = 0 THEN 'every database' ELSE 'this database' END,
              array_to_string(s.setconfig, ', '), r.rolname,
              CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' IN DATABASE %I', current_database()) END) AS detail
FROM pg_db_role_setting s
JOIN pg_roles r ON r.oid = s.setrole
WHERE r.rolname IN ('rowfence_app', 'rowfence_platform')
  AND (s.setdatabase = 0 OR s.setdatabase = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
ORDER BY 2, 3;
