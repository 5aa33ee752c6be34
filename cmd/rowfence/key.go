package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

// runKey manages a tenant's API keys from the operator's side (DATABASE_URL),
// under that tenant's scope and the admin role, like the API's /v1/api-keys.
func runKey(ctx context.Context, args []string, env config.Config, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"key: missing action (create, list or revoke)"}
	}
	action, args := args[0], args[1:]
	fs := flag.NewFlagSet("key "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	slug := fs.String("tenant", "", "the tenant's slug (required)")
	var role, email, name, expires, id string
	switch action {
	case "create":
		fs.StringVar(&role, "role", "", "admin, member or viewer (required; at most the user's own role)")
		fs.StringVar(&email, "user", "", "email of the key's user (default: the tenant's first admin)")
		fs.StringVar(&name, "name", "", "a label for the key")
		fs.StringVar(&expires, "expires", "", "expiry time, RFC 3339 (default: never)")
	case "revoke":
		fs.StringVar(&id, "id", "", "the key's id (required)")
	case "list":
	default:
		return usageError{fmt.Sprintf("key: unknown action %q (create, list or revoke)", action)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
	row, err := db.Unscoped(pool).TenantLookup(ctx, dbsqlc.TenantLookupParams{Slug: &slug})
	if errors.Is(err, db.ErrNotFound) {
		return uuid.Nil, fmt.Errorf("no tenant %q", slug)
	}
	return row.ID, err
}
