-- Idempotency keys (httpapi/idempotency.go). Per tenant through the
-- restrictive tenant policy, like every tenant table.

-- name: IdempotencyGet :one
-- An expired key is as good as absent.
SELECT request_hash, status, response_headers, response_body FROM idempotency_keys
WHERE key = @key AND expires_at > now();

-- name: IdempotencyDeleteExpired :exec
DELETE FROM idempotency_keys WHERE key = @key AND expires_at <= now();

-- name: IdempotencyPut :execrows
-- Inserted in the request's own transaction; a concurrent request with the
-- same key waits on the primary key until this one commits, then conflicts.
INSERT INTO idempotency_keys (key, request_hash, status, response_headers, response_body)
VALUES (@key, @request_hash, @status, @response_headers, @response_body)
ON CONFLICT (tenant_id, key) DO NOTHING;

-- name: IdempotencyLock :exec
-- Serialises requests with the same key in the same tenant (until the
-- transaction ends), so a retry that arrives while the first request is
-- still running waits for it and replays its answer.
SELECT pg_advisory_xact_lock(hashtextextended(current_setting('app.tenant_id', true) || ':' || @key::text, 7340));

-- name: IdempotencyDeleteAllExpired :execrows
-- The cleanup job, under one tenant's setting at a time.
DELETE FROM idempotency_keys WHERE expires_at <= now();
