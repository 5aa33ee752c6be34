-- One large tenant next to the dataset's $1 equal ones (datasets with a
-- twin only): tenant $1 + 1, slug bench-large, 100,000 products named and
-- keyed as in data.sql, in products and in the twin. The search is measured
-- on it (bench/exec.go); pgbench and HTTP runs pick tenants 1..$1 only.
SET LOCAL synchronous_commit = off;
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL work_mem = '256MB';

INSERT INTO tenants (id, slug, name)
VALUES (md5('t' || ($1::int + 1))::uuid, 'bench-large', 'Bench large tenant');

INSERT INTO products (tenant_id, id, name, description, price, created_at, updated_at)
SELECT md5('t' || ($1::int + 1))::uuid, md5('t' || ($1::int + 1) || ':' || p)::uuid, 'product ' || p,
       'a product for the benchmark', p,
       timestamptz '2026-01-01 00:00:00+00' + p * interval '1 second',
       timestamptz '2026-01-01 00:00:00+00' + p * interval '1 second'
FROM generate_series(1, 100000) AS p
ORDER BY 2;

INSERT INTO bench_products (tenant, id, name, description, price, created_at, updated_at)
SELECT tenant_id, id, name, description, price, created_at, updated_at FROM products
WHERE tenant_id = md5('t' || ($1::int + 1))::uuid ORDER BY id;
