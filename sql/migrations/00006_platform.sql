-- +goose Up
-- Tenant lifecycle (issue 7): the platform administration path, separate from
-- every tenant credential, and offboarding with a grace period.
--
-- rowfence_platform is the one role that sees across tenants on purpose: it
-- reads and writes the tenant registry (create, suspend, delete, with the
-- foreign keys' ON DELETE CASCADE removing every row a deleted tenant owns),
-- and its own platform_keys. Its access to tenant tables is that of any
-- role: FORCE ROW LEVEL SECURITY and the policies bind it, so it writes a
-- tenant's rows only under that tenant's setting. `rowfence audit` lists it
-- as an accepted exception (sql/audit/12_cross_tenant_roles.sql).
-- +goose StatementBegin
DO $$
BEGIN
  BEGIN
    CREATE ROLE rowfence_platform LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rowfence_platform'
             AND (NOT rolcanlogin OR rolsuper OR rolbypassrls OR rolinherit)) THEN
    ALTER ROLE rowfence_platform LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
  END IF;
END
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA public TO rowfence_platform;

SET LOCAL ROLE rowfence_owner;

-- Offboarding: 'deleting' keeps the tenant's data but refuses its requests
-- until purge_after, when the purge deletes it (or an operator reactivates it).
ALTER TABLE tenants DROP CONSTRAINT tenants_status_valid;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_valid CHECK (status IN ('active', 'suspended', 'deleting'));
ALTER TABLE tenants ADD COLUMN purge_after timestamptz;
ALTER TABLE tenants ADD CONSTRAINT tenants_purge_after_when_deleting CHECK ((status = 'deleting') = (purge_after IS NOT NULL));
CREATE INDEX tenants_purge_after_idx ON tenants (purge_after) WHERE purge_after IS NOT NULL;

-- Platform administrators' keys: rfp_<key id>_<secret>, only a SHA-256 of the
-- 256-bit secret stored. Not a tenant table: no tenant_id, and no grant to
-- the app role at all.
CREATE TABLE platform_keys (
    id           uuid        NOT NULL PRIMARY KEY,
    name         text        NOT NULL DEFAULT '' CONSTRAINT platform_keys_name_length
                             CHECK (char_length(name) <= 200),
    secret_hash  bytea       NOT NULL CONSTRAINT platform_keys_secret_hash_length
                             CHECK (octet_length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
ALTER TABLE platform_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY platform_only ON platform_keys TO rowfence_platform USING (true) WITH CHECK (true);

-- tenants has RLS on and, so far, no policy: only the owner saw it. The
-- platform role sees it whole; that is its purpose.
CREATE POLICY platform_registry ON tenants TO rowfence_platform USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO rowfence_platform;
GRANT SELECT, INSERT, UPDATE ON platform_keys TO rowfence_platform;
-- Onboarding writes the first admin and key under the new tenant's setting.
GRANT SELECT ON users, products, api_keys TO rowfence_platform;
GRANT INSERT (name, email, role) ON users TO rowfence_platform;
GRANT INSERT (id, user_id, name, role, secret_hash, expires_at) ON api_keys TO rowfence_platform;
GRANT EXECUTE ON FUNCTION tenant_lookup(uuid, text) TO rowfence_platform;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
REVOKE ALL ON users, products, api_keys, tenants FROM rowfence_platform;
REVOKE EXECUTE ON FUNCTION tenant_lookup(uuid, text) FROM rowfence_platform;
DROP POLICY platform_registry ON tenants;
DROP TABLE platform_keys;
DROP INDEX tenants_purge_after_idx;
ALTER TABLE tenants DROP CONSTRAINT tenants_purge_after_when_deleting;
ALTER TABLE tenants DROP COLUMN purge_after;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_valid;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_valid CHECK (status IN ('active', 'suspended'));
RESET ROLE;
REVOKE USAGE ON SCHEMA public FROM rowfence_platform;
