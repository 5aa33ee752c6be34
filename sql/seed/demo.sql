-- Demo data for `make run`: two tenants with a few users and products each,
-- and API keys for them. Fixed ids and key secrets so that the README's curl
-- examples work verbatim. These keys are public: never seed a real deployment
-- with this file. Only `rowfence dev` runs it, only in the dev build
-- (go build -tags dev), and by default only into a cluster it created itself.
-- Idempotent.
-- Runs in one transaction as the migrating role; FORCE ROW LEVEL SECURITY binds
-- that role too (unless it is a superuser), so each tenant's rows are written
-- under that tenant's setting, exactly as the app would.
INSERT INTO tenants (id, slug, name) VALUES
    ('a0000000-0000-4000-8000-000000000001', 'acme',   'Acme Corporation'),
    ('b0000000-0000-4000-8000-000000000001', 'globex', 'Globex Corporation')
ON CONFLICT DO NOTHING;

SELECT set_config('app.tenant_id', 'a0000000-0000-4000-8000-000000000001', true),
       set_config('app.role', 'admin', true);
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
-- rfk_a0000000000040008000000000000001_a3000000000040008000000000000001_11d73ecc9e1127a0ecff932a553c4ca3d010bd6e61fc124f7705181efe092460  (Wile, admin)
-- rfk_a0000000000040008000000000000001_a3000000000040008000000000000002_71a892305624a28bee0fcdc3ffe8d9dc289b1e184eef2efc037251250199280a  (Shared Name, viewer)
INSERT INTO api_keys (id, user_id, name, role, secret_hash) VALUES
    ('a3000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'demo admin key', 'admin',
     sha256(decode('11d73ecc9e1127a0ecff932a553c4ca3d010bd6e61fc124f7705181efe092460', 'hex'))),
    ('a3000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000003', 'demo viewer key', 'viewer',
     sha256(decode('71a892305624a28bee0fcdc3ffe8d9dc289b1e184eef2efc037251250199280a', 'hex')))
ON CONFLICT DO NOTHING;

SELECT set_config('app.tenant_id', 'b0000000-0000-4000-8000-000000000001', true),
       set_config('app.role', 'admin', true);
INSERT INTO users (id, name, email, role) VALUES
    ('b1000000-0000-4000-8000-000000000001', 'Hank Scorpio', 'hank@globex.example', 'admin'),
    ('b1000000-0000-4000-8000-000000000002', 'Shared Name',  'shared@example.com',  'member')
ON CONFLICT DO NOTHING;
INSERT INTO products (id, name, description, price) VALUES
    ('b2000000-0000-4000-8000-000000000001', 'Doomsday Device', 'Some assembly required.', 99900000),
    ('b2000000-0000-4000-8000-000000000002', 'Hammock',         'For the district.',       15000)
ON CONFLICT DO NOTHING;
-- rfk_b0000000000040008000000000000001_b3000000000040008000000000000001_cbdb5efd39c6d84d8cd3964bc4b442593a94ca8a2bcddc6f90067b5f5041186b  (Hank, admin)
INSERT INTO api_keys (id, user_id, name, role, secret_hash) VALUES
    ('b3000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001', 'demo admin key', 'admin',
     sha256(decode('cbdb5efd39c6d84d8cd3964bc4b442593a94ca8a2bcddc6f90067b5f5041186b', 'hex')))
ON CONFLICT DO NOTHING;

-- The demo platform admin key (for /v1/admin):
-- rfp_d0000000000040008000000000000001_fcbdb330092b7eb870213a375b6b6fd6bccfa44d6d64b259e95adda07c20c963
INSERT INTO platform_keys (id, name, secret_hash) VALUES
    ('d0000000-0000-4000-8000-000000000001', 'demo platform key',
     sha256(decode('fcbdb330092b7eb870213a375b6b6fd6bccfa44d6d64b259e95adda07c20c963', 'hex')))
ON CONFLICT DO NOTHING;
