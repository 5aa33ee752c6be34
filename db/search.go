package db

// ProductsFromSearch converts ProductSearch's rows into Products. They are
// the same columns, but sqlc types rows that come through CTEs apart.
func ProductsFromSearch(rows []ProductSearchRow) []Product {
	out := make([]Product, len(rows))
	for i, r := range rows {
		out[i] = Product(r)
	}
	return out
}
