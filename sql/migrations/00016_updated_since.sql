-- +goose Up
-- ?updated_since= on the product and user lists (issue 17): clients that sync
-- incrementally page through the rows updated at or after a time, in
-- (updated_at, id) order. With these indexes that is an index walk within the
-- tenant, like every other list: the RLS policy supplies tenant_id as the
-- leading index condition, the keyset comparison the rest, and the order
-- needs no sort (queries/*.sql, the *ListUpdated statements).
SET LOCAL ROLE rowfence_owner;
CREATE INDEX products_tenant_updated_idx ON products (tenant_id, updated_at, id);
CREATE INDEX users_tenant_updated_idx ON users (tenant_id, updated_at, id);
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP INDEX users_tenant_updated_idx;
DROP INDEX products_tenant_updated_idx;
RESET ROLE;
