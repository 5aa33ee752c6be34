-- Tenant cells (sql/migrations/00021_cells.sql): the catalog's list of cells
-- and each tenant's placement. rowfence_platform (/v1/admin) or the
-- migrating role (the CLI, as rowfence_owner); never on a tenant's path,
-- where the cell comes with the tenant (TenantLookup).

-- name: CellList :many
-- Every registered cell, with how many tenants the catalog places in it.
SELECT c.name, c.labels, c.created_at,
       (SELECT count(*) FROM tenants t WHERE t.cell = c.name)::bigint AS tenants
FROM cells c
ORDER BY c.name;

-- name: CellRegister :one
-- Registers a cell, or replaces its labels.
INSERT INTO cells (name, labels) VALUES (@name, @labels)
ON CONFLICT (name) DO UPDATE SET labels = excluded.labels
RETURNING *;

-- name: CellPlacements :many
-- The placements: which cell holds each tenant, by slug.
SELECT id, slug, cell FROM tenants ORDER BY cell, slug;

-- name: TenantCreateInCell :one
-- TenantCreate, placed in a cell: the catalog's row, and the cell's copy.
INSERT INTO tenants (id, slug, name, cell) VALUES (@id, @slug, @name, @cell) RETURNING *;
