-- Demo data for `make run`: two tenants with a few users and products each.
-- Fixed ids so that the README's curl examples work verbatim. Idempotent.
-- Runs in one transaction as the migrating role; FORCE ROW LEVEL SECURITY binds
-- that role too (unless it is a superuser), so each tenant's rows are written
-- under that tenant's setting, exactly as the app would.
INSERT INTO tenants (id, slug, name) VALUES
    ('a0000000-0000-4000-8000-000000000001', 'acme',   'Acme Corporation'),
    ('b0000000-0000-4000-8000-000000000001', 'globex', 'Globex Corporation')
ON CONFLICT DO NOTHING;

SELECT set_config('app.tenant_id', 'a0000000-0000-4000-8000-000000000001', true);
INSERT INTO users (id, name, email, role) VALUES
    ('a1000000-0000-4000-8000-000000000001', 'Wile E. Coyote', 'wile@acme.example', 'admin'),
    ('a1000000-0000-4000-8000-000000000002', 'Road Runner',    'beep@acme.example', 'member'),
    ('a1000000-0000-4000-8000-000000000003', 'Shared Name',    'shared@example.com', 'viewer')
ON CONFLICT DO NOTHING;
INSERT INTO products (id, name, description, price) VALUES
    ('a2000000-0000-4000-8000-000000000001', 'Anvil',         'Drops reliably.',   4999),
    ('a2000000-0000-4000-8000-000000000002', 'Rocket Skates', 'Mostly reliable.', 12900),
    ('a2000000-0000-4000-8000-000000000003', 'Giant Magnet',  '',                  7500)
ON CONFLICT DO NOTHING;

SELECT set_config('app.tenant_id', 'b0000000-0000-4000-8000-000000000001', true);
INSERT INTO users (id, name, email, role) VALUES
    ('b1000000-0000-4000-8000-000000000001', 'Hank Scorpio', 'hank@globex.example', 'admin'),
    ('b1000000-0000-4000-8000-000000000002', 'Shared Name',  'shared@example.com',  'member')
ON CONFLICT DO NOTHING;
INSERT INTO products (id, name, description, price) VALUES
    ('b2000000-0000-4000-8000-000000000001', 'Doomsday Device', 'Some assembly required.', 99900000),
    ('b2000000-0000-4000-8000-000000000002', 'Hammock',         'For the district.',       15000)
ON CONFLICT DO NOTHING;
