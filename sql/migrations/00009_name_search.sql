-- +goose Up
-- ?q= name-prefix search (issue 8). ILIKE is not leakproof, so under RLS
-- PostgreSQL may only apply it after the tenant policy, over all of the
-- tenant's rows. Instead the search compares a lower-cased copy of the name
-- with leakproof operators (text_ge, text_lt, starts_with), which can be
-- index conditions: with (tenant_id, name_lower COLLATE "C") the scan
-- touches the tenant's matching rows only.
SET LOCAL ROLE rowfence_owner;
ALTER TABLE products ADD COLUMN name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
ALTER TABLE users ADD COLUMN name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX products_tenant_name_lower_idx ON products (tenant_id, name_lower COLLATE "C");
CREATE INDEX users_tenant_name_lower_idx ON users (tenant_id, name_lower COLLATE "C");
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
ALTER TABLE users DROP COLUMN name_lower;
ALTER TABLE products DROP COLUMN name_lower;
RESET ROLE;
