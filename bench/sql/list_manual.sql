-- The same pipeline against the twin without RLS, filtered by hand.
\set tn random(1, :tenants)
\startpipeline
SELECT set_config('app.tenant_id', md5('t' || :tn)::uuid::text, true), set_config('app.role', 'admin', true),
       set_config('statement_timeout', coalesce(nullif('5000', ''), current_setting('statement_timeout')), true),
       set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = md5('t' || :tn)::uuid
  AND (created_at, id) > ('0001-01-01 00:00:00+00'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
ORDER BY created_at, id LIMIT 21;
\endpipeline
