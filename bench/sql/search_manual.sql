-- The same pipeline against the twin without RLS, ProductSearch filtered by
-- hand; the tenant as in search_rls.sql.
\if :large
\set tn :tenants + 1
\else
\set tn random(1, :tenants)
\endif
\startpipeline
SELECT set_config('app.tenant_id', md5('t' || :tn)::uuid::text, true), set_config('app.role', 'admin', true),
       set_config('statement_timeout', coalesce(nullif('5000', ''), current_setting('statement_timeout')), true),
       set_config('plan_cache_mode', 'force_generic_plan', true);
WITH walk AS (
    SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
    WHERE tenant = md5('t' || :tn)::uuid AND (created_at, id) > ('0001-01-01 00:00:00+00'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
    ORDER BY created_at, id
    LIMIT 50 * least(21::int, 10000)
), hits AS MATERIALIZED (
    SELECT * FROM walk
    WHERE starts_with(name_lower, lower('product 1'::text))
    ORDER BY created_at, id
    LIMIT 21::int
), beyond AS (
    SELECT 1 FROM bench_products
    WHERE tenant = md5('t' || :tn)::uuid AND (created_at, id) > ('0001-01-01 00:00:00+00'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
    ORDER BY created_at, id
    OFFSET 50 * least(21::int, 10000)
), rare AS MATERIALIZED (
    SELECT (SELECT count(*) FROM hits) < 21::int AND EXISTS (SELECT 1 FROM beyond) AS yes
)
SELECT * FROM hits WHERE NOT (SELECT yes FROM rare)
UNION ALL
(SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
 WHERE (SELECT yes FROM rare)
   AND tenant = md5('t' || :tn)::uuid
   AND name_lower COLLATE "C" >= lower('product 1'::text) COLLATE "C"
   AND name_lower COLLATE "C" < (lower('product 1'::text) || chr(1114111)) COLLATE "C"
   AND starts_with(name_lower, lower('product 1'::text))
   AND (created_at, id) > ('0001-01-01 00:00:00+00'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
 ORDER BY created_at, id
 LIMIT 21::int)
ORDER BY created_at, id
LIMIT 21::int;
\endpipeline
