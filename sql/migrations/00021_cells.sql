-- +goose Up
-- Tenant cells (issue #18): a cell is a PostgreSQL database holding this
-- whole schema, roles and policies; each tenant lives in exactly one. The
-- catalog is the default cell's database (DATABASE_URL): its `cells` lists
-- the cells and their labels, and its `tenants.cell` says where each tenant
-- lives. Connection strings are configuration (CELLS), never stored here, so
-- a copy of the catalog holds no credential.
--
-- Every cell has these objects (one schema everywhere, one migration
-- history), but only the catalog's rows are authoritative. A non-default
-- cell's `tenants` holds a copy of the row of each tenant placed there,
-- which its tenant tables' foreign keys (tenant_id → tenants, ON DELETE
-- CASCADE) need.

-- serve refuses a cell whose migration version is behind the default
-- cell's (package cells): its serving roles read goose's version table,
-- which holds no tenant data. Granted by its owner, the migrating role.
GRANT SELECT ON goose_db_version TO rowfence_app, rowfence_platform;

SET LOCAL ROLE rowfence_owner;

-- cells is platform-only, like platform_keys: no tenant_id, not a tenant
-- table (RLS enabled as defence in depth, one policy for rowfence_platform;
-- the audit's role model lists it). The app role has no privilege on it.
CREATE TABLE cells (
    name       text        NOT NULL PRIMARY KEY CONSTRAINT cells_name_format
                           CHECK (name ~ '^[a-z][a-z0-9-]{0,30}[a-z0-9]$'),
    -- Labels choose a cell at onboarding (region=eu): a flat object of
    -- strings.
    labels     jsonb       NOT NULL DEFAULT '{}' CONSTRAINT cells_labels_object
                           CHECK (jsonb_typeof(labels) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE cells ENABLE ROW LEVEL SECURITY;
CREATE POLICY platform_only ON cells TO rowfence_platform USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON cells TO rowfence_platform;
INSERT INTO cells (name) VALUES ('default');

-- The placement. No foreign key to cells: a non-default cell's copy of a
-- tenant row names its cell too, and that cell's own `cells` need not list
-- it; the catalog's placements are checked against its `cells` by
-- onboarding and by `rowfence audit`'s cell check (package cells).
ALTER TABLE tenants ADD COLUMN cell text NOT NULL DEFAULT 'default'
    CONSTRAINT tenants_cell_format CHECK (cell ~ '^[a-z][a-z0-9-]{0,30}[a-z0-9]$');
CREATE INDEX tenants_cell_idx ON tenants (cell);

-- tenant_lookup also returns the cell, so that resolving a tenant (cached,
-- package tenancy) tells serve which cell's pool runs its requests: no
-- round trip is added. Its result type changes, so it is dropped and made
-- again with the same grants and guarantees (one exact key, at most one row,
-- pinned search_path; 00005).
DROP FUNCTION tenant_lookup(uuid, text);
-- +goose StatementBegin
CREATE FUNCTION tenant_lookup(p_id uuid, p_slug text)
RETURNS TABLE (id uuid, slug text, status text, rate_limit double precision, rate_burst integer,
               max_concurrency integer, statement_timeout_ms integer, cell text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.slug, t.status, t.rate_limit, t.rate_burst, t.max_concurrency, t.statement_timeout_ms, t.cell
    FROM public.tenants t
    WHERE t.id = p_id OR t.slug = p_slug
    LIMIT 1
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION tenant_lookup(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_lookup(uuid, text) TO rowfence_app, rowfence_platform;
RESET ROLE;

-- +goose Down
REVOKE SELECT ON goose_db_version FROM rowfence_app, rowfence_platform;
SET LOCAL ROLE rowfence_owner;
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
GRANT EXECUTE ON FUNCTION tenant_lookup(uuid, text) TO rowfence_app, rowfence_platform;
DROP INDEX tenants_cell_idx;
ALTER TABLE tenants DROP COLUMN cell;
DROP TABLE cells;
RESET ROLE;
