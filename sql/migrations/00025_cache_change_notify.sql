-- +goose Up
-- Every serve instance caches, per tenant, what its requests need before any
-- of the tenant's SQL: the tenant (status, slug, limits) and its verified
-- credentials (an API key's role, expiry and revocation; a user's role, and
-- the email or external id a token's subject maps to). A change to any of these, by the API of any instance or by
-- a DBA in SQL, announces the tenant's id on rowfence_change in the
-- change's own transaction (delivered at its commit, PostgreSQL
-- documentation, NOTIFY). Each instance LISTENs (package invalidation) and
-- forgets the tenant's cached entries at once; while it hears every change,
-- its caches keep entries for longer than AUTH_CACHE_TTL and
-- TENANT_CACHE_TTL, which otherwise bound how long a change takes to reach it.
--
-- Only columns that the caches hold announce: a key's last_used_at touch,
-- a user's name, a tenant's name are no change to them. TRUNCATE (which no
-- serving role may run) and changes made with session_replication_role =
-- replica fire none of these triggers: the 5 minutes an instance keeps an
-- entry bound them. DELETE (a key, a
-- user, a tenant and its cascade) announces once per tenant and statement,
-- from the statement's transition table, so a purge of a large tenant costs
-- one notification, not one per row. NOTIFY folds identical notifications
-- of one transaction into one. The payload is a tenant id and nothing else
-- (no key or user id): any role that may connect can LISTEN (leak vector
-- 12). Not SECURITY DEFINER; NOTIFY needs no privilege.
SET LOCAL ROLE rowfence_owner;
-- +goose StatementBegin
CREATE FUNCTION cache_change_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- tenants are keyed by id; the other tables by tenant_id.
    IF TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('rowfence_change', OLD.id::text);
    ELSIF TG_LEVEL = 'ROW' THEN
        PERFORM pg_notify('rowfence_change', OLD.tenant_id::text);
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('rowfence_change', d.id::text) FROM (SELECT DISTINCT o.id FROM old_rows o) d;
    ELSE
        PERFORM pg_notify('rowfence_change', d.tenant_id::text) FROM (SELECT DISTINCT o.tenant_id FROM old_rows o) d;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION cache_change_notify() FROM PUBLIC;

CREATE TRIGGER api_keys_cache_change AFTER UPDATE OF user_id, role, secret_hash, expires_at, revoked_at ON api_keys
    FOR EACH ROW WHEN ((OLD.user_id, OLD.role, OLD.secret_hash, OLD.expires_at, OLD.revoked_at)
                       IS DISTINCT FROM (NEW.user_id, NEW.role, NEW.secret_hash, NEW.expires_at, NEW.revoked_at))
    EXECUTE FUNCTION cache_change_notify();
CREATE TRIGGER api_keys_cache_delete AFTER DELETE ON api_keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cache_change_notify();

CREATE TRIGGER users_cache_change AFTER UPDATE OF role, email, external_id ON users
    FOR EACH ROW WHEN ((OLD.role, OLD.email, OLD.external_id) IS DISTINCT FROM (NEW.role, NEW.email, NEW.external_id))
    EXECUTE FUNCTION cache_change_notify();
CREATE TRIGGER users_cache_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cache_change_notify();

CREATE TRIGGER tenants_cache_change AFTER UPDATE OF slug, status, rate_limit, rate_burst, max_concurrency, statement_timeout_ms ON tenants
    FOR EACH ROW WHEN ((OLD.slug, OLD.status, OLD.rate_limit, OLD.rate_burst, OLD.max_concurrency, OLD.statement_timeout_ms)
                       IS DISTINCT FROM (NEW.slug, NEW.status, NEW.rate_limit, NEW.rate_burst, NEW.max_concurrency, NEW.statement_timeout_ms))
    EXECUTE FUNCTION cache_change_notify();
CREATE TRIGGER tenants_cache_delete AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cache_change_notify();
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TRIGGER tenants_cache_delete ON tenants;
DROP TRIGGER tenants_cache_change ON tenants;
DROP TRIGGER users_cache_delete ON users;
DROP TRIGGER users_cache_change ON users;
DROP TRIGGER api_keys_cache_delete ON api_keys;
DROP TRIGGER api_keys_cache_change ON api_keys;
DROP FUNCTION cache_change_notify();
RESET ROLE;
