-- User queries. None of them names the tenant: the tenant_isolation policy on
-- users adds it. Email uniqueness is per tenant (users_tenant_email_key).

-- name: UserList :many
SELECT * FROM users
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;

-- name: UserGet :one
SELECT * FROM users WHERE id = @id;

-- name: UserCreate :one
INSERT INTO users (name, email, role)
VALUES (@name, @email, @role)
RETURNING *;

-- name: UserUpdate :one
UPDATE users SET
    name       = coalesce(sqlc.narg('name'), name),
    email      = coalesce(sqlc.narg('email'), email),
    role       = coalesce(sqlc.narg('role'), role),
    updated_at = now()
WHERE id = @id
RETURNING *;

-- name: UserDelete :one
DELETE FROM users WHERE id = @id RETURNING id;

-- name: UserRole :one
-- The credential check (app.role = 'auth') of a bearer token's user.
SELECT role FROM users WHERE id = @id;

-- name: UserByEmail :one
SELECT * FROM users WHERE lower(email) = lower(@email);

-- name: UserFirstAdmin :one
SELECT * FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1;

-- name: UserLock :one
SELECT * FROM users WHERE id = @id FOR UPDATE;
