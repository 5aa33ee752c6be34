-- +goose Up
-- Tenant moves through the admin API (issue #18, item 3): one row per move
-- a platform admin asked for, in the catalog (the default cell), which the
-- move's River job (jobs/, queue tenant_moves) keeps up to date and
-- GET /v1/admin/moves shows. Like `cells`, a platform table, not a tenant
-- table: it names its tenant in `tenant`, not `tenant_id` (no tenant
-- setting governs it; the audit's tenant checks look for tenant_id), and
-- only rowfence_platform reaches it. The row records; the catalog's
-- tenants.cell decides (the switch is that one update), so a move
-- interrupted anywhere is finished or undone by what the catalog says.
SET LOCAL ROLE rowfence_owner;
CREATE TABLE tenant_moves (
    id               uuid        NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant           uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    from_cell        text        NOT NULL,
    to_cell          text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CONSTRAINT tenant_moves_state_valid
                                 CHECK (state IN ('pending', 'copying', 'frozen', 'switched', 'done', 'failed', 'cancelled')),
    -- DELETE /v1/admin/moves/{id} sets it; the job aborts before its switch.
    cancel_requested boolean     NOT NULL DEFAULT false,
    -- Rows per table, verified equal in both cells (cells.MoveReport).
    rows             jsonb,
    copy_ms          bigint,
    writes_frozen_ms bigint,
    error            text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT tenant_moves_cells_differ CHECK (from_cell <> to_cell)
);
-- One move per tenant at a time: a second one is a 409.
CREATE UNIQUE INDEX tenant_moves_one_at_a_time ON tenant_moves (tenant)
    WHERE state NOT IN ('done', 'failed', 'cancelled');
-- The list's keyset order.
CREATE INDEX tenant_moves_created_idx ON tenant_moves (created_at, id);
CREATE INDEX tenant_moves_tenant_idx ON tenant_moves (tenant);
ALTER TABLE tenant_moves ENABLE ROW LEVEL SECURITY;
CREATE POLICY platform_only ON tenant_moves TO rowfence_platform USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON tenant_moves TO rowfence_platform;

-- Recording a move enqueues its River job (jobs/, queue tenant_moves, which
-- only an instance configured for moves works) in the same transaction: no
-- record without a job. Many attempts: a later one finishes or undoes a move
-- its process stopped under. Runs as the inserting role (rowfence_platform,
-- which River's tables are granted to; 00007), not SECURITY DEFINER.
-- +goose StatementBegin
CREATE FUNCTION enqueue_tenant_move() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO river.river_job (kind, args, queue, max_attempts)
    VALUES ('tenant_move', jsonb_build_object('move_id', NEW.id), 'tenant_moves', 25);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION enqueue_tenant_move() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION enqueue_tenant_move() TO rowfence_platform;
CREATE TRIGGER tenant_moves_enqueue AFTER INSERT ON tenant_moves
    FOR EACH ROW EXECUTE FUNCTION enqueue_tenant_move();

-- A tenant's placement changing (a move's switch, in its one UPDATE) tells
-- every serve instance at once, in the switch's own transaction: each
-- LISTENs on rowfence_placement (tenancy.Resolver.Listen) and forgets the
-- tenant's cached placement, so that none goes on reading and writing the
-- source cell from its cache until the cache's TTL (which a refresh read
-- before the switch and stored after it could even extend). The payload is
-- the tenant's id. Not SECURITY DEFINER; NOTIFY needs no privilege.
-- +goose StatementBegin
CREATE FUNCTION tenants_placement_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('rowfence_placement', NEW.id::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION tenants_placement_notify() FROM PUBLIC;
CREATE TRIGGER tenants_placement_changed AFTER UPDATE OF cell ON tenants
    FOR EACH ROW WHEN (OLD.cell IS DISTINCT FROM NEW.cell) EXECUTE FUNCTION tenants_placement_notify();
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TRIGGER tenants_placement_changed ON tenants;
DROP FUNCTION tenants_placement_notify();
DROP TABLE tenant_moves;
DROP FUNCTION enqueue_tenant_move();
RESET ROLE;
