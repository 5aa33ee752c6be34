-- +goose Up
-- Background jobs (issue 7): River's tables, and tenant exports started
-- through the API.
--
-- River lives in its own schema, river, created here and filled by River's
-- own migrations right after these (db.Migrator.Up). It is owned by
-- rowfence_owner and usable by rowfence_platform only, the role serve runs
-- jobs as: the app role has no privilege on it at all, so no tenant request
-- can reach it. Jobs carry their tenant in their arguments and do their work
-- under that tenant's setting, like a request (jobs/).
-- Created by the migrating role (which may create schemas in its database),
-- owned by rowfence_owner.
CREATE SCHEMA river AUTHORIZATION rowfence_owner;
SET LOCAL ROLE rowfence_owner;
GRANT USAGE ON SCHEMA river TO rowfence_platform;
ALTER DEFAULT PRIVILEGES FOR ROLE rowfence_owner IN SCHEMA river
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rowfence_platform;
ALTER DEFAULT PRIVILEGES FOR ROLE rowfence_owner IN SCHEMA river
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO rowfence_platform;

-- A tenant's exports: requested by its admins through the API, written by
-- the export job, downloaded by its admins. A tenant table like any other.
CREATE TABLE exports (
    tenant_id    uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                             REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    requested_by uuid        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CONSTRAINT exports_status_valid
                             CHECK (status IN ('pending', 'running', 'done', 'failed')),
    error        text        NOT NULL DEFAULT '',
    counts       jsonb,
    content      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX exports_tenant_created_idx ON exports (tenant_id, created_at, id);

ALTER TABLE exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE exports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON exports AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY exports_select ON exports FOR SELECT
    USING (current_setting('app.role', true) = 'admin');
CREATE POLICY exports_insert ON exports FOR INSERT
    WITH CHECK (current_setting('app.role', true) = 'admin');
CREATE POLICY exports_update ON exports FOR UPDATE
    USING (current_setting('app.role', true) = 'admin')
    WITH CHECK (current_setting('app.role', true) = 'admin');

GRANT SELECT ON exports TO rowfence_app;
GRANT INSERT (requested_by) ON exports TO rowfence_app;
GRANT SELECT ON exports TO rowfence_platform;
GRANT UPDATE (status, error, counts, content, finished_at) ON exports TO rowfence_platform;

-- Requesting an export enqueues its job in the same transaction. The app role
-- cannot touch River's tables, so this trigger function does it as the owner
-- (SECURITY DEFINER, search_path pinned, every name qualified), from nothing
-- but the row the caller just inserted under its own tenant's setting. The
-- audit lists it as an accepted exception.
-- +goose StatementBegin
CREATE FUNCTION enqueue_export() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO river.river_job (kind, args, queue, max_attempts)
    VALUES ('tenant_export', jsonb_build_object('tenant_id', NEW.tenant_id, 'export_id', NEW.id), 'default', 3);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION enqueue_export() FROM PUBLIC;
CREATE TRIGGER exports_enqueue AFTER INSERT ON exports
    FOR EACH ROW EXECUTE FUNCTION enqueue_export();
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TABLE exports;
DROP FUNCTION enqueue_export();
DROP SCHEMA river CASCADE;
RESET ROLE;
