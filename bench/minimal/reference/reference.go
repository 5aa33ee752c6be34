// Package reference is the HTTP benchmark's reference server: the least a
// Go server does to answer GET /v1/products and GET /v1/products/{id} with
// the SQL rowfence sends. It reads the tenant out of the API key without
// checking the key, runs the same db.One (the settings statement and the
// sqlc statement in one round trip, RLS filtering) and writes the rows as
// JSON. No authentication, tenant lookup, rate limiting, metrics, access
// log, ETag or validation beyond parsing the id, and the cheapest JSON there
// is (strconv quoting, which is JSON only for the benchmark's ASCII names):
// never deploy it. bench/minimal serves it beside `rowfence serve`, and
// httpapi's BenchmarkOverhead runs it in process beside the served handler,
// to separate what net/http, pgx and the loopback network cost from what
// rowfence adds.
package reference

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// Both as `rowfence serve` has them by default, so the settings statement and
// the page size are the same.
const (
	statementTimeout = 5 * time.Second
	pageSize         = 20
)

// Handler answers GET /readyz, GET /v1/products and GET /v1/products/{id}
// on pool (rowfence_app's).
func Handler(pool *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v1/products", func(w http.ResponseWriter, r *http.Request) {
		s, ok := scope(w, r)
		if !ok {
			return
		}
		rows, err := db.One(r.Context(), pool, s, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
			return q.ProductList(r.Context(), dbsqlc.ProductListParams{AfterCreatedAt: time.Time{}, AfterID: uuid.Nil, RowLimit: pageSize + 1})
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b := []byte(`{"items":[`)
		for i, p := range rows[:min(len(rows), pageSize)] {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendProduct(b, p)
		}
		answer(w, append(b, "]}\n"...))
	})
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := scope(w, r)
		if !ok {
			return
		}
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		p, err := db.One(r.Context(), pool, s, func(q *dbsqlc.Queries) (dbsqlc.Product, error) { return q.ProductGet(r.Context(), id) })
		switch {
		case errors.Is(err, db.ErrNotFound):
			http.Error(w, "not found", http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			answer(w, append(appendProduct(nil, p), '\n'))
		}
	})
	return mux
}

// scope takes the tenant from the bearer API key, unverified.
func scope(w http.ResponseWriter, r *http.Request) (db.Scope, bool) {
	k, err := auth.ParseAPIKey(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if err != nil {
		http.Error(w, "no key", http.StatusUnauthorized)
		return db.Scope{}, false
	}
	return db.Scope{TenantID: k.TenantID, Role: dbtype.RoleAdmin, StatementTimeout: statementTimeout}, true
}

func answer(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func appendProduct(b []byte, p dbsqlc.Product) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, p.ID.String()...)
	b = append(b, `","tenant_id":"`...)
	b = append(b, p.TenantID.String()...)
	b = append(b, `","name":`...)
	b = strconv.AppendQuote(b, p.Name)
	b = append(b, `,"description":`...)
	b = strconv.AppendQuote(b, p.Description)
	b = append(b, `,"price":`...)
	b = strconv.AppendInt(b, p.Price, 10)
	b = append(b, `,"created_at":"`...)
	b = p.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = p.UpdatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
