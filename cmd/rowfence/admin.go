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

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/config"
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

// runAdmin manages platform admin keys (DATABASE_URL): the credentials of
// /v1/admin, which open the tenant registry and no tenant's data.
func runAdmin(ctx context.Context, args []string, env config.Config, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "key" {
		return usageError{"admin: use admin key create|list|revoke"}
	}
	action, args := args[1], args[2:]
	fs := flag.NewFlagSet("admin key "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var name, id string
	switch action {
	case "create":
		fs.StringVar(&name, "name", "", "a label for the key")
	case "revoke":
		fs.StringVar(&id, "id", "", "the key's id (required)")
	case "list":
	default:
		return usageError{fmt.Sprintf("admin key: unknown action %q (create, list or revoke)", action)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
