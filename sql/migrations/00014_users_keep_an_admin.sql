-- +goose Up
-- A tenant that has an admin keeps one (issue #14 item 10): demoting or
-- deleting its last admin, through the API or in SQL as any role, fails with
-- check_violation on the pseudo-constraint users_last_admin (the API answers
-- 409 last-admin). Only the admins of the changed row's own tenant count.
--
-- Race-free: two admins demoting each other at once would each, on its own
-- snapshot, see the other still an admin. Every check of one tenant first
-- takes a transaction-level advisory lock on that tenant, so the checks run
-- one after the other. Under READ COMMITTED (rowfence's level and
-- PostgreSQL's default) the second check's statement takes a new snapshot
-- after the lock, so it sees the first one's commit; under REPEATABLE READ
-- and SERIALIZABLE the snapshot is older than the lock, so the check also
-- locks the admins it counts FOR SHARE, which fails with serialization_failure
-- (40001) when a concurrent transaction has changed one of them since.
--
-- A tenant's own deletion removes its users by ON DELETE CASCADE: the tenant
-- and its admins go together, and that is allowed. The check asks
-- tenant_lookup (00002), the one registry path both serving roles may
-- execute, whether the row's tenant still exists; a role that may not
-- execute it cannot demote or delete an admin at all (it fails closed).
--
-- SECURITY INVOKER: the check reads users as the role that changed them,
-- under that role's policies, so it sees no other tenant.
SET LOCAL ROLE rowfence_owner;

-- +goose StatementBegin
CREATE FUNCTION users_keep_an_admin() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.tenant_lookup(OLD.tenant_id, NULL)) THEN
        RETURN NULL; -- the tenant itself is being deleted
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('users_keep_an_admin:' || OLD.tenant_id::text, 14));
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM 1 FROM public.users WHERE tenant_id = OLD.tenant_id AND role = 'admin' FOR SHARE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.users WHERE tenant_id = OLD.tenant_id AND role = 'admin') THEN
        RAISE EXCEPTION 'the tenant''s last admin cannot be demoted or deleted'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_last_admin',
                  SCHEMA = 'public', TABLE = 'users',
                  HINT = 'make another user admin first';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION users_keep_an_admin() FROM PUBLIC;

-- AFTER ROW triggers fire at the end of the statement, so a statement that
-- demotes one admin and promotes another is judged by its outcome.
CREATE TRIGGER users_keep_an_admin_update AFTER UPDATE OF role ON users
    FOR EACH ROW WHEN (OLD.role = 'admin' AND NEW.role IS DISTINCT FROM 'admin')
    EXECUTE FUNCTION users_keep_an_admin();
CREATE TRIGGER users_keep_an_admin_delete AFTER DELETE ON users
    FOR EACH ROW WHEN (OLD.role = 'admin')
    EXECUTE FUNCTION users_keep_an_admin();
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TRIGGER users_keep_an_admin_delete ON users;
DROP TRIGGER users_keep_an_admin_update ON users;
DROP FUNCTION users_keep_an_admin();
RESET ROLE;
