-- +goose Up
-- Tenant archives (issue 16, item 4). An inactive tenant's rows move into
-- an archive, its export of kind 'archive' (00019), kept by the platform,
-- exempt from the export quota and retention, and leave the live tables;
-- the tenant stays in the registry with status 'archived' (its requests get
-- 409 tenant-archived) until `rowfence tenant restore` puts them back.
-- Both run as the operator's tool (rowfence_owner, bound by FORCE ROW LEVEL
-- SECURITY), under the tenant's own setting (lifecycle/archive.go).
SET LOCAL ROLE rowfence_owner;

ALTER TABLE tenants DROP CONSTRAINT tenants_status_valid;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_valid CHECK (status IN ('active', 'suspended', 'deleting', 'archived'));

-- An archive is written by the archiving command itself, not by the
-- export job: only kind 'export' enqueues one.
DROP TRIGGER exports_enqueue ON exports;
CREATE TRIGGER exports_enqueue AFTER INSERT ON exports
    FOR EACH ROW WHEN (NEW.kind = 'export') EXECUTE FUNCTION enqueue_export();

-- Archiving deletes every user of the tenant, its last admin included: as
-- for the tenant's deletion, the last-admin rule (00014) does not hold for
-- a tenant being archived (its status is set first, in the same transaction).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION users_keep_an_admin() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.tenant_lookup(OLD.tenant_id, NULL) t WHERE t.status <> 'archived') THEN
        RETURN NULL; -- the tenant itself is being deleted, or archived
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

-- API keys are never deleted through the API (they are revoked), so no
-- policy admits DELETE on them; archiving moves them out, as the owner only
-- (no serving role can become rowfence_owner: audit check 20).
CREATE POLICY api_keys_archive ON api_keys FOR DELETE TO rowfence_owner
    USING (current_setting('app.role', true) = 'admin');
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP POLICY api_keys_archive ON api_keys;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION users_keep_an_admin() RETURNS trigger
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
DROP TRIGGER exports_enqueue ON exports;
CREATE TRIGGER exports_enqueue AFTER INSERT ON exports
    FOR EACH ROW EXECUTE FUNCTION enqueue_export();
ALTER TABLE tenants DROP CONSTRAINT tenants_status_valid;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_valid CHECK (status IN ('active', 'suspended', 'deleting'));
RESET ROLE;
