package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/textrule"
)

type productJSON struct {
	ID          uuid.UUID `json:"id"`
	TenantID    uuid.UUID `json:"tenant_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       int64     `json:"price"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

var products = collection[db.Product, productJSON]{
	name: "products",
	list: func(ctx context.Context, q *db.Queries, after position, limit int32) ([]db.Product, error) {
		return q.ProductList(ctx, db.ProductListParams{AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
	},
	get:    (*db.Queries).ProductGet,
	lock:   (*db.Queries).ProductLock,
	remove: (*db.Queries).ProductDelete,
	pos:    func(p db.Product) position { return position{CreatedAt: p.CreatedAt, ID: p.ID} },
	sorts:  []string{"created_at", "name", "price"},
	sorted: func(ctx context.Context, q *db.Queries, lq listQuery, after position, first bool, limit int32) ([]db.Product, error) {
		num, _ := strconv.ParseInt(after.Key, 10, 64)
		return q.ProductListSorted(ctx, db.ProductListSortedParams{Prefix: lq.q, First: first, Sort: lq.sort,
			AfterText: after.Key, AfterNum: num, AfterTime: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
	},
	search: func(ctx context.Context, q *db.Queries, lq listQuery, after position, limit int32) ([]db.Product, error) {
		rows, err := q.ProductSearch(ctx, db.ProductSearchParams{Prefix: lq.q, AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
		return db.ProductsFromSearch(rows), err
	},
	sortKey: func(p db.Product, sort string) string {
		switch strings.TrimPrefix(sort, "-") {
		case "name":
			return p.Name
		case "price":
			return strconv.FormatInt(p.Price, 10)
		}
		return ""
	},
	render: func(p db.Product) productJSON {
		return productJSON{ID: p.ID, TenantID: p.TenantID, Name: p.Name, Description: p.Description,
			Price: p.Price, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
	},
}

// productCreateBody is POST /v1/products. There is no tenant_id field: a body
// that carries one is refused as an unknown field.
type productCreateBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Price       *int64  `json:"price"`
}

func (b productCreateBody) valid() fieldErrors {
	fe := fieldErrors{}
	if checkRequired(fe, "name", b.Name) {
		checkText(fe, "name", *b.Name, textrule.ProductName)
	}
	if b.Description != nil {
		checkText(fe, "description", *b.Description, textrule.ProductDescription)
	}
	if checkRequired(fe, "price", b.Price) {
		checkPrice(fe, *b.Price)
	}
	return fe
}

func createProduct(ctx context.Context, q *db.Queries, b productCreateBody) (db.Product, error) {
	p := db.ProductCreateParams{Name: *b.Name, Price: *b.Price}
	if b.Description != nil {
		p.Description = *b.Description
	}
	return q.ProductCreate(ctx, p)
}

// productPatchBody is PATCH /v1/products/{id}: only the fields present change.
type productPatchBody struct {
	Name        optional[string] `json:"name"`
	Description optional[string] `json:"description"`
	Price       optional[int64]  `json:"price"`
}

func (b productPatchBody) valid() fieldErrors {
	fe := fieldErrors{}
	any := false
	if checkPatch(fe, "name", b.Name) {
		any = true
		checkText(fe, "name", b.Name.Value, textrule.ProductName)
	}
	if checkPatch(fe, "description", b.Description) {
		any = true
		checkText(fe, "description", b.Description.Value, textrule.ProductDescription)
	}
	if checkPatch(fe, "price", b.Price) {
		any = true
		checkPrice(fe, b.Price.Value)
	}
	if !any && len(fe) == 0 {
		fe.add("", "send at least one of name, description, price")
	}
	return fe
}

func updateProduct(ctx context.Context, q *db.Queries, id uuid.UUID, b productPatchBody) (db.Product, error) {
	return q.ProductUpdate(ctx, db.ProductUpdateParams{ID: id, Name: b.Name.ptr(), Description: b.Description.ptr(), Price: b.Price.ptr()})
}
