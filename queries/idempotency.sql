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
