-- Product queries. None of them names the tenant: the tenant_isolation policy
-- on products adds it, from the setting made in the same round trip (db/scope.go).

-- name: ProductList :many
-- Keyset pagination in (created_at, id) order; the first page passes
-- 0001-01-01 00:00:00 UTC and the nil UUID (httpapi's firstPage), so the
-- comparison is always an index condition.
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

-- name: ProductListSorted :many
-- Lists with ?sort= and ?q= (httpapi/products.go). Keyset pagination on
-- (sort key, id) in the sort's direction; first skips the cursor condition.
-- q is a name prefix, as in ProductSearch.
SELECT * FROM products
WHERE (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
  AND (@first::bool OR CASE @sort::text
        WHEN 'name'        THEN (name, id) > (@after_text::text, @after_id::uuid)
        WHEN '-name'       THEN (name, id) < (@after_text::text, @after_id::uuid)
        WHEN 'price'       THEN (price, id) > (@after_num::bigint, @after_id::uuid)
        WHEN '-price'      THEN (price, id) < (@after_num::bigint, @after_id::uuid)
        WHEN '-created_at' THEN (created_at, id) < (@after_time::timestamptz, @after_id::uuid)
        ELSE (created_at, id) > (@after_time::timestamptz, @after_id::uuid) END)
ORDER BY
    CASE WHEN @sort = 'name' THEN name END,
    CASE WHEN @sort = '-name' THEN name END DESC,
    CASE WHEN @sort = 'price' THEN price END,
    CASE WHEN @sort = '-price' THEN price END DESC,
    CASE WHEN @sort = 'created_at' THEN created_at END,
    CASE WHEN @sort = '-created_at' THEN created_at END DESC,
    CASE WHEN @sort LIKE '-%' THEN id END DESC,
    id
LIMIT @row_limit;

-- name: ProductSearch :many
-- ?q= in the default order, within a bounded cost whatever the tenant's size
-- and the prefix's frequency. Two ways to find a page of matches:
--   walk:  read the tenant's rows in (created_at, id) order, testing the
--          prefix, until the page is full; cheap when matches are common;
--   range: read every match from (tenant_id, name_lower COLLATE "C") and
--          sort them; cheap when matches are rare.
-- The statement walks at most 50 pages' worth of rows (walk). If that found
-- a page, or reached the end of the tenant, the page is exact (hits);
-- otherwise matches are rarer than one in 50 rows and the range answers
-- instead: "rare" gates the two branches, and PostgreSQL runs only the one
-- whose gate is true. Whether the walk reached the end is an index-only
-- probe, made only when the walk found less than a page. The prefix is
-- compared with leakproof operators (text_ge, text_lt, starts_with) on the
-- lower-cased copy of the name, so the range is an index condition below the
-- tenant policy (sql/migrations/00009_name_search.sql). db.genericPlan keeps
-- the plan. (least() keeps 50 * limit within int for any limit.) The range's
-- upper bound leaves out U+10FFFF right after the prefix; names cannot hold
-- it (00011_products_name_noncharacter.sql).
WITH walk AS (
    SELECT * FROM products
    WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
    ORDER BY created_at, id
    LIMIT 50 * least(@row_limit::int, 10000)
), hits AS MATERIALIZED (
    SELECT * FROM walk
    WHERE starts_with(name_lower, lower(@prefix::text))
    ORDER BY created_at, id
    LIMIT @row_limit::int
), beyond AS (
    SELECT 1 FROM products
    WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
    ORDER BY created_at, id
    OFFSET 50 * least(@row_limit::int, 10000)
), rare AS MATERIALIZED (
    SELECT (SELECT count(*) FROM hits) < @row_limit::int AND EXISTS (SELECT 1 FROM beyond) AS yes
)
SELECT * FROM hits WHERE NOT (SELECT yes FROM rare)
UNION ALL
(SELECT * FROM products
 WHERE (SELECT yes FROM rare)
   AND name_lower COLLATE "C" >= lower(@prefix::text) COLLATE "C"
   AND name_lower COLLATE "C" < (lower(@prefix::text) || chr(1114111)) COLLATE "C"
   AND starts_with(name_lower, lower(@prefix::text))
   AND (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
 ORDER BY created_at, id
 LIMIT @row_limit::int)
ORDER BY created_at, id
LIMIT @row_limit::int;

-- name: ProductListUpdated :many
-- ?updated_since= (httpapi/products.go): the rows updated at or after a
-- time, for clients that sync incrementally. Keyset pagination in
-- (updated_at, id) order over products_tenant_updated_idx, which leads with
-- the tenant (sql/migrations/00016_updated_since.sql); the first page passes the
-- requested time and the nil UUID. db.genericPlan keeps the plan.
SELECT * FROM products
WHERE (updated_at, id) > (@after_updated_at::timestamptz, @after_id::uuid)
ORDER BY updated_at, id
LIMIT @row_limit;
