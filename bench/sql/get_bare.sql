-- The floor for get: the hand-filtered statement alone, no setting.
\set tn random(1, :tenants)
\set pn random(1, :per_tenant)
SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = md5('t' || :tn)::uuid AND id = md5('t' || :tn || ':' || :pn)::uuid;
