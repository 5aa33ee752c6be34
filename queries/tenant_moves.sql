-- Tenant moves (sql/migrations/00022_tenant_moves.sql): the catalog's record
-- of the moves asked through /v1/admin, as rowfence_platform (package cells;
-- the move job in jobs/). Never on a tenant's path.

-- name: MoveTenantForUpdate :one
-- The tenant's placement and status, locked while its move is recorded.
SELECT cell, status FROM tenants WHERE id = @id FOR UPDATE;

-- name: MoveCellRegistered :one
SELECT EXISTS (SELECT 1 FROM cells WHERE name = @name)::boolean AS registered;

-- name: MoveCreate :one
INSERT INTO tenant_moves (tenant, from_cell, to_cell) VALUES (@tenant, @from_cell, @to_cell) RETURNING id;

-- name: MoveGet :one
SELECT m.id, m.tenant, t.slug, m.from_cell, m.to_cell, m.state, m.cancel_requested, m.rows, m.copy_ms,
       m.writes_frozen_ms, m.error, m.created_at, m.updated_at, m.finished_at
FROM tenant_moves m JOIN tenants t ON t.id = m.tenant
WHERE m.id = @id;

-- name: MovePage :many
-- Creation order, keyset pages.
SELECT m.id, m.tenant, t.slug, m.from_cell, m.to_cell, m.state, m.cancel_requested, m.rows, m.copy_ms,
       m.writes_frozen_ms, m.error, m.created_at, m.updated_at, m.finished_at
FROM tenant_moves m JOIN tenants t ON t.id = m.tenant
WHERE (m.created_at, m.id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY m.created_at, m.id
LIMIT @row_limit;

-- name: MoveCancel :execrows
-- Asks a move that did not switch to stop: a pending one ends at once.
UPDATE tenant_moves SET cancel_requested = true, updated_at = now(),
    state = CASE WHEN state = 'pending' THEN 'cancelled' ELSE state END,
    finished_at = CASE WHEN state = 'pending' THEN now() END
WHERE id = @id AND state IN ('pending', 'copying', 'frozen');

-- name: MoveSetStage :exec
UPDATE tenant_moves SET state = @state, updated_at = now()
WHERE id = @id AND state NOT IN ('done', 'failed', 'cancelled');

-- name: MoveEnd :exec
UPDATE tenant_moves SET state = @state, updated_at = now(), finished_at = now(),
    rows = coalesce(sqlc.narg(rows)::jsonb, rows),
    copy_ms = coalesce(sqlc.narg(copy_ms)::bigint, copy_ms),
    writes_frozen_ms = coalesce(sqlc.narg(writes_frozen_ms)::bigint, writes_frozen_ms),
    error = @error
WHERE id = @id;
