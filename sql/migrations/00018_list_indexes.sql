-- +goose Up
-- Every list, filter and sort the API documents is an index walk within the
-- tenant (issue #16 item 1): a page costs the same on a tenant of a thousand
-- rows as on one of a million.
--
-- Under row-level security PostgreSQL applies a condition that calls a
-- function which is not leakproof only after the policy's (PostgreSQL
-- manual, CREATE POLICY; "security_barrier" in section 41.5): such a
-- condition is a filter over all of the tenant's rows, never an index
-- condition. lower() is not leakproof, so ?email=, matched case-insensitively
-- with lower(email) = lower($1) on users_tenant_email_key's expression, read
-- every user of the tenant. Now a stored, lower-cased copy of the email is
-- compared with = (texteq, leakproof), and the per-tenant uniqueness moves
-- onto it under the same constraint name (db/constraints.go maps it to 409).
--
-- The sorts (?sort=name, email, price; each also descending) get indexes in
-- (tenant_id, key, id) order: the policy's tenant_id equality leads, the
-- keyset condition (key, id) > ($1, $2) (< when descending: the index read
-- backwards) is the rest of the index condition, and the order needs no
-- sort. created_at (either way) walks the (tenant_id, created_at, id) index
-- of 00003. Each index leads with tenant_id (leak vector 8).
SET LOCAL ROLE rowfence_owner;
ALTER TABLE users ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;
DROP INDEX users_tenant_email_key;
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, email_lower);
CREATE INDEX users_tenant_name_idx ON users (tenant_id, name, id);
CREATE INDEX users_tenant_email_idx ON users (tenant_id, email, id);
CREATE INDEX products_tenant_name_idx ON products (tenant_id, name, id);
CREATE INDEX products_tenant_price_idx ON products (tenant_id, price, id);
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP INDEX products_tenant_price_idx;
DROP INDEX products_tenant_name_idx;
DROP INDEX users_tenant_email_idx;
DROP INDEX users_tenant_name_idx;
DROP INDEX users_tenant_email_key;
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));
ALTER TABLE users DROP COLUMN email_lower;
RESET ROLE;
