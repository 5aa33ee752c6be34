-- +goose Up
-- Tenant tables. Each one follows the same rules (docs/DESIGN.md, "Tenant tables"):
--   * tenant_id NOT NULL, defaulted from the request's setting: inserts never name it;
--   * primary key (tenant_id, id), random UUID ids, every index and unique
--     constraint leading with tenant_id;
--   * ENABLE and FORCE row level security (FORCE: the owner is bound too);
--   * one policy, in USING and WITH CHECK: unset setting => NULL => no row, no write;
--   * the app role may insert and update only the columns a client controls, so it
--     cannot even name tenant_id, id or created_at.
SET LOCAL ROLE rowfence_owner;

CREATE TABLE users (
    tenant_id  uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                           REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    name       text        NOT NULL CONSTRAINT users_name_length
                           CHECK (char_length(name) BETWEEN 1 AND 200),
    email      text        NOT NULL CONSTRAINT users_email_length
                           CHECK (char_length(email) BETWEEN 3 AND 254),
    role       text        NOT NULL DEFAULT 'member' CONSTRAINT users_role_valid
                           CHECK (role IN ('admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- Email is unique per tenant and case-insensitively: never globally, which would
-- tell one tenant which addresses another one has.
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));
-- Keyset pagination order.
CREATE INDEX users_tenant_created_idx ON users (tenant_id, created_at, id);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

CREATE TABLE products (
    tenant_id   uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                            REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL CONSTRAINT products_name_length
                            CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '' CONSTRAINT products_description_length
                            CHECK (char_length(description) <= 10000),
    price       bigint      NOT NULL CONSTRAINT products_price_range
                            CHECK (price BETWEEN 0 AND 9007199254740991),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX products_tenant_created_idx ON products (tenant_id, created_at, id);

ALTER TABLE products ENABLE ROW LEVEL SECURITY;
ALTER TABLE products FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON products
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

-- Only what the API needs: no TRUNCATE, REFERENCES or TRIGGER, and column lists
-- on INSERT and UPDATE.
GRANT SELECT, DELETE ON users, products TO rowfence_app;
GRANT INSERT (name, email, role) ON users TO rowfence_app;
GRANT UPDATE (name, email, role, updated_at) ON users TO rowfence_app;
GRANT INSERT (name, description, price) ON products TO rowfence_app;
GRANT UPDATE (name, description, price, updated_at) ON products TO rowfence_app;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TABLE products;
DROP TABLE users;
RESET ROLE;
