-- Indexes (unique constraints included) on tenant tables whose first column
-- is not tenant_id. A unique one that does not lead with tenant_id reveals
-- that a value exists in another tenant (leak vector 4); any other one is
-- not used for the tenant's part of the table (docs/DESIGN.md, "Tenant
-- tables": indexes lead with tenant_id).
SELECT CASE WHEN i.indisunique THEN 'unique-not-per-tenant' ELSE 'index-not-leading-tenant' END AS check_name,
       i.indexrelid::regclass::text AS object,
       pg_get_indexdef(i.indexrelid) AS detail
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND i.indkey[0] <> a.attnum
ORDER BY 1, 2;
