-- +goose Up
-- Safe retries (issue 8): a POST with an Idempotency-Key is answered once;
-- the same key with the same request within 24 hours replays that answer.
-- Keys are per tenant and live in a tenant table like any other, so one
-- tenant's keys can neither collide with nor reveal another's. The stored
-- answer is written in the same transaction as the request's own writes:
-- either both are there or neither is.
SET LOCAL ROLE rowfence_owner;

CREATE TABLE idempotency_keys (
    tenant_id        uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                                 REFERENCES tenants (id) ON DELETE CASCADE,
    key              text        NOT NULL CONSTRAINT idempotency_keys_key_format
                                 CHECK (key ~ '^[\x21-\x7e]{1,255}$'),
    request_hash     bytea       NOT NULL CONSTRAINT idempotency_keys_request_hash_length
                                 CHECK (octet_length(request_hash) = 32),
    status           integer     NOT NULL CONSTRAINT idempotency_keys_status_range
                                 CHECK (status BETWEEN 200 AND 299),
    response_headers jsonb       NOT NULL DEFAULT '{}',
    response_body    bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_tenant_expires_idx ON idempotency_keys (tenant_id, expires_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys AS RESTRICTIVE
    USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- Any client role may retry its own POSTs; what the POST itself may do is
-- decided by the policies of the tables it writes.
CREATE POLICY idempotency_keys_client ON idempotency_keys FOR ALL
    USING (current_setting('app.role', true) IN ('admin', 'member', 'viewer'))
    WITH CHECK (current_setting('app.role', true) IN ('admin', 'member', 'viewer'));

GRANT SELECT, DELETE ON idempotency_keys TO rowfence_app;
GRANT INSERT (key, request_hash, status, response_headers, response_body) ON idempotency_keys TO rowfence_app;
-- The hourly cleanup job deletes expired keys, one tenant at a time.
GRANT SELECT, DELETE ON idempotency_keys TO rowfence_platform;
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TABLE idempotency_keys;
RESET ROLE;
