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
