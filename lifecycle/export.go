package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/textrule"
)

// The export format, version 1 (docs/EXPORT.md): JSON Lines, UTF-8.
//
//	{"format":"rowfence-tenant-export","version":1,"exported_at":…,"tenant":{"id":…,"slug":…,"name":…}}
//	{"table":"users","row":{…}}            one line per row: users, then products, then api_keys
//	{"end":true,"counts":{"users":n,…},"sha256":"<hex of every byte before this line>"}
//
// Rows carry every column but tenant_id: an import re-keys them to its target
// tenant. The trailer makes a truncated or altered file detectable.
const (
	ExportFormat  = "rowfence-tenant-export"
	ExportVersion = 1
)

type exportHeader struct {
	Format     string       `json:"format"`
	Version    int          `json:"version"`
	ExportedAt time.Time    `json:"exported_at"`
	Tenant     exportTenant `json:"tenant"`
}

type exportTenant struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
	Name string    `json:"name"`
}

type exportLine struct {
	Table string          `json:"table"`
	Row   json.RawMessage `json:"row"`
}

type exportTrailer struct {
	End    bool           `json:"end"`
	Counts map[string]int `json:"counts"`
	SHA256 string         `json:"sha256"`
}

type userRow struct {
	ID        uuid.UUID   `json:"id"`
	Name      string      `json:"name"`
	Email     string      `json:"email"`
	Role      dbtype.Role `json:"role"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

type productRow struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       int64     `json:"price"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type apiKeyRow struct {
	ID         uuid.UUID   `json:"id"`
	UserID     uuid.UUID   `json:"user_id"`
	Name       string      `json:"name"`
	Role       dbtype.Role `json:"role"`
	SecretHash []byte      `json:"secret_hash"`
	CreatedAt  time.Time   `json:"created_at"`
	ExpiresAt  *time.Time  `json:"expires_at"`
	LastUsedAt *time.Time  `json:"last_used_at"`
	RevokedAt  *time.Time  `json:"revoked_at"`
}

// tables in import order (api_keys reference users).
var tables = []string{"users", "products", "api_keys"}

// Export writes every row of one tenant to w, read in one REPEATABLE READ
// transaction under the tenant's own setting (so the snapshot is consistent
// and can hold nothing of another tenant). pool connects as the migrating
// role or rowfence_platform.
func Export(ctx context.Context, pool *pgxpool.Pool, slug string, w io.Writer) (counts map[string]int, err error) {
	t, err := db.Unscoped(pool).TenantBySlug(ctx, slug)
	if err != nil {
		return nil, notFound(err)
	}
	return ExportTenant(ctx, pool, t, w)
}

// ExportTenant is Export for a tenant already read from the registry.
func ExportTenant(ctx context.Context, pool *pgxpool.Pool, t dbsqlc.Tenant, w io.Writer) (counts map[string]int, err error) {
	var users []dbsqlc.User
	var products []dbsqlc.Product
	var keys []dbsqlc.APIKey
	err = db.Snapshot(ctx, pool, db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		var err error
		if users, err = q.UserExport(ctx); err != nil {
			return err
		}
		if products, err = q.ProductExport(ctx); err != nil {
			return err
		}
		keys, err = q.APIKeyExport(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	enc := json.NewEncoder(bw)
	if err := enc.Encode(exportHeader{Format: ExportFormat, Version: ExportVersion, ExportedAt: time.Now().UTC(),
		Tenant: exportTenant{ID: t.ID, Slug: t.Slug, Name: t.Name}}); err != nil {
		return nil, err
	}
	counts = map[string]int{}
	line := func(table string, row any) error {
		raw, err := json.Marshal(row)
		if err != nil {
			return err
		}
		counts[table]++
		return enc.Encode(exportLine{Table: table, Row: raw})
	}
	for _, u := range users {
		if err := line("users", userRow{u.ID, u.Name, u.Email, u.Role, u.CreatedAt.UTC(), u.UpdatedAt.UTC()}); err != nil {
			return nil, err
		}
	}
	for _, p := range products {
		if err := line("products", productRow{p.ID, p.Name, p.Description, p.Price, p.CreatedAt.UTC(), p.UpdatedAt.UTC()}); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		if err := line("api_keys", apiKeyRow{k.ID, k.UserID, k.Name, k.Role, k.SecretHash, k.CreatedAt.UTC(),
			utc(k.ExpiresAt), utc(k.LastUsedAt), utc(k.RevokedAt)}); err != nil {
			return nil, err
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	for _, table := range tables {
		counts[table] += 0
	}
	trailer, err := json.Marshal(exportTrailer{End: true, Counts: counts, SHA256: hex.EncodeToString(h.Sum(nil))})
	if err != nil {
		return nil, err
	}
	_, err = w.Write(append(trailer, '\n'))
	return counts, err
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ErrBadExport: the file is not a complete, unaltered export of a version
// this rowfence reads. Nothing was written.
var ErrBadExport = errors.New("not a valid rowfence tenant export")

// ErrNotEmpty: the import's target tenant already has rows.
var ErrNotEmpty = errors.New("the target tenant is not empty")

// maxExportLine bounds one line (a row); rows are far smaller.
const maxExportLine = 16 << 20

type parsedExport struct {
	header   exportHeader
	users    []userRow
	products []productRow
	keys     []apiKeyRow
}

// readExport reads and checks a whole export before anything is written:
// format, version, every row strictly typed, counts and checksum.
func readExport(r io.Reader) (parsedExport, error) {
	var out parsedExport
	bad := func(format string, args ...any) (parsedExport, error) {
		return parsedExport{}, fmt.Errorf("%w: %s", ErrBadExport, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxExportLine)
	h := sha256.New()
	n := 0
	var trailer *exportTrailer
	counts := map[string]int{}
	for sc.Scan() {
		n++
		raw := sc.Bytes()
		if trailer != nil {
			return bad("line %d: data after the end line", n)
		}
		if n == 1 {
			if err := strictUnmarshal(raw, &out.header); err != nil {
				return bad("line 1 is not an export header: %v", err)
			}
			if out.header.Format != ExportFormat {
				return bad("format %q, want %q", out.header.Format, ExportFormat)
			}
			if out.header.Version != ExportVersion {
				return bad("format version %d; this rowfence reads version %d", out.header.Version, ExportVersion)
			}
			if err := textrule.TenantName.Check(out.header.Tenant.Name); err != nil {
				return bad("line 1: the tenant's name %v", err)
			}
			h.Write(raw)
			h.Write([]byte{'\n'})
			continue
		}
		if bytes.Contains(raw, []byte(`"end"`)) {
			var t exportTrailer
			if err := strictUnmarshal(raw, &t); err == nil && t.End {
				trailer = &t
				continue
			}
		}
		var l exportLine
		if err := strictUnmarshal(raw, &l); err != nil {
			return bad("line %d: %v", n, err)
		}
		var err error
		switch l.Table {
		case "users":
			var u userRow
			if err = strictUnmarshal(l.Row, &u); err == nil {
				err = errors.Join(checkTexts(textField{"name", u.Name, textrule.UserName}, textField{"email", u.Email, textrule.UserEmail}),
					checkTimes(timeField{"created_at", &u.CreatedAt}, timeField{"updated_at", &u.UpdatedAt}))
				out.users = append(out.users, u)
			}
		case "products":
			var p productRow
			if err = strictUnmarshal(l.Row, &p); err == nil {
				err = errors.Join(checkTexts(textField{"name", p.Name, textrule.ProductName}, textField{"description", p.Description, textrule.ProductDescription}),
					checkTimes(timeField{"created_at", &p.CreatedAt}, timeField{"updated_at", &p.UpdatedAt}))
				out.products = append(out.products, p)
			}
		case "api_keys":
			var k apiKeyRow
			if err = strictUnmarshal(l.Row, &k); err == nil {
				err = errors.Join(checkTexts(textField{"name", k.Name, textrule.APIKeyName}),
					checkTimes(timeField{"created_at", &k.CreatedAt}, timeField{"expires_at", k.ExpiresAt},
						timeField{"last_used_at", k.LastUsedAt}, timeField{"revoked_at", k.RevokedAt}))
				out.keys = append(out.keys, k)
			}
		default:
			err = fmt.Errorf("unknown table %q", l.Table)
		}
		if err != nil {
			return bad("line %d: %v", n, err)
		}
		counts[l.Table]++
		h.Write(raw)
		h.Write([]byte{'\n'})
	}
	if err := sc.Err(); err != nil {
		return bad("%v", err)
	}
	switch {
	case n == 0:
		return bad("the file is empty")
	case trailer == nil:
		return bad("no end line: the file is truncated")
	case trailer.SHA256 != hex.EncodeToString(h.Sum(nil)):
		return bad("checksum mismatch: the file was altered or damaged")
	}
	for _, table := range tables {
		if trailer.Counts[table] != counts[table] {
			return bad("%s: %d rows, the end line says %d", table, counts[table], trailer.Counts[table])
		}
	}
	return out, nil
}

// strictUnmarshal decodes one JSON value as the API decodes request bodies
// (httpapi.decodeValid): encoding/json/v2, which refuses duplicate and
// unknown names, names in another case, invalid UTF-8, unpaired surrogate
// escapes and trailing data.
func strictUnmarshal(raw []byte, v any) error {
	return jsonv2.Unmarshal(raw, v, jsonv2.RejectUnknownMembers(true))
}

// textField is a row's text and the rules it is held to.
type textField struct {
	name, value string
	rules       textrule.Field
}

// checkTexts applies the input rules (textrule) to a row's texts, as the
// API does to the same fields.
func checkTexts(fields ...textField) error {
	for _, f := range fields {
		if err := f.rules.Check(f.value); err != nil {
			return fmt.Errorf("%s %v", f.name, err)
		}
	}
	return nil
}

// timeField is a row's timestamp (nil: absent, allowed).
type timeField struct {
	name  string
	value *time.Time
}

// checkTimes refuses timestamps at or before db.KeysetOrigin (such a row
// would never be listed). RFC 3339 (and
// so the decoder) already bounds them above, at year 9999.
func checkTimes(fields ...timeField) error {
	for _, f := range fields {
		if f.value != nil && !f.value.After(db.KeysetOrigin) {
			return fmt.Errorf("%s %s is not after %s", f.name, f.value.UTC().Format(time.RFC3339Nano), db.KeysetOrigin.Format(time.RFC3339))
		}
	}
	return nil
}

// Imported says what Import did.
type Imported struct {
	Tenant dbsqlc.Tenant
	Counts map[string]int
	// KeysSkipped: API keys embed their tenant's id, so they are restored
	// only into a tenant with the exported id (a restore after deletion);
	// into another tenant they would never work, and are left out.
	KeysSkipped int
}

// Import restores an export into the tenant slug, all or nothing, re-keying
// every row to it. A tenant that does not exist is created (with the
// exported id when no tenant has it, so a restore after deletion gives back
// the same tenant and its keys work again); one that exists must be empty.
// The whole file is checked before anything is written.
func Import(ctx context.Context, pool *pgxpool.Pool, slug, name string, r io.Reader) (Imported, error) {
	if name != "" {
		if err := textrule.TenantName.Check(name); err != nil {
			return Imported{}, &db.Error{Code: db.ErrInvalid, Field: "name", Message: fmt.Sprintf("the tenant's name %v", err)}
		}
	}
	exp, err := readExport(r)
	if err != nil {
		return Imported{}, err
	}
	if name == "" {
		name = exp.header.Tenant.Name
	}
	var out Imported
	existing, err := db.Unscoped(pool).TenantBySlug(ctx, slug)
	create := errors.Is(err, db.ErrNotFound)
	switch {
	case create:
		existing.ID = exp.header.Tenant.ID
		if _, err := db.Unscoped(pool).TenantGet(ctx, existing.ID); !errors.Is(err, db.ErrNotFound) {
			existing.ID = uuid.New() // the exported id is taken (or unknown): a copy
		}
	case err != nil:
		return Imported{}, err
	}
	keys := exp.keys
	if existing.ID != exp.header.Tenant.ID {
		out.KeysSkipped, keys = len(keys), nil
	}
	err = db.Tx(ctx, pool, db.Scope{TenantID: existing.ID, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		if create {
			t, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: existing.ID, Slug: slug, Name: name})
			if err != nil {
				return err
			}
			out.Tenant = t
		} else {
			c, err := q.TenantRowCounts(ctx)
			if err != nil {
				return err
			}
			if c.Users+c.Products+c.ApiKeys > 0 {
				return fmt.Errorf("%w: %s has %d users, %d products, %d API keys", ErrNotEmpty, slug, c.Users, c.Products, c.ApiKeys)
			}
			out.Tenant = existing
		}
		out.Counts = map[string]int{}
		for start := 0; start < len(exp.users); start += importChunk {
			var p dbsqlc.UserImportParams
			for _, u := range exp.users[start:min(start+importChunk, len(exp.users))] {
				p.Ids, p.Names, p.Emails, p.Roles = append(p.Ids, u.ID), append(p.Names, u.Name), append(p.Emails, u.Email), append(p.Roles, string(u.Role))
				p.CreatedAts, p.UpdatedAts = append(p.CreatedAts, u.CreatedAt), append(p.UpdatedAts, u.UpdatedAt)
			}
			n, err := q.UserImport(ctx, p)
			if err != nil {
				return err
			}
			out.Counts["users"] += int(n)
		}
		for start := 0; start < len(exp.products); start += importChunk {
			var p dbsqlc.ProductImportParams
			for _, r := range exp.products[start:min(start+importChunk, len(exp.products))] {
				p.Ids, p.Names, p.Descriptions, p.Prices = append(p.Ids, r.ID), append(p.Names, r.Name), append(p.Descriptions, r.Description), append(p.Prices, r.Price)
				p.CreatedAts, p.UpdatedAts = append(p.CreatedAts, r.CreatedAt), append(p.UpdatedAts, r.UpdatedAt)
			}
			n, err := q.ProductImport(ctx, p)
			if err != nil {
				return err
			}
			out.Counts["products"] += int(n)
		}
		for start := 0; start < len(keys); start += importChunk {
			var p dbsqlc.APIKeyImportParams
			for _, k := range keys[start:min(start+importChunk, len(keys))] {
				p.Ids, p.UserIds, p.Names, p.Roles = append(p.Ids, k.ID), append(p.UserIds, k.UserID), append(p.Names, k.Name), append(p.Roles, string(k.Role))
				p.SecretHashes, p.CreatedAts = append(p.SecretHashes, k.SecretHash), append(p.CreatedAts, k.CreatedAt)
				p.ExpiresAts, p.LastUsedAts, p.RevokedAts = append(p.ExpiresAts, timeText(k.ExpiresAt)),
					append(p.LastUsedAts, timeText(k.LastUsedAt)), append(p.RevokedAts, timeText(k.RevokedAt))
			}
			n, err := q.APIKeyImport(ctx, p)
			if err != nil {
				return err
			}
			out.Counts["api_keys"] += int(n)
		}
		return nil
	})
	if err != nil {
		return Imported{}, err
	}
	return out, nil
}

// importChunk rows go in one statement.
const importChunk = 1000

func timeText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
