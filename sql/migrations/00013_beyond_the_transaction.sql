-- +goose Up
-- What the serving roles (rowfence_app, rowfence_platform) could do beyond
-- their own transaction, reaching every tenant without reading a row
-- (docs/SECURITY.md, "Beyond the transaction"; leak vector 12).
-- PostgreSQL grants each of these to PUBLIC; this takes them back where the
-- migrating role may:
--
--   TEMPORARY on the database      (its owner, or a superuser): a temporary
--       table is searched before public, so one made on a pooled connection
--       would stand in for a tenant table in every later request on it;
--   pg_terminate_backend,
--   pg_cancel_backend              (a superuser: pg_catalog's functions are
--       the bootstrap superuser's): end or cancel the other sessions of the
--       same role, i.e. other tenants' requests;
--   session-level advisory locks   (a superuser): a lock held on a pooled
--       connection outlives the request and can hold back `rowfence
--       migrate` (goose's lock). The transaction-level ones stay: the app
--       role's idempotency keys use them, and they end with the transaction;
--   lo_create, lo_creat,
--   lo_from_bytea                  (a superuser): large objects are owned by
--       the role, outside every tenant table and its policies;
--   pg_stat_activity and the
--   functions behind it            (a superuser): the text of the same role's
--       other sessions' statements, i.e. other tenants' requests (their
--       values, with pgx's simple protocol). pg_read_all_stats (and so
--       pg_monitor) keeps them for monitoring;
--   pg_logical_emit_message       (a superuser): a message written to the
--       WAL, outside every transaction when non-transactional (a rollback
--       keeps it), of any size, that every logical-replication or
--       change-data-capture consumer of the database receives.
--
-- Each revoke applies to this database only (pg_catalog and the database's
-- ACL are per database). Run by a migrating role that is neither, a revoke
-- is skipped: `serve` then warns at start, and `rowfence audit` reports it
-- (sql/audit/14_serving_role_reach.sql) with the statement that closes it.
-- Neither serving role is granted any of them back: they need none.
-- +goose StatementBegin
DO $$
DECLARE
  is_super boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
  is_owner boolean := pg_catalog.pg_has_role(current_user,
                        (SELECT datdba FROM pg_catalog.pg_database WHERE datname = current_database()), 'MEMBER');
BEGIN
  IF is_super OR is_owner THEN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  END IF;
  IF is_super THEN
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
                               pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint),
                               pg_catalog.pg_advisory_lock(integer, integer),
                               pg_catalog.pg_advisory_lock_shared(bigint),
                               pg_catalog.pg_advisory_lock_shared(integer, integer),
                               pg_catalog.pg_try_advisory_lock(bigint),
                               pg_catalog.pg_try_advisory_lock(integer, integer),
                               pg_catalog.pg_try_advisory_lock_shared(bigint),
                               pg_catalog.pg_try_advisory_lock_shared(integer, integer) FROM PUBLIC;
    -- The migrating role takes goose's session lock; it acts as the owner.
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint),
                              pg_catalog.pg_advisory_lock(integer, integer),
                              pg_catalog.pg_advisory_lock_shared(bigint),
                              pg_catalog.pg_advisory_lock_shared(integer, integer),
                              pg_catalog.pg_try_advisory_lock(bigint),
                              pg_catalog.pg_try_advisory_lock(integer, integer),
                              pg_catalog.pg_try_advisory_lock_shared(bigint),
                              pg_catalog.pg_try_advisory_lock_shared(integer, integer) TO rowfence_owner;
    REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid),
                               pg_catalog.lo_creat(integer),
                               pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC;
    REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer),
                               pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text),
                               pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;
    GRANT SELECT ON pg_catalog.pg_stat_activity TO pg_read_all_stats;
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer),
                              pg_catalog.pg_stat_get_backend_activity(integer) TO pg_read_all_stats;
  END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
  is_super boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
  is_owner boolean := pg_catalog.pg_has_role(current_user,
                        (SELECT datdba FROM pg_catalog.pg_database WHERE datname = current_database()), 'MEMBER');
BEGIN
  IF is_super OR is_owner THEN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
  END IF;
  IF is_super THEN
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
                              pg_catalog.pg_cancel_backend(integer) TO PUBLIC;
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint),
                              pg_catalog.pg_advisory_lock(integer, integer),
                              pg_catalog.pg_advisory_lock_shared(bigint),
                              pg_catalog.pg_advisory_lock_shared(integer, integer),
                              pg_catalog.pg_try_advisory_lock(bigint),
                              pg_catalog.pg_try_advisory_lock(integer, integer),
                              pg_catalog.pg_try_advisory_lock_shared(bigint),
                              pg_catalog.pg_try_advisory_lock_shared(integer, integer) TO PUBLIC;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint),
                               pg_catalog.pg_advisory_lock(integer, integer),
                               pg_catalog.pg_advisory_lock_shared(bigint),
                               pg_catalog.pg_advisory_lock_shared(integer, integer),
                               pg_catalog.pg_try_advisory_lock(bigint),
                               pg_catalog.pg_try_advisory_lock(integer, integer),
                               pg_catalog.pg_try_advisory_lock_shared(bigint),
                               pg_catalog.pg_try_advisory_lock_shared(integer, integer) FROM rowfence_owner;
    GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid),
                              pg_catalog.lo_creat(integer),
                              pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC;
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text),
                              pg_catalog.pg_logical_emit_message(boolean, text, bytea) TO PUBLIC;
    GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC;
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer),
                              pg_catalog.pg_stat_get_backend_activity(integer) TO PUBLIC;
    REVOKE SELECT ON pg_catalog.pg_stat_activity FROM pg_read_all_stats;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer),
                               pg_catalog.pg_stat_get_backend_activity(integer) FROM pg_read_all_stats;
  END IF;
END
$$;
-- +goose StatementEnd
