-- Brings the twin of a dataset kept from an earlier run up to twin.sql
-- (bench/data.go runs it on every kept dataset that has a twin).
SET LOCAL maintenance_work_mem = '512MB';
ALTER TABLE bench_products ADD COLUMN IF NOT EXISTS name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX IF NOT EXISTS bench_products_tenant_name_lower_idx ON bench_products (tenant, name_lower COLLATE "C");
