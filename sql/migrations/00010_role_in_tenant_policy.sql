-- +goose Up
-- The role check of reads becomes part of the tenant condition, so that the
-- planner can estimate RLS queries (bench/RESULTS.md, "Search").
--
-- Before: the restrictive policy compared tenant_id with the setting and the
-- permissive SELECT policy checked current_setting('app.role', true) IN (…).
-- That role check names no column, but PostgreSQL applies a policy's quals
-- per row and gives this one a default selectivity of about 0.5%: it thought
-- a tenant's 100,000 rows were 500, and chose plans that read all of a
-- tenant's matching rows and sort them instead of walking an index and
-- stopping after a page.
--
-- After: both read
--     tenant_id = CASE WHEN <role may read> THEN <tenant setting> END
-- A role that may not read compares tenant_id with NULL: no rows, as before.
-- The restrictive policy lists every role that may read the table, which is
-- every role that may do anything with it (UPDATE and DELETE only reach rows
-- they can see); the permissive SELECT policy lists the same roles in the
-- same expression, and PostgreSQL merges the two identical equalities into
-- one index condition evaluated once per scan, with the estimate of a
-- plain tenant_id = $1. Writes are unchanged: WITH CHECK still compares the
-- tenant, and the permissive INSERT, UPDATE and DELETE policies still decide
-- by role. The tables of this migration are the ones every request reads;
-- exports and idempotency_keys keep their policies.
SET LOCAL ROLE rowfence_owner;

DROP POLICY tenant_isolation ON products;
DROP POLICY products_select ON products;
CREATE POLICY tenant_isolation ON products AS RESTRICTIVE
    USING (tenant_id = CASE WHEN current_setting('app.role', true) IN ('admin', 'member', 'viewer')
                            THEN nullif(current_setting('app.tenant_id', true), '')::uuid END)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY products_select ON products FOR SELECT
    USING (tenant_id = CASE WHEN current_setting('app.role', true) IN ('admin', 'member', 'viewer')
                            THEN nullif(current_setting('app.tenant_id', true), '')::uuid END);

DROP POLICY tenant_isolation ON users;
DROP POLICY users_select ON users;
CREATE POLICY tenant_isolation ON users AS RESTRICTIVE
    USING (tenant_id = CASE WHEN current_setting('app.role', true) IN ('admin', 'member', 'viewer', 'auth')
                            THEN nullif(current_setting('app.tenant_id', true), '')::uuid END)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY users_select ON users FOR SELECT
    USING (tenant_id = CASE WHEN current_setting('app.role', true) IN ('admin', 'member', 'viewer', 'auth')
                            THEN nullif(current_setting('app.tenant_id', true), '')::uuid END);

DROP POLICY tenant_isolation ON api_keys;
DROP POLICY api_keys_select ON api_keys;
CREATE POLICY tenant_isolation ON api_keys AS RESTRICTIVE
    USING (tenant_id = CASE WHEN current_setting('app.role', true) IN ('admin', 'auth')
                            THEN nullif(current_setting('app.tenant_id', true), '')::uuid END)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY api_keys_select ON api_keys FOR SELECT
    USING (tenant_id = CASE WHEN current_setting('app.role', true) IN ('admin', 'auth')
                            THEN nullif(current_setting('app.tenant_id', true), '')::uuid END);
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP POLICY api_keys_select ON api_keys;
DROP POLICY tenant_isolation ON api_keys;
CREATE POLICY tenant_isolation ON api_keys AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY api_keys_select ON api_keys FOR SELECT
    USING (current_setting('app.role', true) IN ('admin', 'auth'));

DROP POLICY users_select ON users;
DROP POLICY tenant_isolation ON users;
CREATE POLICY tenant_isolation ON users AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY users_select ON users FOR SELECT
    USING (current_setting('app.role', true) IN ('admin', 'member', 'viewer', 'auth'));

DROP POLICY products_select ON products;
DROP POLICY tenant_isolation ON products;
CREATE POLICY tenant_isolation ON products AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY products_select ON products FOR SELECT
    USING (current_setting('app.role', true) IN ('admin', 'member', 'viewer'));
RESET ROLE;
