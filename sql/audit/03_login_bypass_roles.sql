-- Roles that can log in and are, or can become, a superuser, a BYPASSRLS
-- role, or one of the predefined roles that act as the server's operating
-- system user (pg_execute_server_program, pg_read_server_files,
-- pg_write_server_files; PostgreSQL docs, "Predefined Roles": as good as a
-- superuser): every such login gets around RLS (leak vectors 1 and 11).
-- "Can become" is membership at any depth, INHERIT or not: SET ROLE works
-- for every role a login is a member of, so pg_has_role(…, 'MEMBER'), never
-- 'USAGE' (which says no for a NOINHERIT member). A superuser login is listed
-- once, for itself. The bootstrap superuser (the cluster's installing role)
-- is always listed; `rowfence audit` accepts it as the DBA's own account.
SELECT 'login-bypasses-rls' AS check_name,
       r.rolname::text AS object,
       concat_ws('; ',
         CASE WHEN b.rolsuper THEN format('superuser via %s', b.rolname) END,
         CASE WHEN b.rolbypassrls THEN format('BYPASSRLS via %s', b.rolname) END,
         CASE WHEN b.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files')
              THEN format('acts as the server''s operating system user via %s', b.rolname) END,
         CASE WHEN b.oid <> r.oid THEN format('SET ROLE %s works for it', b.rolname) END,
         CASE WHEN r.oid = 10 THEN 'bootstrap superuser' END,
         (SELECT 'member of ' || string_agg(g.rolname, ', ' ORDER BY g.rolname)
            FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)) AS detail
FROM pg_roles r
JOIN pg_roles b ON pg_has_role(r.oid, b.oid, 'MEMBER')
WHERE r.rolcanlogin
  AND (b.rolsuper OR b.rolbypassrls
       OR b.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
  AND (NOT r.rolsuper OR b.oid = r.oid)
ORDER BY 2, 3;
