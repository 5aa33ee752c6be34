-- +goose Up
-- Per-tenant overrides of the server's limits (issue 6), stored with the
-- tenant. NULL means "the server's default" (RATE_LIMIT, RATE_BURST,
-- TENANT_CONCURRENCY, STATEMENT_TIMEOUT). Expand-only: old instances keep
-- working, they just do not read the new columns.
SET LOCAL ROLE rowfence_owner;

ALTER TABLE tenants
    ADD COLUMN rate_limit double precision CONSTRAINT tenants_rate_limit_range
        CHECK (rate_limit > 0 AND rate_limit <= 1000000),
    ADD COLUMN rate_burst integer CONSTRAINT tenants_rate_burst_range
        CHECK (rate_burst BETWEEN 1 AND 1000000),
    ADD COLUMN max_concurrency integer CONSTRAINT tenants_max_concurrency_range
        CHECK (max_concurrency BETWEEN 1 AND 10000),
    ADD COLUMN statement_timeout_ms integer CONSTRAINT tenants_statement_timeout_range
        CHECK (statement_timeout_ms BETWEEN 1 AND 3600000);

-- tenant_lookup now also returns the limits; its result type changes, so it
-- is dropped and made again, with the same grants and the same guarantees
-- (one exact key, at most one row, pinned search_path).
DROP FUNCTION tenant_lookup(uuid, text);
-- +goose StatementBegin
CREATE FUNCTION tenant_lookup(p_id uuid, p_slug text)
RETURNS TABLE (id uuid, slug text, status text, rate_limit double precision, rate_burst integer,
               max_concurrency integer, statement_timeout_ms integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.slug, t.status, t.rate_limit, t.rate_burst, t.max_concurrency, t.statement_timeout_ms
    FROM public.tenants t
    WHERE t.id = p_id OR t.slug = p_slug
    LIMIT 1
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION tenant_lookup(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_lookup(uuid, text) TO rowfence_app;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP FUNCTION tenant_lookup(uuid, text);
-- +goose StatementBegin
CREATE FUNCTION tenant_lookup(p_id uuid, p_slug text)
RETURNS TABLE (id uuid, slug text, status text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.slug, t.status
    FROM public.tenants t
    WHERE t.id = p_id OR t.slug = p_slug
    LIMIT 1
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION tenant_lookup(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_lookup(uuid, text) TO rowfence_app;
ALTER TABLE tenants DROP COLUMN statement_timeout_ms, DROP COLUMN max_concurrency,
    DROP COLUMN rate_burst, DROP COLUMN rate_limit;
RESET ROLE;
