-- +goose Up
-- Authenticated tenancy (issue 4): roles inside a tenant, enforced by
-- PostgreSQL, and API keys.
--
-- Each unit of work now sets two values in the same set_config statement
-- (db/scope.go): app.tenant_id and app.role. app.role is one of
--   admin   everything in its tenant, manages users and API keys;
--   member  reads everything but keys, creates and changes products;
--   viewer  reads products and users, writes nothing;
--   auth    the credential check itself: reads one key or user, stamps
--           last_used_at; never used for a client's request.
-- An unset or unknown role matches no permissive policy: no rows, no writes.
--
-- The tenant policy becomes AS RESTRICTIVE: it is ANDed with whatever the
-- permissive role policies allow, so no role policy, present or future, can
-- ever widen access beyond the tenant (docs/DESIGN.md, "Known ways RLS
-- leaks", vector 6).
SET LOCAL ROLE rowfence_owner;

-- One migration is one transaction: no moment without a tenant policy.
DROP POLICY tenant_isolation ON users;
CREATE POLICY tenant_isolation ON users AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- One permissive policy per command, naming the roles allowed to run it.
CREATE POLICY users_select ON users FOR SELECT
    USING (current_setting('app.role', true) IN ('admin', 'member', 'viewer', 'auth'));
CREATE POLICY users_insert ON users FOR INSERT
    WITH CHECK (current_setting('app.role', true) = 'admin');
CREATE POLICY users_update ON users FOR UPDATE
    USING (current_setting('app.role', true) = 'admin')
    WITH CHECK (current_setting('app.role', true) = 'admin');
CREATE POLICY users_delete ON users FOR DELETE
    USING (current_setting('app.role', true) = 'admin');

DROP POLICY tenant_isolation ON products;
CREATE POLICY tenant_isolation ON products AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY products_select ON products FOR SELECT
    USING (current_setting('app.role', true) IN ('admin', 'member', 'viewer'));
CREATE POLICY products_insert ON products FOR INSERT
    WITH CHECK (current_setting('app.role', true) IN ('admin', 'member'));
CREATE POLICY products_update ON products FOR UPDATE
    USING (current_setting('app.role', true) IN ('admin', 'member'))
    WITH CHECK (current_setting('app.role', true) IN ('admin', 'member'));
CREATE POLICY products_delete ON products FOR DELETE
    USING (current_setting('app.role', true) IN ('admin', 'member'));

-- API keys. A key is rfk_<tenant id>_<key id>_<secret> (auth/apikey.go): the
-- tenant comes from the key itself, so looking it up runs under that tenant's
-- setting like any request, and needs no path that sees across tenants. Only
-- a SHA-256 of the 256-bit secret is stored; the id is chosen by the server
-- because it is part of the key.
CREATE TABLE api_keys (
    tenant_id    uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                             REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    name         text        NOT NULL DEFAULT '' CONSTRAINT api_keys_name_length
                             CHECK (char_length(name) <= 200),
    role         text        NOT NULL CONSTRAINT api_keys_role_valid
                             CHECK (role IN ('admin', 'member', 'viewer')),
    secret_hash  bytea       NOT NULL CONSTRAINT api_keys_secret_hash_length
                             CHECK (octet_length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- Composite: a key can only name a user of its own tenant. Deleting the
    -- user deletes their keys.
    CONSTRAINT api_keys_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_tenant_created_idx ON api_keys (tenant_id, created_at, id);
CREATE INDEX api_keys_tenant_user_idx ON api_keys (tenant_id, user_id);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- Admins manage keys; the credential check (auth) reads the key it was
-- shown and stamps last_used_at on a live key. auth can neither revoke a key
-- nor bring a revoked one back (both sides require revoked_at IS NULL), and
-- the column grants below keep role, secret and user immutable for everyone.
-- Keys are revoked, never deleted: no DELETE grant or policy.
CREATE POLICY api_keys_select ON api_keys FOR SELECT
    USING (current_setting('app.role', true) IN ('admin', 'auth'));
CREATE POLICY api_keys_insert ON api_keys FOR INSERT
    WITH CHECK (current_setting('app.role', true) = 'admin');
CREATE POLICY api_keys_update ON api_keys FOR UPDATE
    USING (current_setting('app.role', true) = 'admin')
    WITH CHECK (current_setting('app.role', true) = 'admin');
CREATE POLICY api_keys_auth_touch ON api_keys FOR UPDATE
    USING (current_setting('app.role', true) = 'auth' AND revoked_at IS NULL)
    WITH CHECK (current_setting('app.role', true) = 'auth' AND revoked_at IS NULL);

GRANT SELECT ON api_keys TO rowfence_app;
GRANT INSERT (id, user_id, name, role, secret_hash, expires_at) ON api_keys TO rowfence_app;
GRANT UPDATE (name, last_used_at, revoked_at) ON api_keys TO rowfence_app;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TABLE api_keys;
DROP POLICY products_delete ON products;
DROP POLICY products_update ON products;
DROP POLICY products_insert ON products;
DROP POLICY products_select ON products;
DROP POLICY tenant_isolation ON products;
CREATE POLICY tenant_isolation ON products
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
DROP POLICY users_delete ON users;
DROP POLICY users_update ON users;
DROP POLICY users_insert ON users;
DROP POLICY users_select ON users;
DROP POLICY tenant_isolation ON users;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
RESET ROLE;
