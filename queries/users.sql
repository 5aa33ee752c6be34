-- User queries. None of them names the tenant: the tenant_isolation policy on
-- users adds it. Email uniqueness is per tenant (users_tenant_email_key).

-- name: UserList :many
SELECT * FROM users
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;

-- name: UserListUpdated :many
-- ?updated_since=, as ProductListUpdated: (updated_at, id) order over
-- users_tenant_updated_idx.
SELECT * FROM users
WHERE (updated_at, id) > (@after_updated_at::timestamptz, @after_id::uuid)
ORDER BY updated_at, id
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
    -- ::text: a typed column's sqlc.narg would lose its NULL (sqlc issue #3494).
    role       = coalesce(sqlc.narg('role')::text, role),
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

-- name: UserListSorted :many
-- As ProductListSorted; email (?email=) is an exact, case-insensitive match.
SELECT * FROM users
WHERE (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
  AND (@email::text = '' OR lower(email) = lower(@email))
  AND (@first::bool OR CASE @sort::text
        WHEN 'name'        THEN (name, id) > (@after_text::text, @after_id::uuid)
        WHEN '-name'       THEN (name, id) < (@after_text::text, @after_id::uuid)
        WHEN 'email'       THEN (email, id) > (@after_text::text, @after_id::uuid)
        WHEN '-email'      THEN (email, id) < (@after_text::text, @after_id::uuid)
        WHEN '-created_at' THEN (created_at, id) < (@after_time::timestamptz, @after_id::uuid)
        ELSE (created_at, id) > (@after_time::timestamptz, @after_id::uuid) END)
ORDER BY
    CASE WHEN @sort = 'name' THEN name END,
    CASE WHEN @sort = '-name' THEN name END DESC,
    CASE WHEN @sort = 'email' THEN email END,
    CASE WHEN @sort = '-email' THEN email END DESC,
    CASE WHEN @sort = 'created_at' THEN created_at END,
    CASE WHEN @sort = '-created_at' THEN created_at END DESC,
    CASE WHEN @sort LIKE '-%' THEN id END DESC,
    id
LIMIT @row_limit;

-- name: UserSearch :many
-- ?q= and ?email= in the default order (as ProductSearch).
SELECT * FROM users
WHERE (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
  AND (@email::text = '' OR lower(email) = lower(@email))
  AND (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;
