package db

import "github.com/rowfence/rowfence/db/dbsqlc"

// ProductsFromSearch converts ProductSearch's rows into Products. They are
// the same columns, but sqlc types rows that come through CTEs apart.
func ProductsFromSearch(rows []dbsqlc.ProductSearchRow) []dbsqlc.Product {
	out := make([]dbsqlc.Product, len(rows))
	for i, r := range rows {
		out[i] = dbsqlc.Product(r)
	}
	return out
}
