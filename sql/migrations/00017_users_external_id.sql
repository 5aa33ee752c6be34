-- +goose Up
-- A user's identity at an external identity provider (issue #17 item 2): the
-- subject (`sub`, or the configured JWT_USER_CLAIM) of the provider's tokens,
-- when JWT_SUBJECT_MAPPING=external_id. Unique per tenant, never globally:
-- one tenant must not learn which subjects another one has (as for email,
-- 00003). NULL: the user signs in otherwise. The length is OpenID Connect
-- Core 1.0 section 2's bound on sub (255 ASCII characters); the characters
-- are textrule.ExternalID's (visible ASCII), checked before any SQL.
SET LOCAL ROLE rowfence_owner;

ALTER TABLE users ADD COLUMN external_id text
    CONSTRAINT users_external_id_length CHECK (char_length(external_id) BETWEEN 1 AND 255);
-- Leads with tenant_id, as every index of a tenant table (leak vector 8).
ALTER TABLE users ADD CONSTRAINT users_tenant_external_id_key UNIQUE (tenant_id, external_id);

-- Admins set it (the API's users resource; the users policies admit INSERT
-- and UPDATE under app.role 'admin' only, 00010), and a first sign-in with
-- JWT_AUTO_CREATE_ROLE creates a user with it. rowfence_platform gets
-- nothing: it creates a tenant's first admin, who has no external identity yet.
GRANT INSERT (external_id), UPDATE (external_id) ON users TO rowfence_app;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
REVOKE INSERT (external_id), UPDATE (external_id) ON users FROM rowfence_app;
ALTER TABLE users DROP COLUMN external_id;
RESET ROLE;
