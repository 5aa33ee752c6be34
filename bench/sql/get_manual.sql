\set tn random(1, :tenants)
\set pn random(1, :per_tenant)
\startpipeline
SELECT set_config('app.tenant_id', md5('t' || :tn)::uuid::text, true), set_config('app.role', 'admin', true),
       set_config('statement_timeout', coalesce(nullif('5000', ''), current_setting('statement_timeout')), true);
SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = md5('t' || :tn)::uuid AND id = md5('t' || :tn || ':' || :pn)::uuid;
\endpipeline
