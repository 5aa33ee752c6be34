package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

type platformKeyJSON struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Key        string     `json:"key,omitempty"`
}

func toPlatformKeyJSON(k dbsqlc.PlatformKey, key string) platformKeyJSON {
	return platformKeyJSON{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt.UTC(), LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, Key: key}
}

// adminCmd manages platform admin keys (DATABASE_URL): the credentials of
// /v1/admin, which open the tenant registry and no tenant's data.
type adminCmd struct {
	Key adminKeyCmd `cmd:"" help:"Create, list and revoke platform admin keys."`
}

type adminKeyCmd struct {
	Create adminKeyCreateCmd `cmd:"" help:"Create a platform admin key (printed once)."`
	List   adminKeyListCmd   `cmd:"" help:"List the platform admin keys as JSON (never their secrets)."`
	Revoke adminKeyRevokeCmd `cmd:"" help:"Revoke a platform admin key."`
}

type adminKeyCreateCmd struct {
	Name string `help:"A label for the key."`
}
type adminKeyListCmd struct{}
type adminKeyRevokeCmd struct {
	ID string `required:"" name:"id" help:"The key's id."`
}

func (c *adminKeyCreateCmd) Run(r *runEnv) error { return runAdmin(r, "create", c.Name, "") }
func (adminKeyListCmd) Run(r *runEnv) error      { return runAdmin(r, "list", "", "") }
func (c *adminKeyRevokeCmd) Run(r *runEnv) error { return runAdmin(r, "revoke", "", c.ID) }

func runAdmin(r *runEnv, action, name, id string) error {
	ctx, env, stdout, stderr := r.ctx, r.env, r.stdout, r.stderr
	if len([]rune(name)) > 200 {
		return usageError{"admin key create: --name is at most 200 characters"}
	}
	var keyID uuid.UUID
	if action == "revoke" {
		parsed, err := uuid.Parse(id)
		if err != nil {
			return usageError{"admin key revoke: --id must be a key id (a UUID)"}
		}
		keyID = parsed
	}
	conn, err := connectAdmin(ctx, env, "platform key management connects as the migrating role")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	q := db.Unscoped(conn)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	switch action {
	case "create":
		row, key, err := auth.IssuePlatformKey(ctx, q, name)
		if err != nil {
			return fmt.Errorf("admin key create: %w", err)
		}
		fmt.Fprintln(stderr, "platform admin key created; it is printed once and cannot be shown again")
		return enc.Encode(toPlatformKeyJSON(row, key))
	case "revoke":
		row, err := q.PlatformKeyRevoke(ctx, keyID)
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("admin key revoke: no platform key %s", keyID)
		}
		if err != nil {
			return fmt.Errorf("admin key revoke: %w", err)
		}
		return enc.Encode(toPlatformKeyJSON(row, ""))
	}
	rows, err := q.PlatformKeyList(ctx)
	if err != nil {
		return err
	}
	out := make([]platformKeyJSON, 0, len(rows))
	for _, k := range rows {
		out = append(out, toPlatformKeyJSON(k, ""))
	}
	return enc.Encode(out)
}
