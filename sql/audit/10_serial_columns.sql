-- Serial or identity columns on tenant tables: sequential ids reveal how many
-- rows all tenants together have (leak vector 8). Use random UUIDs.
SELECT 'serial-column' AS check_name,
       format('%I.%I.%I', n.nspname, c.relname, a.attname) AS object,
       CASE WHEN a.attidentity <> '' THEN 'identity column' ELSE 'default ' || pg_get_expr(d.adbin, d.adrelid) END AS detail
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
  AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
ORDER BY 2;
