-- pgTAP: what the policies do, as the app role. Run as a superuser on a
-- migrated database with the pgtap extension; everything is rolled back.
BEGIN;
SELECT plan(26);

-- Two tenants with one product and one user each, written under their own
-- setting. Every check below runs as the app role with the admin role unless
-- it says otherwise; the roles' own checks come last.
INSERT INTO tenants (id, slug, name) VALUES
  ('aaaaaaaa-0000-4000-8000-000000000001', 'tap-a', 'Tenant A'),
  ('bbbbbbbb-0000-4000-8000-000000000001', 'tap-b', 'Tenant B');
SELECT set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true);
INSERT INTO products (id, name, price) VALUES ('aaaaaaaa-0000-4000-8000-0000000000a1', 'a product', 1);
INSERT INTO users (name, email) VALUES ('a user', 'same@example.com');
SELECT set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-000000000001', true);
INSERT INTO products (id, name, price) VALUES ('bbbbbbbb-0000-4000-8000-0000000000b1', 'b product', 2);
INSERT INTO users (name, email) VALUES ('b user', 'same@example.com');

SET LOCAL ROLE rowfence_app;

-- Tenant A sees its rows and only its rows.
SELECT set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true), set_config('app.role', 'admin', true);
SELECT results_eq('SELECT name FROM products', ARRAY['a product'], 'A lists only its product');
SELECT is_empty($$SELECT 1 FROM products WHERE id = 'bbbbbbbb-0000-4000-8000-0000000000b1'$$, 'A cannot read B''s product by id');
SELECT is_empty($$SELECT 1 FROM products WHERE tenant_id = 'bbbbbbbb-0000-4000-8000-000000000001'$$, 'naming B''s tenant_id widens nothing');
SELECT results_eq($$UPDATE products SET name = 'x' WHERE id = 'bbbbbbbb-0000-4000-8000-0000000000b1' RETURNING 1$$,
                  $$SELECT 1 WHERE false$$, 'A cannot update B''s product');
SELECT results_eq($$DELETE FROM products WHERE id = 'bbbbbbbb-0000-4000-8000-0000000000b1' RETURNING 1$$,
                  $$SELECT 1 WHERE false$$, 'A cannot delete B''s product');
SELECT throws_ok($$INSERT INTO products (tenant_id, name, price) VALUES ('bbbbbbbb-0000-4000-8000-000000000001', 'x', 1)$$,
                 '42501', NULL, 'A cannot insert a row naming B');
SELECT throws_ok($$UPDATE products SET tenant_id = 'bbbbbbbb-0000-4000-8000-000000000001'$$,
                 '42501', NULL, 'A cannot move its row to B');
SELECT lives_ok($$INSERT INTO products (name, price) VALUES ('new', 3)$$, 'A inserts without naming a tenant');
SELECT is((SELECT tenant_id FROM products WHERE name = 'new'), 'aaaaaaaa-0000-4000-8000-000000000001'::uuid,
          'the new row belongs to A, from the setting');
SELECT is((SELECT count(*) FROM users WHERE email = 'same@example.com'), 1::bigint,
          'the same email exists once per tenant, and A sees only its own');
SELECT throws_ok($$TRUNCATE products$$, '42501', NULL, 'TRUNCATE, which ignores RLS, is refused');

-- Without a tenant: '' (after SET LOCAL ends) and never set behave alike.
SELECT set_config('app.tenant_id', '', true);
SELECT is_empty('SELECT 1 FROM products', 'no tenant: no rows');
SELECT is_empty('SELECT 1 FROM users', 'no tenant: no users');
SELECT throws_ok($$INSERT INTO products (name, price) VALUES ('orphan', 1)$$, '42501', NULL,
                 'no tenant: an insert fails (WITH CHECK sees a NULL tenant)');

-- The resolver answers one exact key and cannot be made to list tenants.
SELECT results_eq($$SELECT slug FROM tenant_lookup(NULL, 'tap-a')$$, ARRAY['tap-a'], 'tenant_lookup finds a slug');
SELECT is_empty($$SELECT 1 FROM tenant_lookup(NULL, '%')$$, 'tenant_lookup does not match patterns');
SELECT throws_ok($$SELECT * FROM tenants$$, '42501', NULL, 'the app role cannot read the tenant registry');

-- Roles inside a tenant (app.role), enforced by the policies themselves.
SELECT set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-000000000001', true), set_config('app.role', 'viewer', true);
SELECT isnt_empty('SELECT 1 FROM products', 'a viewer reads products');
SELECT throws_ok($$INSERT INTO products (name, price) VALUES ('by a viewer', 1)$$, '42501', NULL, 'a viewer cannot insert');
SELECT results_eq($$UPDATE products SET price = 99 RETURNING 1$$, $$SELECT 1 WHERE false$$, 'a viewer updates nothing');
SELECT is_empty('SELECT 1 FROM api_keys', 'a viewer sees no API keys');
SELECT set_config('app.role', 'member', true);
SELECT lives_ok($$INSERT INTO products (name, price) VALUES ('by a member', 1)$$, 'a member inserts products');
SELECT throws_ok($$INSERT INTO users (name, email) VALUES ('by a member', 'm@example.com')$$, '42501', NULL,
                 'a member cannot create users');
SELECT set_config('app.role', 'auth', true);
SELECT is_empty('SELECT 1 FROM products', 'the credential check reads no products');
SELECT set_config('app.role', 'superuser', true);
SELECT is_empty('SELECT 1 FROM products', 'an unknown role reads nothing');
SELECT set_config('app.role', '', true);
SELECT is_empty('SELECT 1 FROM users', 'no role: nothing, even with a tenant');

SELECT * FROM finish();
ROLLBACK;
