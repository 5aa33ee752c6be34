-- Foreign keys between tenant tables that do not include tenant_id on both
-- sides: FK checks ignore RLS, so tenant A could reference, and so detect,
-- tenant B's row (leak vector 4).
SELECT 'fk-not-composite' AS check_name,
       format('%s constraint %I', con.conrelid::regclass, con.conname) AS object,
       pg_get_constraintdef(con.oid) AS detail
FROM pg_constraint con
JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attname = 'tenant_id' AND NOT ca.attisdropped
JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attname = 'tenant_id' AND NOT fa.attisdropped
WHERE con.contype = 'f'
  AND NOT (ca.attnum = ANY (con.conkey) AND fa.attnum = ANY (con.confkey)
           AND array_position(con.conkey, ca.attnum) = array_position(con.confkey, fa.attnum))
ORDER BY 2;
