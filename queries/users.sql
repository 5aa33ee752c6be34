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
-- On users_tenant_email_key (email_lower: see UserListByEmail).
SELECT * FROM users WHERE email_lower = lower(@email::text);

-- name: UserFirstAdmin :one
SELECT * FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1;

-- name: UserLock :one
SELECT * FROM users WHERE id = @id FOR UPDATE;

-- name: UserListSorted :many
-- As ProductListSorted (?sort=, ?q=; ?email= is UserListByEmail).
-- Every order is an index walk within the tenant
-- (sql/migrations/00018_list_indexes.sql): one branch per order and
-- direction, each gated by parameters only, so PostgreSQL runs just the
-- branch asked for ("One-Time Filter"), with its own generic plan
-- (db.genericPlan): the index on (tenant, key, id) read from the cursor's position,
-- forwards or backwards, stopping after a page. Ascending, the first page's
-- position (db.KeysetOrigin, '', 0 and the nil UUID: httpapi's firstPage)
-- is before every row; descending, the first page has a branch of its own.
-- ?q= (a name prefix) is a filter on the walk, which stops after a page of
-- matches: cheap when matches are common. When they are rare the walk would
-- read much of the tenant, so "rare" counts the matches on the
-- tenant's name_lower COLLATE "C" range, at most 50 pages' worth (an
-- index range, leakproof operators as in ProductSearch); fewer than that,
-- and the last branch reads those few matches and sorts them instead. Only
-- one of the walks or the range runs; UNION ALL keeps its order.
WITH rare AS MATERIALIZED (
    SELECT @prefix::text <> '' AND (SELECT count(*) FROM (
        SELECT FROM users
        WHERE @prefix::text <> ''
          AND name_lower COLLATE "C" >= lower(@prefix::text) COLLATE "C"
          AND name_lower COLLATE "C" < (lower(@prefix::text) || chr(1114111)) COLLATE "C"
        LIMIT 50 * @row_limit::int) m) < 50 * @row_limit::int AS yes
)
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = 'created_at'
   AND (created_at, id) > (@after_time::timestamptz, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY created_at, id LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-created_at'
   AND @first::bool
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY created_at DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-created_at'
   AND NOT @first::bool AND (created_at, id) < (@after_time::timestamptz, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY created_at DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = 'name'
   AND (name, id) > (@after_text::text, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY name, id LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-name'
   AND @first::bool
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY name DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-name'
   AND NOT @first::bool AND (name, id) < (@after_text::text, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY name DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = 'email'
   AND (email, id) > (@after_text::text, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY email, id LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-email'
   AND @first::bool
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY email DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-email'
   AND NOT @first::bool AND (email, id) < (@after_text::text, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY email DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM users WHERE (SELECT yes FROM rare)
   AND name_lower COLLATE "C" >= lower(@prefix::text) COLLATE "C"
   AND name_lower COLLATE "C" < (lower(@prefix::text) || chr(1114111)) COLLATE "C"
   AND starts_with(name_lower, lower(@prefix::text))
   AND (@first::bool OR CASE @sort::text
        WHEN 'created_at' THEN (created_at, id) > (@after_time::timestamptz, @after_id::uuid)
        WHEN '-created_at' THEN (created_at, id) < (@after_time::timestamptz, @after_id::uuid)
        WHEN 'name' THEN (name, id) > (@after_text::text, @after_id::uuid)
        WHEN '-name' THEN (name, id) < (@after_text::text, @after_id::uuid)
        WHEN 'email' THEN (email, id) > (@after_text::text, @after_id::uuid)
        WHEN '-email' THEN (email, id) < (@after_text::text, @after_id::uuid)
        END)
 ORDER BY
    CASE WHEN @sort = 'created_at' THEN created_at END,
    CASE WHEN @sort = '-created_at' THEN created_at END DESC,
    CASE WHEN @sort = 'name' THEN name END,
    CASE WHEN @sort = '-name' THEN name END DESC,
    CASE WHEN @sort = 'email' THEN email END,
    CASE WHEN @sort = '-email' THEN email END DESC,
    CASE WHEN @sort LIKE '-%' THEN id END DESC,
    id
 LIMIT @row_limit::int)
LIMIT @row_limit::int;

-- name: UserListByEmail :many
-- ?email= (with or without ?q= and ?sort=): the one user with this email,
-- case-insensitively, found on users_tenant_email_key. email_lower is
-- compared with = (leakproof), so the lookup is an index condition under the
-- policy (sql/migrations/00018_list_indexes.sql). At most one row: the page
-- needs no order and never has a next one, so a cursor finds nothing.
SELECT * FROM users
WHERE email_lower = lower(@email::text)
  AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
  AND @first::bool;

-- name: UserByExternalID :one
-- The credential check (app.role = 'auth') of a token whose subject is an
-- external identity (JWT_SUBJECT_MAPPING=external_id).
SELECT id, role FROM users WHERE external_id = @external_id;

-- name: UserByVerifiedEmail :one
-- The credential check of a token whose verified email names the user
-- (JWT_SUBJECT_MAPPING=email); case-insensitive, on users_tenant_email_key
-- (email_lower: see UserListByEmail).
SELECT id, role FROM users WHERE email_lower = lower(@email::text);

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

