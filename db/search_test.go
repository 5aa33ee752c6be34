package db_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// ProductSearch answers a page either from a bounded walk in created_at order
// or, when matches are rarer than one in 50 rows, from the name range. Every
// path must return exactly the matches a plain filter would, in order, page
// after page, and nothing of another tenant's.
func TestProductSearchMatchesAPlainFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type row struct {
		id      uuid.UUID
		name    string
		created time.Time
	}
	var want []row
	names := func(i int) string {
		switch {
		case i == 5:
			return "Spanner 5" // the only one, early: the walk finds too few
		case i == 250 || i == 280:
			return fmt.Sprintf("Rare %d", i) // beyond any walk of a small page
		case i%3 == 0:
			return fmt.Sprintf("Anvil %d", i) // common: the walk fills pages
		}
		return fmt.Sprintf("bolt %d", i)
	}
	for _, s := range []db.Scope{bundle.a, bundle.b} {
		for i := range 300 {
			r := row{id: uuid.New(), name: names(i), created: base.Add(time.Duration(i) * time.Second)}
			_, err := bundle.admin.Exec(ctx, `insert into products (tenant_id, id, name, price, created_at, updated_at)
				values ($1, $2, $3, 1, $4, $4)`, s.TenantID, r.id, r.name, r.created)
			require.NoError(t, err)
			if s == bundle.a {
				want = append(want, r)
			}
		}
	}

	for _, prefix := range []string{"anv", "ANVIL 2", "rare", "spanner", "b", "zz"} {
		var expected []uuid.UUID
		for _, r := range want {
			if strings.HasPrefix(strings.ToLower(r.name), strings.ToLower(prefix)) {
				expected = append(expected, r.id)
			}
		}
		for _, limit := range []int32{1, 2, 7, 50} {
			var got []uuid.UUID
			var after dbsqlc.Product
			for page := 0; ; page++ {
				require.Less(t, page, 400, "paging must end")
				items, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) ([]dbsqlc.ProductSearchRow, error) {
					return q.ProductSearch(ctx, dbsqlc.ProductSearchParams{Prefix: prefix,
						AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
				})
				require.NoError(t, err)
				require.LessOrEqual(t, len(items), int(limit))
				for _, p := range db.ProductsFromSearch(items) {
					require.Equal(t, bundle.a.TenantID, p.TenantID, "another tenant's row")
					got = append(got, p.ID)
					after = p
				}
				if len(items) < int(limit) {
					break
				}
			}
			require.True(t, slices.Equal(expected, got), "prefix %q, limit %d: got %d ids, want %d in order", prefix, limit, len(got), len(expected))
		}
	}
}

// The range's upper bound (lower(prefix) || chr(1114111)) would leave out a
// name with U+10FFFF right after the prefix, which the walk would find; no
// name may hold it (00011), whatever path writes it.
func TestProductNamesRefuseU10FFFF(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	_, err := db.One(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
		return q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "ab\U0010FFFFx", Price: 1})
	})
	require.ErrorIs(t, err, db.ErrInvalid)
	_, err = bundle.admin.Exec(ctx, `insert into products (tenant_id, id, name, price) values ($1, $2, $3, 1)`,
		bundle.a.TenantID, uuid.New(), "ab\U0010FFFF")
	require.ErrorContains(t, err, "products_name_no_u10ffff", "not even the owner's path")
}
