-- Per-tenant backup and restore (lifecycle/export.go). Like every query here
-- they never name the tenant: they run under its setting, so an export holds
-- that tenant's rows and nothing else, and an import writes only into it.

-- The export itself streams its rows (lifecycle/stream.go): sqlc's :many
-- would collect a whole table in memory.

-- name: TenantRowCounts :one
SELECT (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM products) AS products,
       (SELECT count(*) FROM api_keys) AS api_keys;

-- name: UserImport :execrows
INSERT INTO users (id, name, email, role, external_id, created_at, updated_at)
-- Several set-returning functions in one select list run in lockstep.
-- external_id travels as text, '' for NULL (the column refuses '').
SELECT unnest(@ids::uuid[]), unnest(@names::text[]), unnest(@emails::text[]), unnest(@roles::text[]),
       nullif(unnest(@external_ids::text[]), ''), unnest(@created_ats::timestamptz[]), unnest(@updated_ats::timestamptz[]);

-- name: ProductImport :execrows
INSERT INTO products (id, name, description, price, created_at, updated_at)
SELECT unnest(@ids::uuid[]), unnest(@names::text[]), unnest(@descriptions::text[]), unnest(@prices::bigint[]),
       unnest(@created_ats::timestamptz[]), unnest(@updated_ats::timestamptz[]);

-- name: APIKeyImport :execrows
-- Nullable times travel as text, '' for NULL.
INSERT INTO api_keys (id, user_id, name, role, secret_hash, created_at, expires_at, last_used_at, revoked_at)
SELECT unnest(@ids::uuid[]), unnest(@user_ids::uuid[]), unnest(@names::text[]), unnest(@roles::text[]),
       unnest(@secret_hashes::bytea[]), unnest(@created_ats::timestamptz[]), nullif(unnest(@expires_ats::text[]), '')::timestamptz,
       nullif(unnest(@last_used_ats::text[]), '')::timestamptz, nullif(unnest(@revoked_ats::text[]), '')::timestamptz;

-- name: ExportCreate :one
-- Nothing (ErrNotFound) while the tenant has an export in progress (the
-- export jobs share one queue, so one tenant's burst of exports would delay
-- every other tenant's; an export in progress for longer than 15 minutes, a
-- stuck job, no longer counts), or while its kept exports already use its
-- quota (@max_count exports or @max_bytes bytes; ExportUsage says which).
-- Expired exports and archives count for neither.
INSERT INTO exports (requested_by, expires_at)
SELECT @requested_by::uuid, now() + make_interval(secs => @retention_seconds::float8)
WHERE NOT EXISTS (SELECT 1 FROM exports WHERE status IN ('pending', 'running') AND created_at > now() - interval '15 minutes')
  AND (SELECT count(*) < @max_count::bigint AND coalesce(sum(bytes), 0) < @max_bytes::bigint
       FROM exports WHERE kind = 'export' AND (expires_at IS NULL OR expires_at > now()))
RETURNING id, requested_by, status, error, counts, bytes, created_at, finished_at, expires_at;

-- name: ExportUsage :one
-- What the tenant's kept exports use of its quota.
SELECT count(*) AS exports, coalesce(sum(bytes), 0)::bigint AS bytes
FROM exports WHERE kind = 'export' AND (expires_at IS NULL OR expires_at > now());

-- name: ExportInProgress :one
SELECT id FROM exports
WHERE status IN ('pending', 'running') AND created_at > now() - interval '15 minutes'
ORDER BY created_at LIMIT 1;

-- name: ExportGet :one
-- Expired exports are gone for the API even before the cleanup job deletes
-- them; archives are the platform's, never the tenant's API's.
SELECT id, requested_by, status, error, counts, bytes, created_at, finished_at, expires_at FROM exports
WHERE id = @id AND kind = 'export' AND (expires_at IS NULL OR expires_at > now());

-- name: ExportList :many
SELECT id, requested_by, status, error, counts, bytes, created_at, finished_at, expires_at FROM exports
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
  AND kind = 'export' AND (expires_at IS NULL OR expires_at > now())
ORDER BY created_at, id
LIMIT @row_limit;

-- name: ExportDownloadInfo :one
-- A download's plan: its status, size and number of chunks.
SELECT status, bytes, chunks FROM exports
WHERE id = @id AND kind = 'export' AND (expires_at IS NULL OR expires_at > now());

-- name: ExportChunk :one
-- One chunk of a download (at most 1 MiB), read in a statement of its own
-- so that a download holds no connection between chunks.
SELECT data FROM export_chunks WHERE export_id = @export_id AND seq = @seq;

-- name: ExportChunkInsert :exec
INSERT INTO export_chunks (export_id, seq, data) VALUES (@export_id, @seq, @data);

-- name: ExportDelete :one
-- DELETE /v1/exports/{id} ends the export's life: gone for the API and the
-- quota at once; a trigger enqueues the cleanup that deletes its chunks
-- (00024). An export in progress is not deleted (its job would write into
-- nothing); the API's 409 says so (ExportGet tells the two apart).
UPDATE exports SET expires_at = now()
WHERE id = @id AND kind = 'export' AND status NOT IN ('pending', 'running')
  AND (expires_at IS NULL OR expires_at > now())
RETURNING id;

-- name: ExportChunksDeleteExpired :execrows
-- Retention and DELETE: the cleanup job deletes the chunks of the tenant's
-- expired exports, at most @max_chunks (1 MiB each) per statement.
DELETE FROM export_chunks c
WHERE (c.export_id, c.seq) IN (
    SELECT x.export_id, x.seq FROM export_chunks x JOIN exports e ON e.id = x.export_id
    WHERE e.kind = 'export' AND e.expires_at <= now()
    LIMIT @max_chunks);

-- name: ExportDeleteExpired :execrows
-- Then the expired exports themselves, once their chunks are gone.
DELETE FROM exports e WHERE e.kind = 'export' AND e.expires_at <= now()
  AND NOT EXISTS (SELECT 1 FROM export_chunks c WHERE c.export_id = e.id);

-- name: ExportStart :one
-- The export job takes its export (run under the export's own tenant).
UPDATE exports SET status = 'running' WHERE id = @id AND status IN ('pending', 'running') RETURNING id;

-- name: ExportFinish :exec
-- In the transaction that wrote the chunks: done and its chunks appear together.
UPDATE exports SET status = 'done', counts = @counts, bytes = @bytes, chunks = @chunks, error = '', finished_at = now()
WHERE id = @id;

-- name: ExportFail :exec
UPDATE exports SET status = @status, error = @error, finished_at = CASE WHEN @status = 'failed' THEN now() END WHERE id = @id;

-- Tenant archives (lifecycle/archive.go): the archive is the tenant's
-- export of kind 'archive', written by the archiving command (the exports
-- trigger enqueues no job for it) and exempt from quota and retention.

-- name: ArchiveCreate :one
INSERT INTO exports (requested_by, kind, status, expires_at) VALUES (@requested_by, 'archive', 'running', NULL)
RETURNING id;

-- name: ArchiveFind :one
SELECT id, bytes, chunks, counts FROM exports WHERE kind = 'archive' AND status = 'done'
ORDER BY created_at DESC LIMIT 1;

-- name: ArchiveDeleteAll :execrows
-- An archive left by an attempt that did not complete, or a restored one.
DELETE FROM exports WHERE kind = 'archive';

-- The live rows leave, in the order of their foreign keys (api_keys
-- reference users). Each deletes the tenant's rows only: RLS.

-- name: ArchiveDeleteAPIKeys :execrows
DELETE FROM api_keys;

-- name: ArchiveDeleteProducts :execrows
DELETE FROM products;

-- name: ArchiveDeleteUsers :execrows
DELETE FROM users;

-- name: ArchiveDeleteRest :exec
-- Stored answers and the tenant's own exports are not part of an archive
-- (docs/EXPORT.md); they leave the live tables too.
WITH k AS (DELETE FROM idempotency_keys)
DELETE FROM exports WHERE kind = 'export';
