-- +goose Up
-- Streaming exports (issue 16, item 3). An export was one bytea value in
-- exports.content: the export job built it in memory (3 GiB of server for a
-- million products), a download held it whole, and PostgreSQL refuses a
-- value over 1 GB, so a tenant past a few million rows could not be
-- exported at all. Its bytes now live in export_chunks, parts of at most
-- 1 MiB keyed (tenant_id, export_id, seq), written while the rows stream
-- from the tenant's snapshot and read one at a time by a download.
--
-- exports gains what the quota and the retention need: its size, its
-- number of chunks, and when it expires (NULL: never; the kind 'archive'
-- is the platform's copy of an archived tenant, exempt from both).
SET LOCAL ROLE rowfence_owner;

ALTER TABLE exports
    ADD COLUMN bytes bigint NOT NULL DEFAULT 0 CONSTRAINT exports_bytes_range CHECK (bytes >= 0),
    ADD COLUMN chunks integer NOT NULL DEFAULT 0 CONSTRAINT exports_chunks_range CHECK (chunks >= 0),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN kind text NOT NULL DEFAULT 'export' CONSTRAINT exports_kind_valid CHECK (kind IN ('export', 'archive'));

CREATE TABLE export_chunks (
    tenant_id uuid    NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                      REFERENCES tenants (id) ON DELETE CASCADE,
    export_id uuid    NOT NULL,
    seq       integer NOT NULL CONSTRAINT export_chunks_seq_range CHECK (seq >= 0),
    -- 1 MiB bounds what a writer or a download holds of one export.
    data      bytea   NOT NULL CONSTRAINT export_chunks_data_length
                      CHECK (octet_length(data) BETWEEN 1 AND 1048576),
    PRIMARY KEY (tenant_id, export_id, seq),
    -- Composite (leak vector 4); deleting an export deletes its chunks.
    FOREIGN KEY (tenant_id, export_id) REFERENCES exports (tenant_id, id) ON DELETE CASCADE
);
-- JSON Lines compress well; lz4 (PostgreSQL 14+ built --with-lz4) costs
-- little CPU where pglz, the default, would slow the export's writes down.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE export_chunks ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
END
$$;
-- +goose StatementEnd

ALTER TABLE export_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE export_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON export_chunks AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY export_chunks_select ON export_chunks FOR SELECT
    USING (current_setting('app.role', true) = 'admin');
CREATE POLICY export_chunks_insert ON export_chunks FOR INSERT
    WITH CHECK (current_setting('app.role', true) = 'admin');
-- Admins delete exports (DELETE /v1/exports/{id}); the platform deletes
-- expired ones. Their chunks go by the cascade.
CREATE POLICY exports_delete ON exports FOR DELETE
    USING (current_setting('app.role', true) = 'admin');

-- Downloads read the chunks; the export job (rowfence_platform) writes
-- them. The app names the expiry of the export it requests (EXPORT_RETENTION).
GRANT SELECT ON export_chunks TO rowfence_app;
GRANT SELECT, INSERT (export_id, seq, data) ON export_chunks TO rowfence_platform;
GRANT INSERT (expires_at) ON exports TO rowfence_app;
GRANT DELETE ON exports TO rowfence_app, rowfence_platform;
GRANT UPDATE (bytes, chunks) ON exports TO rowfence_platform;
-- content is no longer written (the old value moves into chunks below);
-- the column stays one release for instances still running the old code.
REVOKE UPDATE (content) ON exports FROM rowfence_platform;

-- Existing exports' content, in chunks. FORCE binds the owner too, and a
-- migration has no tenant: lift it for this one statement of this
-- transaction (the ACCESS EXCLUSIVE lock of ALTER TABLE keeps every other
-- session out until commit).
ALTER TABLE exports NO FORCE ROW LEVEL SECURITY;
ALTER TABLE export_chunks NO FORCE ROW LEVEL SECURITY;
INSERT INTO export_chunks (tenant_id, export_id, seq, data)
SELECT e.tenant_id, e.id, g.seq, substring(e.content FROM g.seq * 1048576 + 1 FOR 1048576)
FROM exports e
CROSS JOIN LATERAL generate_series(0, (octet_length(e.content) - 1) / 1048576) AS g(seq)
WHERE e.content IS NOT NULL AND octet_length(e.content) > 0;
UPDATE exports SET bytes = coalesce(octet_length(content), 0),
                   chunks = coalesce((octet_length(content) + 1048575) / 1048576, 0),
                   content = NULL
WHERE content IS NOT NULL;
ALTER TABLE exports FORCE ROW LEVEL SECURITY;
ALTER TABLE export_chunks FORCE ROW LEVEL SECURITY;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
ALTER TABLE exports NO FORCE ROW LEVEL SECURITY;
ALTER TABLE export_chunks NO FORCE ROW LEVEL SECURITY;
UPDATE exports e SET content = (SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) FROM export_chunks c
                                WHERE c.tenant_id = e.tenant_id AND c.export_id = e.id)
WHERE e.chunks > 0;
ALTER TABLE exports FORCE ROW LEVEL SECURITY;
DROP TABLE export_chunks;
DROP POLICY exports_delete ON exports;
REVOKE DELETE ON exports FROM rowfence_app, rowfence_platform;
REVOKE INSERT (expires_at) ON exports FROM rowfence_app;
REVOKE UPDATE (bytes, chunks) ON exports FROM rowfence_platform;
GRANT UPDATE (content) ON exports TO rowfence_platform;
ALTER TABLE exports DROP COLUMN kind, DROP COLUMN expires_at, DROP COLUMN chunks, DROP COLUMN bytes;
RESET ROLE;
