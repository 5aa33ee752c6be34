package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
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

// renderProduct is p as the API shows it.
func renderProduct(p dbsqlc.Product) productJSON {
	return productJSON{ID: p.ID, TenantID: p.TenantID, Name: p.Name, Description: p.Description,
		Price: p.Price, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
}

// productSorts are the fields GET /v1/products sorts by (?sort=).
var productSorts = []string{"created_at", "name", "price"}

// productPosition is p's place in the product list sorted by sort.
func productPosition(p dbsqlc.Product, sort string) position {
	pos := position{CreatedAt: p.CreatedAt, ID: p.ID}
	switch strings.TrimPrefix(sort, "-") {
	case sortUpdated:
		pos.CreatedAt = p.UpdatedAt
	case "name":
		pos.Key = p.Name
	case "price":
		pos.Key = strconv.FormatInt(p.Price, 10)
	}
	return pos
}

// lockProduct locks product id for the rest of q's transaction and returns
// what its ETag is of (writeIfMatch).
func lockProduct(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID) (any, error) {
	p, err := q.ProductLock(ctx, id)
	return renderProduct(p), err
}

// handleProductList: GET /v1/products, a page in creation order, in another
// order (?sort=), of the names with a prefix (?q=), or of the products
// updated at or after a time (?updated_since=, in update order).
func (s *server) handleProductList() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		l, ok := s.readList(w, r, s.scope(r).TenantID, "products", productSorts, false, true)
		if !ok {
			return
		}
		ctx := r.Context()
		rows, err := db.OneIn(ctx, exec, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
			switch l.order() {
			case byCreation:
				return q.ProductList(ctx, dbsqlc.ProductListParams{AfterCreatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
			case byUpdate:
				return q.ProductListUpdated(ctx, dbsqlc.ProductListUpdatedParams{AfterUpdatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
			case searchByCreation:
				found, err := q.ProductSearch(ctx, dbsqlc.ProductSearchParams{Prefix: l.q, AfterCreatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
				return db.ProductsFromSearch(found), err
			}
			num, _ := strconv.ParseInt(l.after.Key, 10, 64)
			return q.ProductListSorted(ctx, dbsqlc.ProductListSortedParams{Prefix: l.q, First: l.first, Sort: l.sort,
				AfterText: l.after.Key, AfterNum: num, AfterTime: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writePage(w, r, l, pageOf(l, rows, renderProduct, productPosition))
	}
}

// handleProductGet: GET /v1/products/{id}, with its ETag.
func (s *server) handleProductGet() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		p, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(r.Context(), id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 1, 0)
		encodeResource(w, r, http.StatusOK, renderProduct(p), true)
	}
}

// handleProductCreate: POST /v1/products.
func (s *server) handleProductCreate() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		in, ok := decodeValid[productCreateBody](w, r, "application/json")
		if !ok {
			return
		}
		p, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return createProduct(r.Context(), q, in) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.Header().Set("Location", s.apiPath(r, "products", p.ID.String()))
		encodeResource(w, r, http.StatusCreated, renderProduct(p), true)
	}
}

// handleProductPatch: PATCH /v1/products/{id}; If-Match makes it conditional.
func (s *server) handleProductPatch() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		in, ok := decodeValid[productPatchBody](w, r, "application/json", "application/merge-patch+json")
		if !ok {
			return
		}
		ctx := r.Context()
		p, err := writeIfMatch(r, exec, func(q *dbsqlc.Queries) (any, error) { return lockProduct(ctx, q, id) },
			func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return updateProduct(ctx, q, id, in) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		encodeResource(w, r, http.StatusOK, renderProduct(p), true)
	}
}

// handleProductDelete: DELETE /v1/products/{id}; If-Match makes it
// conditional.
func (s *server) handleProductDelete() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		ctx := r.Context()
		_, err := writeIfMatch(r, exec, func(q *dbsqlc.Queries) (any, error) { return lockProduct(ctx, q, id) },
			func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ProductDelete(ctx, id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.WriteHeader(http.StatusNoContent)
	}
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

func createProduct(ctx context.Context, q *dbsqlc.Queries, b productCreateBody) (dbsqlc.Product, error) {
	p := dbsqlc.ProductCreateParams{Name: *b.Name, Price: *b.Price}
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

func updateProduct(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID, b productPatchBody) (dbsqlc.Product, error) {
	return q.ProductUpdate(ctx, dbsqlc.ProductUpdateParams{ID: id, Name: b.Name.ptr(), Description: b.Description.ptr(), Price: b.Price.ptr()})
}
