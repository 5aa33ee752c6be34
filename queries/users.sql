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
    -- external_id may be cleared: a flag says whether to set it, NULL included.
    external_id = CASE WHEN @set_external_id::bool THEN sqlc.narg('external_id') ELSE external_id END,
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

-- name: UserByExternalID :one
-- The credential check (app.role = 'auth') of a token whose subject is an
-- external identity (JWT_SUBJECT_MAPPING=external_id).
SELECT id, role FROM users WHERE external_id = @external_id;

-- name: UserByVerifiedEmail :one
-- The credential check of a token whose verified email names the user
-- (JWT_SUBJECT_MAPPING=email); case-insensitive, as users_tenant_email_key.
SELECT id, role FROM users WHERE lower(email) = lower(@email);

-- name: UserCreateOnSignIn :one
-- A user's first sign-in (JWT_AUTO_CREATE_ROLE). ON CONFLICT DO NOTHING: a
-- concurrent first sign-in, or another user with the same email, answers no
-- row, and the caller looks the subject up again.
INSERT INTO users (name, email, role, external_id)
VALUES (@name, @email, @role, sqlc.narg('external_id'))
ON CONFLICT DO NOTHING
RETURNING id, role;

-- name: UserCreateWithExternalID :one
-- POST /v1/users with an external_id (admins only: the column's grant and
-- the users policies). UserCreate stays without the column: rowfence_platform
-- creates a tenant's first admin with it and holds no grant on external_id.
INSERT INTO users (name, email, role, external_id)
VALUES (@name, @email, @role, @external_id)
RETURNING *;

