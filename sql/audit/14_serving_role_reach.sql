-- What a serving role (rowfence_app, rowfence_platform) may still do beyond
-- its own transaction, reaching other tenants without reading their rows
-- (leak vector 12). PostgreSQL grants each to PUBLIC; migration 00013 takes
-- them back where the migrating role may (a superuser; the database's owner
-- for TEMPORARY), so a finding here names the statement that closes it.
-- Creating objects is never granted by rowfence: `serve` refuses it.
WITH serving AS (
  SELECT r.oid, r.rolname FROM pg_roles r WHERE r.rolname IN ('rowfence_app', 'rowfence_platform')
), becomes AS (
  -- Each serving role with itself and every role it can become: SET ROLE
  -- works for any membership, INHERIT or not (leak vector 11), so GRANT
  -- pg_monitor TO rowfence_app reads every session's statements.
  SELECT s.oid AS serving, b.oid FROM serving s JOIN pg_roles b ON pg_has_role(s.oid, b.oid, 'MEMBER')
), reach (capability, present, remedy, rolname) AS (
  -- Itself or any role it can become (SET ROLE works for any membership).
  SELECT 'create-objects',
         EXISTS (SELECT 1 FROM pg_roles b
                 WHERE pg_has_role(s.oid, b.oid, 'MEMBER')
                   AND (has_database_privilege(b.oid, current_database(), 'CREATE')
                        OR EXISTS (SELECT 1 FROM pg_namespace n
                                   WHERE n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast%'
                                     AND has_schema_privilege(b.oid, n.oid, 'CREATE')))),
         'REVOKE CREATE ON DATABASE and ON SCHEMA … FROM it and from PUBLIC', s.rolname
  FROM serving s
  UNION ALL
  SELECT 'signal-backends',
         EXISTS (SELECT 1 FROM becomes b WHERE b.serving = s.oid
                   AND (has_function_privilege(b.oid, 'pg_catalog.pg_terminate_backend(integer, bigint)', 'EXECUTE')
                        OR has_function_privilege(b.oid, 'pg_catalog.pg_cancel_backend(integer)', 'EXECUTE'))),
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint), pg_catalog.pg_cancel_backend(integer) FROM PUBLIC', s.rolname
  FROM serving s
  UNION ALL
  SELECT 'session-advisory-locks',
         bool_or(EXISTS (SELECT 1 FROM becomes b WHERE b.serving = s.oid AND has_function_privilege(b.oid, f, 'EXECUTE'))),
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock, pg_advisory_lock_shared, pg_try_advisory_lock, pg_try_advisory_lock_shared (each signature) FROM PUBLIC', s.rolname
  FROM serving s
  CROSS JOIN unnest(ARRAY['pg_catalog.pg_advisory_lock(bigint)', 'pg_catalog.pg_advisory_lock(integer, integer)',
                          'pg_catalog.pg_advisory_lock_shared(bigint)', 'pg_catalog.pg_advisory_lock_shared(integer, integer)',
                          'pg_catalog.pg_try_advisory_lock(bigint)', 'pg_catalog.pg_try_advisory_lock(integer, integer)',
                          'pg_catalog.pg_try_advisory_lock_shared(bigint)', 'pg_catalog.pg_try_advisory_lock_shared(integer, integer)']) AS f
  GROUP BY s.rolname
  UNION ALL
  SELECT 'temporary-tables',
         EXISTS (SELECT 1 FROM becomes b WHERE b.serving = s.oid AND has_database_privilege(b.oid, current_database(), 'TEMPORARY')),
         format('as the database owner: REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()), s.rolname
  FROM serving s
  UNION ALL
  SELECT 'large-objects',
         EXISTS (SELECT 1 FROM becomes b WHERE b.serving = s.oid
                   AND (has_function_privilege(b.oid, 'pg_catalog.lo_create(oid)', 'EXECUTE')
                        OR has_function_privilege(b.oid, 'pg_catalog.lo_creat(integer)', 'EXECUTE')
                        OR has_function_privilege(b.oid, 'pg_catalog.lo_from_bytea(oid, bytea)', 'EXECUTE'))),
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC', s.rolname
  FROM serving s
  UNION ALL
  SELECT 'logical-messages',
         EXISTS (SELECT 1 FROM becomes b WHERE b.serving = s.oid
                   AND (has_function_privilege(b.oid, 'pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')
                        OR has_function_privilege(b.oid, 'pg_catalog.pg_logical_emit_message(boolean, text, bytea)', 'EXECUTE'))),
         'as a superuser: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text), pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC', s.rolname
  FROM serving s
  UNION ALL
  SELECT 'session-activity',
         EXISTS (SELECT 1 FROM becomes b WHERE b.serving = s.oid
                   AND (has_table_privilege(b.oid, 'pg_catalog.pg_stat_activity', 'SELECT')
                        OR has_function_privilege(b.oid, 'pg_catalog.pg_stat_get_activity(integer)', 'EXECUTE')
                        OR has_function_privilege(b.oid, 'pg_catalog.pg_stat_get_backend_activity(integer)', 'EXECUTE'))),
         'as a superuser: REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer), pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC', s.rolname
  FROM serving s
  UNION ALL
  SELECT 'prepared-transactions',
         current_setting('max_prepared_transactions')::int > 0,
         'set max_prepared_transactions = 0 unless something needs two-phase commit', s.rolname
  FROM serving s
)
SELECT 'serving-role-reach' AS check_name,
       format('%s %s', rolname, capability) AS object,
       remedy AS detail
FROM reach
WHERE present
ORDER BY 2;
