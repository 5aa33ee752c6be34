\set tn random(1, :tenants)
\set price random(0, 100000)
\startpipeline
SELECT set_config('app.tenant_id', md5('t' || :tn)::uuid::text, true), set_config('app.role', 'admin', true),
       set_config('statement_timeout', coalesce(nullif('5000', ''), current_setting('statement_timeout')), true);
INSERT INTO bench_products (tenant, name, description, price) VALUES (md5('t' || :tn)::uuid, 'bench insert', '', :price)
RETURNING tenant, id, name, description, price, created_at, updated_at, name_lower;
\endpipeline
