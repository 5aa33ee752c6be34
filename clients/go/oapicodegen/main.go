// Command oapicodegen runs the client flow with a client that oapi-codegen
// generated from the served contract, with default settings, into ./api
// (at test time; never committed):
//
//	go tool oapi-codegen -generate types,client -package api -o api/api.gen.go openapi.json
//
// The credential and the tenant are set once, on the client; every call
// after that names neither.
package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/clients/go/check"
	"github.com/rowfence/rowfence/clients/go/oapicodegen/api"
)

func main() {
	env := check.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := api.NewClientWithResponses(env.URL, api.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+env.Key)
		req.Header.Set("X-Tenant-ID", env.Tenant)
		return nil
	}))
	check.NoError(err, "client")

	me, err := c.GetMeWithResponse(ctx)
	check.NoError(err, "GET /v1/me")
	check.That(me.JSON200 != nil && me.JSON200.TenantSlug == env.Tenant, "me: %d %s", me.StatusCode(), me.Body)
	check.That(me.Headers200 != nil && me.Headers200.XRequestID != "", "me: no X-Request-ID")
	check.That(me.Headers200.RateLimit != nil && me.Headers200.RateLimitPolicy != nil, "me: no RateLimit headers")
	check.Step("getMe: tenant %s, X-Request-ID %s, RateLimit %s", me.JSON200.TenantSlug, me.Headers200.XRequestID, *me.Headers200.RateLimit)

	// Create with an Idempotency-Key, then replay it.
	key := "oapi-codegen-" + uuid.NewString()
	first, err := c.CreateProductWithResponse(ctx, &api.CreateProductParams{IdempotencyKey: &key}, api.ProductCreate{Name: "oapi-codegen 1", Price: 100})
	check.NoError(err, "create")
	check.That(first.JSON201 != nil, "create: %d %s", first.StatusCode(), first.Body)
	h := first.Headers201
	check.That(h.Location == "/v1/products/"+first.JSON201.Id.String() && h.ETag != "" && h.IdempotentReplayed == nil,
		"create: headers %+v", *h)
	again, err := c.CreateProductWithResponse(ctx, &api.CreateProductParams{IdempotencyKey: &key}, api.ProductCreate{Name: "oapi-codegen 1", Price: 100})
	check.NoError(err, "replay")
	check.That(again.JSON201 != nil && again.JSON201.Id == first.JSON201.Id, "replay: %d %s", again.StatusCode(), again.Body)
	check.That(again.Headers201.IdempotentReplayed != nil && *again.Headers201.IdempotentReplayed, "replay: no Idempotent-Replayed")
	check.Step("createProduct with Idempotency-Key, replayed: %s", first.JSON201.Id)

	created := []uuid.UUID{first.JSON201.Id}
	for i := 2; i <= 5; i++ {
		res, err := c.CreateProductWithResponse(ctx, nil, api.ProductCreate{Name: fmt.Sprintf("oapi-codegen %d", i), Price: i})
		check.NoError(err, "create")
		check.That(res.JSON201 != nil, "create: %d %s", res.StatusCode(), res.Body)
		created = append(created, res.JSON201.Id)
	}

	// Every page, two at a time.
	var seen []uuid.UUID
	limit, pages := 2, 0
	var cursor *string
	for {
		page, err := c.ListProductsWithResponse(ctx, &api.ListProductsParams{Limit: &limit, Cursor: cursor})
		check.NoError(err, "list")
		check.That(page.JSON200 != nil, "list: %d %s", page.StatusCode(), page.Body)
		pages++
		for _, p := range page.JSON200.Items {
			seen = append(seen, p.Id)
		}
		if page.JSON200.NextCursor == nil {
			break
		}
		cursor = page.JSON200.NextCursor
	}
	check.That(fmt.Sprint(seen) == fmt.Sprint(created) && pages == 3, "list: %d pages of %v, created %v", pages, seen, created)
	check.Step("listProducts: %d pages, %d products", pages, len(seen))

	// Conditional GET.
	id := first.JSON201.Id
	got, err := c.GetProductWithResponse(ctx, id, nil)
	check.NoError(err, "get")
	check.That(got.JSON200 != nil && got.Headers200.ETag != "", "get: %d %s", got.StatusCode(), got.Body)
	tag := got.Headers200.ETag
	same, err := c.GetProductWithResponse(ctx, id, &api.GetProductParams{IfNoneMatch: &tag})
	check.NoError(err, "conditional get")
	check.That(same.StatusCode() == http.StatusNotModified && same.Headers304.ETag == tag, "conditional get: %d", same.StatusCode())
	check.Step("getProduct with If-None-Match: 304")

	// A change with the current tag, then one with the stale tag.
	price := 250
	changed, err := c.UpdateProductWithResponse(ctx, id, &api.UpdateProductParams{IfMatch: &tag}, api.ProductPatch{Price: &price})
	check.NoError(err, "patch")
	check.That(changed.JSON200 != nil && changed.JSON200.Price == price && changed.Headers200.ETag != tag, "patch: %d %s", changed.StatusCode(), changed.Body)
	current := changed.Headers200.ETag
	stale, err := c.UpdateProductWithResponse(ctx, id, &api.UpdateProductParams{IfMatch: &tag}, api.ProductPatch{Price: &price})
	check.NoError(err, "stale patch")
	check.That(stale.ApplicationproblemJSON412 != nil && stale.ApplicationproblemJSON412.Type == api.UrnRowfenceProblemPreconditionFailed,
		"stale patch: %d %s", stale.StatusCode(), stale.Body)
	check.That(stale.Headers412.ETag == current, "stale patch: ETag %q, want %q", stale.Headers412.ETag, current)
	check.Step("updateProduct with a stale If-Match: 412 %s, ETag the current one", stale.ApplicationproblemJSON412.Type)

	deleted, err := c.DeleteProductWithResponse(ctx, id, &api.DeleteProductParams{IfMatch: &current})
	check.NoError(err, "delete")
	check.That(deleted.StatusCode() == http.StatusNoContent && deleted.Headers204.XRequestID != "", "delete: %d %s", deleted.StatusCode(), deleted.Body)
	gone, err := c.GetProductWithResponse(ctx, id, nil)
	check.NoError(err, "get deleted")
	check.That(gone.ApplicationproblemJSON404 != nil && gone.ApplicationproblemJSON404.Type == api.UrnRowfenceProblemNotFound, "get deleted: %d %s", gone.StatusCode(), gone.Body)
	check.Step("deleteProduct: 204, then 404")

	other, err := c.GetProductWithResponse(ctx, uuid.MustParse(env.OtherID), nil)
	check.NoError(err, "get another tenant's")
	check.That(other.ApplicationproblemJSON404 != nil && other.ApplicationproblemJSON404.Type == api.UrnRowfenceProblemNotFound,
		"another tenant's product: %d %s", other.StatusCode(), other.Body)
	check.Step("getProduct of another tenant's id: 404 %s", other.ApplicationproblemJSON404.Type)
}
