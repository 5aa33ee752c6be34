-- tenant_id columns that are nullable, not uuid, or not defaulted from the
-- request's setting (docs/DESIGN.md, "Tenant tables").
SELECT 'tenant-id-column' AS check_name,
       format('%I.%I.tenant_id', n.nspname, c.relname) AS object,
       concat_ws('; ',
         CASE WHEN NOT a.attnotnull THEN 'nullable' END,
         CASE WHEN a.atttypid <> 'uuid'::regtype THEN 'type ' || format_type(a.atttypid, a.atttypmod) END,
         CASE WHEN coalesce(pg_get_expr(d.adbin, d.adrelid), '') <> '(NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))::uuid'
              THEN 'default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '(none)') END) AS detail
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attname = 'tenant_id' AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (NOT a.attnotnull OR a.atttypid <> 'uuid'::regtype
       OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') <> '(NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))::uuid')
ORDER BY 2;
