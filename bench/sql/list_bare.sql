-- The floor: the hand-filtered query alone, one round trip, no setting.
\set tn random(1, :tenants)
SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = md5('t' || :tn)::uuid
  AND (created_at, id) > ('0001-01-01 00:00:00+00'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid)
ORDER BY created_at, id LIMIT 21;
