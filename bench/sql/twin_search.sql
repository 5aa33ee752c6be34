-- The twin's copy of the name search's column and index
-- (sql/migrations/00009_name_search.sql). bench/data.go runs it after
-- twin.sql, and on a kept dataset whose twin lacks them.
SET LOCAL maintenance_work_mem = '512MB';
ALTER TABLE bench_products ADD COLUMN IF NOT EXISTS name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX IF NOT EXISTS bench_products_tenant_name_lower_idx ON bench_products (tenant, name_lower COLLATE "C");
