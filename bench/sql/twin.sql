-- The hand-filtered twin of products: the same rows, keys, indexes and
-- checks and foreign key, and no row-level security (the name search's
-- column and index: twin_search.sql). Its tenant column is named "tenant",
-- not tenant_id, so rowfence's safety check (which refuses any tenant_id
-- table without forced RLS) does not refuse to serve this bench database.
SET LOCAL synchronous_commit = off;
SET LOCAL maintenance_work_mem = '512MB';

CREATE TABLE bench_products (
    tenant      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    price       bigint      NOT NULL CHECK (price BETWEEN 0 AND 9007199254740991),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX bench_products_tenant_created_idx ON bench_products (tenant, created_at, id);
INSERT INTO bench_products (tenant, id, name, description, price, created_at, updated_at)
SELECT tenant_id, id, name, description, price, created_at, updated_at FROM products ORDER BY tenant_id, id;
GRANT SELECT, INSERT ON bench_products TO rowfence_app;
