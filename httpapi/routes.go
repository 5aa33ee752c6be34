package httpapi

import "net/http"

// routes is the whole API surface. Everything under /v1 runs for the tenant
// that requireTenant decided.
func (s *server) routes(mux *http.ServeMux) {
	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())

	v1 := s.requireTenant
	mux.Handle("GET /v1/products", v1(products.handleList(s)))
	mux.Handle("POST /v1/products", v1(handleCreate(s, products, createProduct)))
	mux.Handle("GET /v1/products/{id}", v1(products.handleGet(s)))
	mux.Handle("PATCH /v1/products/{id}", v1(handleUpdate(s, products, updateProduct)))
	mux.Handle("DELETE /v1/products/{id}", v1(products.handleDelete(s)))

	mux.Handle("GET /v1/users", v1(users.handleList(s)))
	mux.Handle("POST /v1/users", v1(handleCreate(s, users, createUser)))
	mux.Handle("GET /v1/users/{id}", v1(users.handleGet(s)))
	mux.Handle("PATCH /v1/users/{id}", v1(handleUpdate(s, users, updateUser)))
	mux.Handle("DELETE /v1/users/{id}", v1(users.handleDelete(s)))
}
