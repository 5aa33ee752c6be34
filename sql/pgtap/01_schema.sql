-- pgTAP: the structure that keeps tenants apart. Run on a migrated database
-- with the pgtap extension, as a superuser:
--   pg_prove -d DB sql/pgtap/*.sql      (or: make test, which runs every file here)
BEGIN;
SELECT plan(42);

-- The serving role can never bypass RLS.
SELECT has_role('rowfence_app');
SELECT isnt_superuser('rowfence_app');
SELECT ok(NOT rolbypassrls, 'rowfence_app is NOBYPASSRLS') FROM pg_roles WHERE rolname = 'rowfence_app';
SELECT ok(NOT rolinherit, 'rowfence_app inherits nothing') FROM pg_roles WHERE rolname = 'rowfence_app';
SELECT ok(NOT rolcanlogin, 'rowfence_owner cannot log in') FROM pg_roles WHERE rolname = 'rowfence_owner';
-- Nor can it become such a role: SET ROLE works for any membership, at any
-- depth, INHERIT or not, so MEMBER, not USAGE (issue 14; leak vector 11).
SELECT is(ARRAY(SELECT s.rolname || ' -> ' || r.rolname FROM pg_roles s JOIN pg_roles r ON pg_has_role(s.oid, r.oid, 'MEMBER')
                WHERE s.rolname IN ('rowfence_app', 'rowfence_platform')
                  AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole
                       OR r.rolname IN ('rowfence_owner', 'pg_database_owner', 'pg_execute_server_program',
                                        'pg_read_server_files', 'pg_write_server_files'))
                ORDER BY 1),
          ARRAY[]::text[], 'neither serving role can become a superuser, BYPASSRLS, CREATEROLE, owner or server-file role');

-- Every tenant table: owned by rowfence_owner, RLS enabled and forced, one
-- restrictive tenant policy for every command, and permissive role policies.
SELECT table_owner_is('public', 'users', 'rowfence_owner', 'users is owned by rowfence_owner');
SELECT table_owner_is('public', 'products', 'rowfence_owner', 'products is owned by rowfence_owner');
SELECT table_owner_is('public', 'api_keys', 'rowfence_owner', 'api_keys is owned by rowfence_owner');
SELECT ok(relrowsecurity AND relforcerowsecurity, relname || ' enables and forces row level security')
FROM pg_class WHERE oid IN ('public.users'::regclass, 'public.products'::regclass, 'public.api_keys'::regclass) ORDER BY relname;
SELECT policies_are('public', 'users', ARRAY['tenant_isolation', 'users_select', 'users_insert', 'users_update', 'users_delete']);
SELECT policies_are('public', 'products', ARRAY['tenant_isolation', 'products_select', 'products_insert', 'products_update', 'products_delete']);
SELECT policies_are('public', 'api_keys', ARRAY['tenant_isolation', 'api_keys_select', 'api_keys_insert', 'api_keys_update', 'api_keys_auth_touch', 'api_keys_archive']);
SELECT is((SELECT count(*) FROM pg_policy
           WHERE polname = 'tenant_isolation' AND NOT polpermissive AND polcmd = '*' AND polroles = '{0}'
             AND polrelid IN ('public.users'::regclass, 'public.products'::regclass, 'public.api_keys'::regclass)),
          3::bigint, 'each tenant_isolation policy is AS RESTRICTIVE, for every command and every role');

-- Only what the API needs: no TRUNCATE, REFERENCES or TRIGGER; INSERT and
-- UPDATE only on the columns a client controls (so never tenant_id).
SELECT table_privs_are('public', 'users', 'rowfence_app', ARRAY['SELECT', 'DELETE']);
SELECT table_privs_are('public', 'products', 'rowfence_app', ARRAY['SELECT', 'DELETE']);
SELECT ok(NOT has_column_privilege('rowfence_app', 'public.products', 'tenant_id', 'INSERT'), 'app cannot insert products.tenant_id');
SELECT ok(NOT has_column_privilege('rowfence_app', 'public.products', 'tenant_id', 'UPDATE'), 'app cannot update products.tenant_id');
SELECT ok(NOT has_column_privilege('rowfence_app', 'public.users', 'tenant_id', 'UPDATE'), 'app cannot update users.tenant_id');
SELECT table_privs_are('public', 'tenants', 'rowfence_app', ARRAY[]::text[]);
SELECT table_privs_are('public', 'api_keys', 'rowfence_app', ARRAY['SELECT']);
SELECT ok(NOT has_column_privilege('rowfence_app', 'public.api_keys', 'role', 'UPDATE')
          AND NOT has_column_privilege('rowfence_app', 'public.api_keys', 'secret_hash', 'UPDATE')
          AND NOT has_column_privilege('rowfence_app', 'public.api_keys', 'user_id', 'UPDATE'),
          'a key''s role, secret and user can never be changed');

-- Keys: composite, tenant first; email unique per tenant only.
SELECT col_is_pk('public', 'products', ARRAY['tenant_id', 'id']::name[], 'products key is (tenant_id, id)');
SELECT col_is_pk('public', 'users', ARRAY['tenant_id', 'id']::name[], 'users key is (tenant_id, id)');
SELECT col_is_pk('public', 'api_keys', ARRAY['tenant_id', 'id']::name[], 'api_keys key is (tenant_id, id)');
SELECT fk_ok('public', 'api_keys', ARRAY['tenant_id', 'user_id']::name[], 'public', 'users', ARRAY['tenant_id', 'id']::name[],
             'a key''s user is in the key''s tenant (composite foreign key)');
SELECT col_not_null('public', 'products', 'tenant_id', 'products.tenant_id is NOT NULL');
SELECT is(pg_get_indexdef('public.users_tenant_email_key'::regclass),
          'CREATE UNIQUE INDEX users_tenant_email_key ON public.users USING btree (tenant_id, email_lower)',
          'email is unique per tenant, case-insensitively');

-- The one definer function has its search_path pinned.
SELECT ok(prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], 'tenant_lookup is SECURITY DEFINER with a pinned search_path')
FROM pg_proc WHERE proname = 'tenant_lookup';

-- Lifecycle (00006, 00007): the platform role, exports, River's schema.
SELECT isnt_superuser('rowfence_platform');
SELECT ok(NOT rolbypassrls AND NOT rolinherit, 'rowfence_platform is NOBYPASSRLS and NOINHERIT') FROM pg_roles WHERE rolname = 'rowfence_platform';
SELECT ok(relrowsecurity AND relforcerowsecurity, 'exports enables and forces row level security') FROM pg_class WHERE oid = 'public.exports'::regclass;
SELECT policies_are('public', 'exports', ARRAY['tenant_isolation', 'exports_select', 'exports_insert', 'exports_update', 'exports_delete', 'exports_expire']);
-- Streaming exports (00019): the chunks are a tenant table like any other.
SELECT ok(relrowsecurity AND relforcerowsecurity, 'export_chunks enables and forces row level security') FROM pg_class WHERE oid = 'public.export_chunks'::regclass;
SELECT policies_are('public', 'export_chunks', ARRAY['tenant_isolation', 'export_chunks_select', 'export_chunks_insert', 'export_chunks_delete']);
-- DELETE /v1/exports/{id} only ends an export's life (00024); the cleanup deletes.
SELECT ok(NOT has_table_privilege('rowfence_app', 'public.exports', 'DELETE'), 'the app role cannot delete exports');
SELECT ok(NOT has_table_privilege('rowfence_app', 'public.export_chunks', 'DELETE'), 'the app role cannot delete export chunks');
SELECT ok(NOT has_table_privilege('rowfence_app', 'public.export_chunks', 'INSERT'), 'the app role cannot write export chunks');
SELECT ok(NOT has_schema_privilege('rowfence_app', 'river', 'USAGE'), 'the app role cannot reach River''s schema');
SELECT ok(NOT has_table_privilege('rowfence_app', 'public.platform_keys', 'SELECT'), 'the app role cannot read platform keys');

SELECT * FROM finish();
ROLLBACK;
