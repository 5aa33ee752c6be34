// Command ogen runs the client flow with a client that ogen generated from
// the served contract, with default settings, into ./api (at test time;
// never committed):
//
//	go tool ogen -package api -target api -clean openapi.json
//
// The credential and the tenant come from the client's SecuritySource, set
// once; every call after that names neither.
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/google/uuid"
	"github.com/ogen-go/ogen/ogenerrors"

	"github.com/rowfence/rowfence/clients/go/check"
	"github.com/rowfence/rowfence/clients/go/ogen/api"
)

// credentials is the client's SecuritySource: a tenant's API key and its
// tenant; no platform key.
type credentials struct{ key, tenant string }

func (c credentials) BearerAuth(context.Context, api.OperationName) (api.BearerAuth, error) {
	return api.BearerAuth{Token: c.key}, nil
}

func (c credentials) TenantHeader(context.Context, api.OperationName) (api.TenantHeader, error) {
	return api.TenantHeader{APIKey: c.tenant}, nil
}

func (credentials) PlatformAuth(context.Context, api.OperationName) (api.PlatformAuth, error) {
	return api.PlatformAuth{}, ogenerrors.ErrSkipClientSecurity
}

func main() {
	env := check.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := api.NewClient(env.URL, credentials{key: env.Key, tenant: env.Tenant})
	check.NoError(err, "client")

	meRes, err := c.GetMe(ctx)
	check.NoError(err, "GET /v1/me")
	me, ok := meRes.(*api.MeHeaders)
	check.That(ok && me.Response.TenantSlug == env.Tenant, "me: %#v", meRes)
	check.That(me.XRequestID != "" && me.RateLimit.Set && me.RateLimitPolicy.Set, "me: headers %+v", me)
	check.Step("getMe: tenant %s, X-Request-ID %s, RateLimit %s", me.Response.TenantSlug, me.XRequestID, me.RateLimit.Value)

	// Create with an Idempotency-Key, then replay it.
	key := api.NewOptString("ogen-" + uuid.NewString())
	res, err := c.CreateProduct(ctx, &api.ProductCreate{Name: "ogen 1", Price: 100}, api.CreateProductParams{IdempotencyKey: key})
	check.NoError(err, "create")
	first, ok := res.(*api.ProductHeaders)
	check.That(ok, "create: %#v", res)
	check.That(first.Location == "/v1/products/"+uuid.UUID(first.Response.ID).String() && first.ETag != "" && !first.IdempotentReplayed.Set,
		"create: headers %+v", first)
	res, err = c.CreateProduct(ctx, &api.ProductCreate{Name: "ogen 1", Price: 100}, api.CreateProductParams{IdempotencyKey: key})
	check.NoError(err, "replay")
	again, ok := res.(*api.ProductHeaders)
	check.That(ok && again.Response.ID == first.Response.ID, "replay: %#v", res)
	check.That(again.IdempotentReplayed.Or(false), "replay: no Idempotent-Replayed")
	check.Step("createProduct with Idempotency-Key, replayed: %s", uuid.UUID(first.Response.ID))

	created := []api.UUID{first.Response.ID}
	for i := 2; i <= 5; i++ {
		res, err := c.CreateProduct(ctx, &api.ProductCreate{Name: api.Text200(fmt.Sprintf("ogen %d", i)), Price: i}, api.CreateProductParams{})
		check.NoError(err, "create")
		p, ok := res.(*api.ProductHeaders)
		check.That(ok, "create: %#v", res)
		created = append(created, p.Response.ID)
	}

	// Every page, two at a time.
	var seen []api.UUID
	params := api.ListProductsParams{Limit: api.NewOptInt(2)}
	pages := 0
	for {
		res, err := c.ListProducts(ctx, params)
		check.NoError(err, "list")
		page, ok := res.(*api.ProductPageHeaders)
		check.That(ok, "list: %#v", res)
		pages++
		for _, p := range page.Response.Items {
			seen = append(seen, p.ID)
		}
		next, ok := page.Response.NextCursor.Get()
		if !ok {
			break
		}
		params.Cursor = api.NewOptString(next)
	}
	check.That(fmt.Sprint(seen) == fmt.Sprint(created) && pages == 3, "list: %d pages of %v, created %v", pages, seen, created)
	check.Step("listProducts: %d pages, %d products", pages, len(seen))

	// Conditional GET.
	id := uuid.UUID(first.Response.ID)
	gres, err := c.GetProduct(ctx, api.GetProductParams{ID: id})
	check.NoError(err, "get")
	got, ok := gres.(*api.GetProductOKHeaders)
	check.That(ok && got.ETag != "", "get: %#v", gres)
	tag := got.ETag
	gres, err = c.GetProduct(ctx, api.GetProductParams{ID: id, IfNoneMatch: api.NewOptString(tag)})
	check.NoError(err, "conditional get")
	same, ok := gres.(*api.NotModified)
	check.That(ok && same.ETag == tag, "conditional get: %#v", gres)
	check.Step("getProduct with If-None-Match: 304")

	// A change with the current tag, then one with the stale tag.
	patch := &api.UpdateProductApplicationJSON{Price: api.NewOptInt(250)}
	ures, err := c.UpdateProduct(ctx, patch, api.UpdateProductParams{ID: id, IfMatch: api.NewOptString(tag)})
	check.NoError(err, "patch")
	changed, ok := ures.(*api.GetProductOKHeaders)
	check.That(ok && changed.Response.Price == 250 && changed.ETag != tag, "patch: %#v", ures)
	current := changed.ETag
	ures, err = c.UpdateProduct(ctx, patch, api.UpdateProductParams{ID: id, IfMatch: api.NewOptString(tag)})
	check.NoError(err, "stale patch")
	stale, ok := ures.(*api.PreconditionFailedHeaders)
	check.That(ok && stale.Response.Type == api.ProblemTypeUrnRowfenceProblemPreconditionFailed, "stale patch: %#v", ures)
	check.That(stale.ETag == current, "stale patch: ETag %q, want %q", stale.ETag, current)
	check.Step("updateProduct with a stale If-Match: 412 %s, ETag the current one", stale.Response.Type)

	// A release may add a field to an answer (README, migrations): the
	// client must still decode it. The same product, with one field more,
	// from a server of a later release.
	body, err := changed.Response.MarshalJSON()
	check.NoError(err, "encode")
	body = append(body[:len(body)-1], `,"added_in_a_later_release":{"nested":[1,"two"]}}`...)
	later := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", current)
		w.Header().Set("X-Request-ID", "later")
		_, _ = w.Write(body)
	}))
	defer later.Close()
	lc, err := api.NewClient(later.URL, credentials{key: env.Key, tenant: env.Tenant})
	check.NoError(err, "client")
	lres, err := lc.GetProduct(ctx, api.GetProductParams{ID: id})
	check.NoError(err, "an answer with a field this client does not know")
	check.That(lres.(*api.GetProductOKHeaders).Response.Price == 250, "an answer with a new field: %#v", lres)
	check.Step("getProduct answered with a field added later: decoded")

	dres, err := c.DeleteProduct(ctx, api.DeleteProductParams{ID: id, IfMatch: api.NewOptString(current)})
	check.NoError(err, "delete")
	deleted, ok := dres.(*api.Deleted)
	check.That(ok && deleted.XRequestID != "", "delete: %#v", dres)
	gres, err = c.GetProduct(ctx, api.GetProductParams{ID: id})
	check.NoError(err, "get deleted")
	gone, ok := gres.(*api.NotFoundHeaders)
	check.That(ok && gone.Response.Type == api.ProblemTypeUrnRowfenceProblemNotFound, "get deleted: %#v", gres)
	check.Step("deleteProduct: 204, then 404")

	gres, err = c.GetProduct(ctx, api.GetProductParams{ID: uuid.MustParse(env.OtherID)})
	check.NoError(err, "get another tenant's")
	other, ok := gres.(*api.NotFoundHeaders)
	check.That(ok && other.Response.Type == api.ProblemTypeUrnRowfenceProblemNotFound, "another tenant's product: %#v", gres)
	check.Step("getProduct of another tenant's id: 404 %s", other.Response.Type)
}
