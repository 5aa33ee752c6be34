-- Product queries. None of them names the tenant: the tenant_isolation policy
-- on products adds it, from the setting made in the same round trip (db/scope.go).

-- name: ProductList :many
-- Keyset pagination in (created_at, id) order; the first page passes
-- '-infinity' and the nil UUID, so the comparison is always an index condition.
SELECT * FROM products
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @row_limit;

-- name: ProductGet :one
SELECT * FROM products WHERE id = @id;

-- name: ProductCreate :one
INSERT INTO products (name, description, price)
VALUES (@name, @description, @price)
RETURNING *;

-- name: ProductUpdate :one
-- A NULL argument keeps the column as it is.
UPDATE products SET
    name        = coalesce(sqlc.narg('name'), name),
    description = coalesce(sqlc.narg('description'), description),
    price       = coalesce(sqlc.narg('price'), price),
    updated_at  = now()
WHERE id = @id
RETURNING *;

-- name: ProductDelete :one
DELETE FROM products WHERE id = @id RETURNING id;

-- name: ProductLock :one
-- For conditional writes (If-Match): the row as it is, locked until the
-- transaction ends.
SELECT * FROM products WHERE id = @id FOR UPDATE;
