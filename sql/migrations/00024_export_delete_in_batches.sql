-- +goose Up
-- DELETE /v1/exports/{id} deleted the export's chunks in the request, by
-- the foreign key's cascade: the export of a tenant of 10,000,000 rows is
-- 2.5 GB in about 2,500 chunks, and deleting it outlasted STATEMENT_TIMEOUT
-- (503, the export kept). Work that grows with a tenant's size is not a
-- request's. The request now ends the export's life (expires_at = now(): gone
-- for the API and the quota at once, as EXPORT_RETENTION does), and the
-- trigger function that enqueues exports enqueues the cleanup of the
-- tenant's expired exports, which deletes their chunks in transactions of a
-- bounded number of chunks (jobs.DeleteExpiredExports).
SET LOCAL ROLE rowfence_owner;

REVOKE DELETE ON exports FROM rowfence_app;
GRANT UPDATE (expires_at) ON exports TO rowfence_app;
-- The app ends the life of an export that is done or failed; it never
-- extends one past the retention, and never touches an archive (kind
-- 'archive', the platform's only copy of an archived tenant's rows, which
-- the cleanup would then delete) or an export in progress.
-- exports_update (00007) is the export job's and the operator's.
ALTER POLICY exports_update ON exports TO rowfence_platform, rowfence_owner;
CREATE POLICY exports_expire ON exports FOR UPDATE TO rowfence_app
    USING (current_setting('app.role', true) = 'admin' AND kind = 'export' AND status NOT IN ('pending', 'running'))
    WITH CHECK (current_setting('app.role', true) = 'admin' AND kind = 'export' AND status NOT IN ('pending', 'running')
                AND expires_at IS NOT NULL AND expires_at <= now());

-- The cleanup deletes chunks itself, a batch per transaction, under the
-- tenant's setting like every other tenant-table statement.
GRANT DELETE ON export_chunks TO rowfence_platform;
CREATE POLICY export_chunks_delete ON export_chunks FOR DELETE
    USING (current_setting('app.role', true) = 'admin');

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION enqueue_export() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO river.river_job (kind, args, queue, max_attempts)
        VALUES ('tenant_export', jsonb_build_object('tenant_id', NEW.tenant_id, 'export_id', NEW.id), 'default', 3);
    ELSE -- an export's life ended early (DELETE /v1/exports/{id})
        INSERT INTO river.river_job (kind, args, queue, max_attempts)
        VALUES ('export_cleanup', jsonb_build_object('tenant_id', NEW.tenant_id), 'default', 3);
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER exports_enqueue_cleanup AFTER UPDATE OF expires_at ON exports
    FOR EACH ROW WHEN (NEW.kind = 'export' AND NEW.expires_at IS NOT NULL AND NEW.expires_at <= now()
                       AND OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION enqueue_export();
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TRIGGER exports_enqueue_cleanup ON exports;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION enqueue_export() RETURNS trigger
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
DROP POLICY export_chunks_delete ON export_chunks;
REVOKE DELETE ON export_chunks FROM rowfence_platform;
DROP POLICY exports_expire ON exports;
ALTER POLICY exports_update ON exports TO PUBLIC;
REVOKE UPDATE (expires_at) ON exports FROM rowfence_app;
GRANT DELETE ON exports TO rowfence_app;
RESET ROLE;
