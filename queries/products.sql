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
-- Lists with ?sort= and ?q= (httpapi/products.go): keyset pagination on
-- (sort key, id) in the sort's direction; first says the page is the first.
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
        SELECT FROM products
        WHERE @prefix::text <> ''
          AND name_lower COLLATE "C" >= lower(@prefix::text) COLLATE "C"
          AND name_lower COLLATE "C" < (lower(@prefix::text) || chr(1114111)) COLLATE "C"
        LIMIT 50 * @row_limit::int) m) < 50 * @row_limit::int AS yes
)
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = 'created_at'
   AND (created_at, id) > (@after_time::timestamptz, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY created_at, id LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-created_at'
   AND @first::bool
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY created_at DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-created_at'
   AND NOT @first::bool AND (created_at, id) < (@after_time::timestamptz, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY created_at DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = 'name'
   AND (name, id) > (@after_text::text, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY name, id LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-name'
   AND @first::bool
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY name DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-name'
   AND NOT @first::bool AND (name, id) < (@after_text::text, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY name DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = 'price'
   AND (price, id) > (@after_num::bigint, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY price, id LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-price'
   AND @first::bool
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY price DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE NOT (SELECT yes FROM rare) AND @sort::text = '-price'
   AND NOT @first::bool AND (price, id) < (@after_num::bigint, @after_id::uuid)
   AND (@prefix::text = '' OR starts_with(name_lower, lower(@prefix::text)))
 ORDER BY price DESC, id DESC LIMIT @row_limit::int)
UNION ALL
(SELECT * FROM products WHERE (SELECT yes FROM rare)
   AND name_lower COLLATE "C" >= lower(@prefix::text) COLLATE "C"
   AND name_lower COLLATE "C" < (lower(@prefix::text) || chr(1114111)) COLLATE "C"
   AND starts_with(name_lower, lower(@prefix::text))
   AND (@first::bool OR CASE @sort::text
        WHEN 'created_at' THEN (created_at, id) > (@after_time::timestamptz, @after_id::uuid)
        WHEN '-created_at' THEN (created_at, id) < (@after_time::timestamptz, @after_id::uuid)
        WHEN 'name' THEN (name, id) > (@after_text::text, @after_id::uuid)
        WHEN '-name' THEN (name, id) < (@after_text::text, @after_id::uuid)
        WHEN 'price' THEN (price, id) > (@after_num::bigint, @after_id::uuid)
        WHEN '-price' THEN (price, id) < (@after_num::bigint, @after_id::uuid)
        END)
 ORDER BY
    CASE WHEN @sort = 'created_at' THEN created_at END,
    CASE WHEN @sort = '-created_at' THEN created_at END DESC,
    CASE WHEN @sort = 'name' THEN name END,
    CASE WHEN @sort = '-name' THEN name END DESC,
    CASE WHEN @sort = 'price' THEN price END,
    CASE WHEN @sort = '-price' THEN price END DESC,
    CASE WHEN @sort LIKE '-%' THEN id END DESC,
    id
 LIMIT @row_limit::int)
LIMIT @row_limit::int;

-- name: ProductSearch :many
-- ?q= in the default order, within a bounded cost whatever the tenant's size
-- and the prefix's frequency. Two ways to find a page of matches:
--   walk:  read the tenant's rows in (created_at, id) order, testing the
--          prefix, until the page is full; cheap when matches are common;
--   range: read every match from (tenant_id, name_lower COLLATE "C") and
--          sort them (matches); cheap when matches are rare.
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
), matches AS MATERIALIZED (
    -- Materialized, so that the range is read as a range: with ORDER BY
    -- and LIMIT on it, a generic plan on a tenant of a million rows walked
    -- the creation order instead, testing the range as a filter over the
    -- whole tenant (bench/RESULTS.md, "Large").
    SELECT * FROM products
    WHERE (SELECT yes FROM rare)
      AND name_lower COLLATE "C" >= lower(@prefix::text) COLLATE "C"
      AND name_lower COLLATE "C" < (lower(@prefix::text) || chr(1114111)) COLLATE "C"
      AND starts_with(name_lower, lower(@prefix::text))
      AND (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
)
SELECT * FROM hits WHERE NOT (SELECT yes FROM rare)
UNION ALL
(SELECT * FROM matches ORDER BY created_at, id LIMIT @row_limit::int)
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
