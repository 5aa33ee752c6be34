-- TRUNCATE, REFERENCES and TRIGGER on tenant tables held by anyone but the
-- owner: RLS governs none of them (leak vector 7). REFERENCES on columns
-- counts too: a foreign key on (tenant_id, id) probes another tenant's keys.
-- The grantee may be a role a login can only become (SET ROLE): it is listed
-- all the same, and so is PUBLIC.
SELECT 'unsafe-grant' AS check_name,
       format('%I.%I', n.nspname, c.relname) AS object,
       format('%s granted to %s', acl.privilege_type,
              CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(acl.grantee) END) AS detail
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS acl
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
  AND acl.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER')
  AND acl.grantee <> c.relowner
UNION ALL
SELECT 'unsafe-grant' AS check_name,
       format('%I.%I', n.nspname, c.relname) AS object,
       format('%s (%s) granted to %s', acl.privilege_type, string_agg(quote_ident(col.attname), ', ' ORDER BY col.attnum),
              CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(acl.grantee) END) AS detail
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute col ON col.attrelid = c.oid AND col.attnum > 0 AND NOT col.attisdropped
CROSS JOIN LATERAL aclexplode(col.attacl) AS acl
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
  AND acl.privilege_type = 'REFERENCES'
  AND acl.grantee <> c.relowner
GROUP BY n.nspname, c.relname, acl.privilege_type, acl.grantee
ORDER BY 2, 3;
