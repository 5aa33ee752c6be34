-- What the connected (serving) role can do beyond its own transaction
-- (db/reach.go; docs/SECURITY.md, leak vector 12 and "Beyond the
-- transaction"). Each query returns one row per finding: no row, nothing found.

-- name: ReachSessionDefaults :many
-- Session defaults stored for the login role, here or in every database:
-- ALTER ROLE <itself> SET …, which any role may run on itself and which every
-- later session of it starts with (a statement_timeout of 1ms, a read-only
-- default, a search_path). No privilege governs it, so it cannot be closed.
SELECT r.rolname::text AS role_name,
       CASE WHEN s.setdatabase = 0 THEN 'every database' ELSE 'database ' || pg_catalog.current_database() END::text AS scope,
       pg_catalog.array_to_string(s.setconfig, ', ')::text AS settings,
       CASE WHEN s.setdatabase = 0 THEN pg_catalog.format('ALTER ROLE %I RESET ALL', r.rolname)
            ELSE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET ALL', r.rolname, pg_catalog.current_database())
       END::text AS remedy
FROM pg_catalog.pg_db_role_setting s
JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
WHERE r.rolname = session_user
  AND (s.setdatabase = 0
       OR s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()))
ORDER BY s.setdatabase;

-- name: ReachCapabilities :many
-- What the role may still do that outlives or reaches past its transaction.
-- refuses: serve must not run with it. The others are PostgreSQL's grants to
-- PUBLIC that sql/migrations/00013_beyond_the_transaction.sql takes back when
-- the migrating role may; remedy is the statement that does it.
-- Every capability is asked of itself and of every role it can become, as
-- its current or its session user: SET ROLE works for any membership,
-- INHERIT or not (leak vector 11), so GRANT pg_monitor TO it reads every
-- session's statements.
WITH reach AS (
  SELECT r.oid FROM pg_catalog.pg_roles r
  WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') OR pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')
)
SELECT capability::text AS capability, detail::text AS detail, remedy::text AS remedy, refuses::boolean AS refuses
FROM (
  SELECT 'create-objects' AS capability,
         'may create schemas or objects that outlive its transaction, and a schema named after itself comes first in the default search_path' AS detail,
         'REVOKE CREATE ON DATABASE and ON SCHEMA … FROM it (and from PUBLIC)' AS remedy,
         true AS refuses
  WHERE EXISTS (SELECT 1 FROM reach r
                WHERE (pg_catalog.has_database_privilege(r.oid, pg_catalog.current_database(), 'CREATE')
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                                  WHERE n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast%'
                                    AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE'))))
  UNION ALL
  SELECT 'signal-backends',
         'may end or cancel the other sessions of its role (pg_terminate_backend, pg_cancel_backend): other tenants'' requests',
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint), pg_catalog.pg_cancel_backend(integer) FROM PUBLIC',
         false
  WHERE EXISTS (SELECT 1 FROM reach b
                WHERE pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_terminate_backend(integer, bigint)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_cancel_backend(integer)', 'EXECUTE'))
  UNION ALL
  SELECT 'session-advisory-locks',
         'may take advisory locks that outlive its transaction on a pooled connection, and hold back rowfence migrate',
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock, pg_try_advisory_lock_shared (each signature) FROM PUBLIC',
         false
  WHERE EXISTS (SELECT 1 FROM reach b
                WHERE pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_advisory_lock(bigint)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_advisory_lock(integer, integer)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_advisory_lock_shared(bigint)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_advisory_lock_shared(integer, integer)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_try_advisory_lock(bigint)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_try_advisory_lock(integer, integer)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_try_advisory_lock_shared(bigint)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_try_advisory_lock_shared(integer, integer)', 'EXECUTE'))
  UNION ALL
  SELECT 'temporary-tables',
         'may create temporary tables, which are searched before public: one made on a pooled connection stands in for a tenant table in later requests on it',
         'as the database owner: REVOKE TEMPORARY ON DATABASE ' || pg_catalog.quote_ident(pg_catalog.current_database()) || ' FROM PUBLIC',
         false
  WHERE EXISTS (SELECT 1 FROM reach b
                WHERE pg_catalog.has_database_privilege(b.oid, pg_catalog.current_database(), 'TEMPORARY'))
  UNION ALL
  SELECT 'large-objects',
         'may create large objects, stored outside every tenant table and its policies',
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC',
         false
  WHERE EXISTS (SELECT 1 FROM reach b
                WHERE pg_catalog.has_function_privilege(b.oid, 'pg_catalog.lo_create(oid)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.lo_creat(integer)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.lo_from_bytea(oid, bytea)', 'EXECUTE'))
  UNION ALL
  SELECT 'logical-messages',
         'may write messages to the WAL (pg_logical_emit_message), kept even when its transaction rolls back, that every logical-replication or change-data-capture consumer receives',
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text), pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC',
         false
  WHERE EXISTS (SELECT 1 FROM reach b
                WHERE pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_logical_emit_message(boolean, text, bytea)', 'EXECUTE'))
  UNION ALL
  SELECT 'session-activity',
         'may read the statements of the other sessions of its role (pg_stat_activity): other tenants'' requests',
         'as a superuser: REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer), pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC',
         false
  WHERE EXISTS (SELECT 1 FROM reach b
                WHERE pg_catalog.has_table_privilege(b.oid, 'pg_catalog.pg_stat_activity', 'SELECT')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_stat_get_activity(integer)', 'EXECUTE')
                   OR pg_catalog.has_function_privilege(b.oid, 'pg_catalog.pg_stat_get_backend_activity(integer)', 'EXECUTE'))
  UNION ALL
  SELECT 'other-databases',
         'may connect to other databases of the cluster: ' || pg_catalog.string_agg(d.datname, ', ' ORDER BY d.datname),
         'as their owners or a superuser: REVOKE CONNECT ON DATABASE … FROM PUBLIC',
         false
  FROM pg_catalog.pg_database d
  WHERE d.datallowconn AND d.datname <> pg_catalog.current_database()
    AND pg_catalog.has_database_privilege(d.oid, 'CONNECT') -- checked at login, as the login role
  HAVING count(*) > 0
  UNION ALL
  SELECT 'prepared-transactions',
         'may PREPARE TRANSACTION (max_prepared_transactions is ' || pg_catalog.current_setting('max_prepared_transactions') || '): its locks then outlive its session',
         'set max_prepared_transactions = 0 unless something needs two-phase commit',
         false
  WHERE pg_catalog.current_setting('max_prepared_transactions')::int > 0
) AS found
ORDER BY refuses DESC, capability;
