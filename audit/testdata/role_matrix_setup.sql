-- Setup for audit.TestRoleMatrixMatchesTheModel, run by a superuser inside a
-- transaction the test rolls back. Two tenants with one row in every tenant
-- table each (a tenant table added later needs a row here, or the test says
-- so), and pg_temp.rowfence_try, which tries one statement as a serving role.
INSERT INTO tenants (id, slug, name) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'matrix-a', 'Matrix A'),
    ('b0000000-0000-4000-8000-00000000000b', 'matrix-b', 'Matrix B');
INSERT INTO users (tenant_id, id, name, email, role) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-0000000000a1', 'A', 'a@a.example', 'admin'),
    ('b0000000-0000-4000-8000-00000000000b', 'b0000000-0000-4000-8000-0000000000b1', 'B', 'b@b.example', 'admin');
INSERT INTO products (tenant_id, name, price) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'anvil', 1),
    ('b0000000-0000-4000-8000-00000000000b', 'hammock', 1);
INSERT INTO api_keys (tenant_id, id, user_id, role, secret_hash) VALUES
    ('a0000000-0000-4000-8000-00000000000a', gen_random_uuid(), 'a0000000-0000-4000-8000-0000000000a1', 'admin', sha256('a')),
    ('b0000000-0000-4000-8000-00000000000b', gen_random_uuid(), 'b0000000-0000-4000-8000-0000000000b1', 'admin', sha256('b'));
-- Expired: the app may only end an export's life (00024), so the UPDATE
-- that copies the sample's expires_at must copy a time past.
-- Done, too: only a finished export's life can be ended.
INSERT INTO exports (tenant_id, id, requested_by, expires_at, status) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-0000000000e1', 'a0000000-0000-4000-8000-0000000000a1', now() - interval '1 day', 'done'),
    ('b0000000-0000-4000-8000-00000000000b', 'b0000000-0000-4000-8000-0000000000e1', 'b0000000-0000-4000-8000-0000000000b1', now() - interval '1 day', 'done');
INSERT INTO export_chunks (tenant_id, export_id, seq, data) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'a0000000-0000-4000-8000-0000000000e1', 0, 'a'),
    ('b0000000-0000-4000-8000-00000000000b', 'b0000000-0000-4000-8000-0000000000e1', 0, 'b');
INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, response_body) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'k', sha256('a'), 201, ''),
    ('b0000000-0000-4000-8000-00000000000b', 'k', sha256('b'), 201, '');

-- rowfence_try runs one command on tbl as serving_role, with the request
-- settings app.tenant_id = tenant and app.role = app_role, in a
-- subtransaction it always rolls back, and says what happened:
--   'allowed'            the statement read, wrote or deleted a row;
--   'allowed, then …'    it passed the grants and the policies and failed on
--                        something else (a unique key: the row is a copy);
--   'no rows'            the policies hid every row (SELECT, UPDATE, DELETE);
--   'refused: …'         a grant or a policy refused it (SQLSTATE 42501).
-- INSERT copies seed_tenant's row into the columns the role may insert
-- (DEFAULT VALUES when none); UPDATE sets the first column it may update to
-- that row's value; DELETE deletes every row it sees; SELECT counts them.
CREATE FUNCTION pg_temp.rowfence_try(serving_role text, tbl regclass, seed_tenant uuid, tenant text,
                                     app_role text, command text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    seed    jsonb;
    cols    text;
    col     text;
    n       bigint;
    outcome text;
BEGIN
    EXECUTE format('SELECT to_jsonb(t) FROM %s t WHERE tenant_id = $1 LIMIT 1', tbl) INTO seed USING seed_tenant;
    IF seed IS NULL THEN
        RAISE EXCEPTION 'tenant table % has no row to try commands on: add one to audit/testdata/role_matrix_setup.sql', tbl;
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute
    WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped
      AND has_column_privilege(serving_role, tbl, attnum, 'INSERT');
    SELECT quote_ident(attname) INTO col
    FROM pg_attribute
    WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped AND attname <> 'tenant_id'
    ORDER BY has_column_privilege(serving_role, tbl, attnum, 'UPDATE') DESC, attnum
    LIMIT 1;
    BEGIN
        PERFORM set_config('role', serving_role, true),
                set_config('app.tenant_id', tenant, true),
                set_config('app.role', app_role, true);
        CASE command
        WHEN 'SELECT' THEN
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO n;
        WHEN 'INSERT' THEN
            IF cols IS NULL THEN
                EXECUTE format('INSERT INTO %s DEFAULT VALUES', tbl);
            ELSE
                EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1)', tbl, cols, cols, tbl)
                USING seed;
            END IF;
            GET DIAGNOSTICS n = ROW_COUNT;
        WHEN 'UPDATE' THEN
            EXECUTE format('UPDATE %s SET %s = r.%s FROM jsonb_populate_record(NULL::%s, $1) r', tbl, col, col, tbl)
            USING seed;
            GET DIAGNOSTICS n = ROW_COUNT;
        WHEN 'DELETE' THEN
            EXECUTE format('DELETE FROM %s', tbl);
            GET DIAGNOSTICS n = ROW_COUNT;
        END CASE;
        outcome := CASE WHEN n > 0 THEN 'allowed' ELSE 'no rows' END;
        RAISE EXCEPTION USING ERRCODE = 'RFUND', MESSAGE = 'undo the try';
    EXCEPTION
        WHEN SQLSTATE 'RFUND' THEN NULL;
        WHEN insufficient_privilege THEN outcome := 'refused: ' || SQLERRM;
        WHEN OTHERS THEN outcome := format('allowed, then %s: %s', SQLSTATE, SQLERRM);
    END;
    RETURN outcome;
END
$fn$;
