-- Bench data, run by bench/data.go as the superuser (which bypasses RLS) on a
-- migrated database. $1 tenants x $2 products each. Ids are derived from
-- md5 so that pgbench scripts can name existing rows without a lookup:
--   tenant n:            md5('t' || n)::uuid, slug bench-n
--   product p of tenant: md5('t' || n || ':' || p)::uuid
-- Rows are inserted in key order, which builds the B-trees far faster.
SET LOCAL synchronous_commit = off;
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL work_mem = '256MB';

INSERT INTO tenants (id, slug, name)
SELECT md5('t' || n)::uuid, 'bench-' || n, 'Bench tenant ' || n
FROM generate_series(1, $1::int) AS n;

INSERT INTO products (tenant_id, id, name, description, price, created_at, updated_at)
SELECT md5('t' || t)::uuid, md5('t' || t || ':' || p)::uuid, 'product ' || p, 'a product for the benchmark', p,
       timestamptz '2026-01-01 00:00:00+00' + p * interval '1 second',
       timestamptz '2026-01-01 00:00:00+00' + p * interval '1 second'
FROM generate_series(1, $1::int) AS t, generate_series(1, $2::int) AS p
ORDER BY 1, 2;

-- One admin user and one admin API key per tenant (requests authenticate
-- like any client's):
--   user of tenant n:   md5('u' || n)::uuid
--   key of tenant n:    id md5('k' || n)::uuid, secret sha256('rowfence-bench-key-' || n)
-- so the key is rfk_<tenant hex>_<key id hex>_<secret hex> (bench/http.go: benchKey).
INSERT INTO users (tenant_id, id, name, email, role)
SELECT md5('t' || n)::uuid, md5('u' || n)::uuid, 'Bench admin', 'bench@example.com', 'admin'
FROM generate_series(1, $1::int) AS n;

INSERT INTO api_keys (tenant_id, id, user_id, name, role, secret_hash)
SELECT md5('t' || n)::uuid, md5('k' || n)::uuid, md5('u' || n)::uuid, 'bench', 'admin',
       sha256(sha256(convert_to('rowfence-bench-key-' || n, 'UTF8')))
FROM generate_series(1, $1::int) AS n;
