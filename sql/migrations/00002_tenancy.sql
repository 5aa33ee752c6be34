-- +goose Up
-- Every object is created by, and so owned by, rowfence_owner.
SET LOCAL ROLE rowfence_owner;

-- tenants is the registry of tenants, not a tenant table: it has no tenant_id.
-- The app role has no privilege on it at all; it resolves a tenant only through
-- tenant_lookup() below, which returns at most one row for an exact key.
CREATE TABLE tenants (
    id         uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    slug       text        NOT NULL CONSTRAINT tenants_slug_format
                           CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'),
    name       text        NOT NULL CONSTRAINT tenants_name_length
                           CHECK (char_length(name) BETWEEN 1 AND 200),
    status     text        NOT NULL DEFAULT 'active' CONSTRAINT tenants_status_valid
                           CHECK (status IN ('active', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);
-- Defence in depth: RLS on with no policy, so a grant made by mistake still
-- shows no row to anyone but the owner.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;

-- The one deliberate cross-tenant path the app role has, listed by the audit:
-- read a verified credential's tenant (by id, or by slug from a signed
-- token's claim) before any tenant context exists. The tenant a request names
-- (X-Tenant-ID, host, path) is never looked up: it is compared with this one
-- (httpapi/tenant.go).
-- SECURITY DEFINER runs as rowfence_owner; search_path is pinned and every name
-- qualified, so a caller cannot substitute objects.
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
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP FUNCTION tenant_lookup(uuid, text);
DROP TABLE tenants;
RESET ROLE;
