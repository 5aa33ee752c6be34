package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

// keyCmd manages a tenant's API keys from the operator's side
// (DATABASE_URL), under that tenant's scope and the admin role, like the
// API's /v1/api-keys.
type keyCmd struct {
	Create keyCreateCmd `cmd:"" help:"Create an API key (printed once) for a user of the tenant."`
	List   keyListCmd   `cmd:"" help:"List the tenant's API keys as JSON (never their secrets)."`
	Revoke keyRevokeCmd `cmd:"" help:"Revoke an API key."`
}

type keyCreateCmd struct {
	Tenant  string `required:"" placeholder:"SLUG" help:"The tenant's slug."`
	Role    string `required:"" help:"admin, member or viewer (at most the user's own role)."`
	User    string `placeholder:"EMAIL" help:"Email of the key's user (default: the tenant's first admin)."`
	Name    string `help:"A label for the key."`
	Expires string `placeholder:"TIME" help:"Expiry time, RFC 3339 (default: never)."`
}
type keyListCmd struct {
	Tenant string `required:"" placeholder:"SLUG" help:"The tenant's slug."`
}
type keyRevokeCmd struct {
	Tenant string `required:"" placeholder:"SLUG" help:"The tenant's slug."`
	ID     string `required:"" name:"id" help:"The key's id."`
}

func (c *keyCreateCmd) Run(r *runEnv) error {
	return runKey(r, "create", keyArgs{slug: c.Tenant, role: c.Role, email: c.User, name: c.Name, expires: c.Expires})
}
func (c *keyListCmd) Run(r *runEnv) error { return runKey(r, "list", keyArgs{slug: c.Tenant}) }
func (c *keyRevokeCmd) Run(r *runEnv) error {
	return runKey(r, "revoke", keyArgs{slug: c.Tenant, id: c.ID})
}

// keyArgs are the key commands' flags.
type keyArgs struct{ slug, role, email, name, expires, id string }

func runKey(r *runEnv, action string, a keyArgs) error {
	ctx, env, stdout, stderr := r.ctx, r.env, r.stdout, r.stderr
	slug, role, email, name, expires, id := &a.slug, a.role, a.email, a.name, a.expires, a.id
	if !tenancy.ValidSlug(*slug) {
		return usageError{"key " + action + ": --tenant must be a tenant slug"}
	}
	var keyID uuid.UUID
	var expiresAt *time.Time
	switch action {
	case "create":
		if !dbtype.Role(role).Client() {
			return usageError{"key create: --role must be admin, member or viewer"}
		}
		if expires != "" {
			t, err := time.Parse(time.RFC3339, expires)
			if err != nil || !t.After(time.Now()) {
				return usageError{"key create: --expires must be a future RFC 3339 time such as 2030-01-02T15:04:05Z"}
			}
			expiresAt = &t
		}
	case "revoke":
		parsed, err := uuid.Parse(id)
		if err != nil {
			return usageError{"key revoke: --id must be a key id (a UUID)"}
		}
		keyID = parsed
	}
	pool, err := connectAdminPool(ctx, env, "key management connects as the migrating role")
	if err != nil {
		return err
	}
	defer pool.Close()
	tenant, err := lookupTenant(ctx, pool, *slug)
	if err != nil {
		return fmt.Errorf("key %s: %w", action, err)
	}
	scope := db.Scope{TenantID: tenant, Role: dbtype.RoleAdmin}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	switch action {
	case "list":
		var out []httpapi.APIKeyJSON
		after := dbsqlc.APIKeyListParams{AfterCreatedAt: time.Time{}, RowLimit: 1000}
		for {
			page, err := db.One(ctx, pool, scope, func(q *dbsqlc.Queries) ([]dbsqlc.APIKey, error) { return q.APIKeyList(ctx, after) })
			if err != nil {
				return fmt.Errorf("key list: %w", err)
			}
			for _, k := range page {
				out = append(out, httpapi.RenderAPIKey(k))
			}
			if len(page) < int(after.RowLimit) {
				break
			}
			last := page[len(page)-1]
			after.AfterCreatedAt, after.AfterID = last.CreatedAt, last.ID
		}
		if out == nil {
			out = []httpapi.APIKeyJSON{}
		}
		return enc.Encode(out)
	case "revoke":
		k, err := db.One(ctx, pool, scope, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyRevoke(ctx, keyID) })
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("key revoke: tenant %s has no key %s", *slug, keyID)
		}
		if err != nil {
			return fmt.Errorf("key revoke: %w", err)
		}
		fmt.Fprintf(stderr, "revoked; running servers stop accepting it within AUTH_CACHE_TTL (default %s)\n", auth.DefaultCacheTTL)
		return enc.Encode(httpapi.RenderAPIKey(k))
	}
	var row dbsqlc.APIKey
	var key string
	err = db.Tx(ctx, pool, scope, func(q *dbsqlc.Queries) error {
		var user dbsqlc.User
		var err error
		if email != "" {
			user, err = q.UserByEmail(ctx, email)
		} else {
			user, err = q.UserFirstAdmin(ctx)
		}
		if err != nil {
			return err
		}
		row, key, err = auth.IssueKey(ctx, q, tenant, user.ID, dbtype.Role(role), name, expiresAt)
		return err
	})
	switch {
	case errors.Is(err, db.ErrNotFound) && email != "":
		return fmt.Errorf("key create: tenant %s has no user %s", *slug, email)
	case errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("key create: tenant %s has no admin user; name one with --user", *slug)
	case errors.Is(err, auth.ErrRoleAboveUser):
		return fmt.Errorf("key create: %w", err)
	case err != nil:
		return fmt.Errorf("key create: %w", err)
	}
	fmt.Fprintln(stderr, "key created; it is printed once and cannot be shown again")
	out := httpapi.RenderAPIKey(row)
	out.Key = key
	return enc.Encode(out)
}

// lookupTenant finds a tenant's id by slug through tenant_lookup.
func lookupTenant(ctx context.Context, pool *pgxpool.Pool, slug string) (uuid.UUID, error) {
	t, err := tenancy.NewResolver(pool, 0).Resolve(ctx, tenancy.Key{Slug: slug})
	if errors.Is(err, tenancy.ErrUnknown) {
		return uuid.Nil, fmt.Errorf("no tenant %q", slug)
	}
	return t.ID, err
}
