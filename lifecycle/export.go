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
	"hash"
	"io"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/textrule"
)

// The export format, version 2 (docs/EXPORT.md): JSON Lines, UTF-8.
//
//	{"format":"rowfence-tenant-export","version":2,"exported_at":…,"tenant":{"id":…,"slug":…,"name":…}}
//	{"table":"users","row":{…}}            one line per row: users, then products, then api_keys
//	{"end":true,"counts":{"users":n,…},"sha256":"<hex of every byte before this line>"}
//
// Rows carry every column but tenant_id: an import re-keys them to its target
// tenant. The trailer makes a truncated or altered file detectable. Version 2
// added users' external_id; an import reads versions 1 and 2.
const (
	ExportFormat  = "rowfence-tenant-export"
	ExportVersion = 2
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
	ID         uuid.UUID   `json:"id"`
	Name       string      `json:"name"`
	Email      string      `json:"email"`
	Role       dbtype.Role `json:"role"`
	ExternalID *string     `json:"external_id"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
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

// ExportTenant is Export for a tenant already read from the registry. It
// streams: rows come one at a time from the snapshot (streamRows) and go to
// w through a 64 KiB buffer, so its memory does not grow with the tenant.
func ExportTenant(ctx context.Context, pool *pgxpool.Pool, t dbsqlc.Tenant, w io.Writer) (counts map[string]int, err error) {
	err = db.Stream(ctx, pool, db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}, db.BeginSnapshot, func(conn *pgx.Conn) error {
		counts, err = exportFrom(ctx, conn, t, w)
		return err
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// exportFrom writes the export of t from conn, which is in a transaction
// under t's setting (db.Stream).
func exportFrom(ctx context.Context, conn *pgx.Conn, t dbsqlc.Tenant, w io.Writer) (counts map[string]int, err error) {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	header, err := json.Marshal(exportHeader{Format: ExportFormat, Version: ExportVersion, ExportedAt: time.Now().UTC(),
		Tenant: exportTenant{ID: t.ID, Slug: t.Slug, Name: t.Name}})
	if err != nil {
		return nil, err
	}
	if _, err := bw.Write(append(header, '\n')); err != nil {
		return nil, err
	}
	counts = map[string]int{}
	if err := streamRows(ctx, conn, bw, counts); err != nil {
		return nil, err
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

// ErrBadExport: the file is not a complete, unaltered export of a version
// this rowfence reads. Nothing was written.
var ErrBadExport = errors.New("not a valid rowfence tenant export")

// ErrNotEmpty: the import's target tenant already has rows.
var ErrNotEmpty = errors.New("the target tenant is not empty")

// maxExportLine bounds one line (a row); rows are far smaller.
const maxExportLine = 16 << 20

// exportReader reads an export line by line, checking each as it comes:
// format, version, every row strictly typed and held to the input rules,
// and at the end the counts and checksum. It holds one line at a time.
type exportReader struct {
	sc      *bufio.Scanner
	h       hash.Hash
	n       int
	header  exportHeader
	counts  map[string]int
	trailer *exportTrailer
}

func badExport(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadExport, fmt.Sprintf(format, args...))
}

// newExportReader reads and checks the header line.
func newExportReader(r io.Reader) (*exportReader, error) {
	er := &exportReader{sc: bufio.NewScanner(r), h: sha256.New(), counts: map[string]int{}}
	er.sc.Buffer(make([]byte, 64<<10), maxExportLine)
	if !er.sc.Scan() {
		if err := er.sc.Err(); err != nil {
			return nil, badExport("%v", err)
		}
		return nil, badExport("the file is empty")
	}
	er.n = 1
	raw := er.sc.Bytes()
	if err := strictUnmarshal(raw, &er.header); err != nil {
		return nil, badExport("line 1 is not an export header: %v", err)
	}
	if er.header.Format != ExportFormat {
		return nil, badExport("format %q, want %q", er.header.Format, ExportFormat)
	}
	if er.header.Version < 1 || er.header.Version > ExportVersion {
		return nil, badExport("format version %d; this rowfence reads versions 1 to %d", er.header.Version, ExportVersion)
	}
	if err := textrule.TenantName.Check(er.header.Tenant.Name); err != nil {
		return nil, badExport("line 1: the tenant's name %v", err)
	}
	er.h.Write(raw)
	er.h.Write([]byte{'\n'})
	return er, nil
}

// next returns the next row (a userRow, productRow or apiKeyRow) and its
// table, or io.EOF after the end line once counts and checksum are right.
func (er *exportReader) next() (string, any, error) {
	for er.sc.Scan() {
		er.n++
		raw := er.sc.Bytes()
		if er.trailer != nil {
			return "", nil, badExport("line %d: data after the end line", er.n)
		}
		if bytes.Contains(raw, []byte(`"end"`)) {
			var t exportTrailer
			if err := strictUnmarshal(raw, &t); err == nil && t.End {
				er.trailer = &t
				continue
			}
		}
		var l exportLine
		if err := strictUnmarshal(raw, &l); err != nil {
			return "", nil, badExport("line %d: %v", er.n, err)
		}
		var row any
		var err error
		switch l.Table {
		case "users":
			var u userRow
			if err = strictUnmarshal(l.Row, &u); err == nil {
				err = errors.Join(checkTexts(textField{"name", u.Name, textrule.UserName}, textField{"email", u.Email, textrule.UserEmail}),
					checkExternalID(u.ExternalID),
					checkTimes(timeField{"created_at", &u.CreatedAt}, timeField{"updated_at", &u.UpdatedAt}))
				if u.ExternalID != nil && er.header.Version < 2 {
					err = errors.Join(err, errors.New("external_id is version 2's; the header says version 1"))
				}
			}
			row = u
		case "products":
			var p productRow
			if err = strictUnmarshal(l.Row, &p); err == nil {
				err = errors.Join(checkTexts(textField{"name", p.Name, textrule.ProductName}, textField{"description", p.Description, textrule.ProductDescription}),
					checkTimes(timeField{"created_at", &p.CreatedAt}, timeField{"updated_at", &p.UpdatedAt}))
			}
			row = p
		case "api_keys":
			var k apiKeyRow
			if err = strictUnmarshal(l.Row, &k); err == nil {
				err = errors.Join(checkTexts(textField{"name", k.Name, textrule.APIKeyName}),
					checkTimes(timeField{"created_at", &k.CreatedAt}, timeField{"expires_at", k.ExpiresAt},
						timeField{"last_used_at", k.LastUsedAt}, timeField{"revoked_at", k.RevokedAt}))
			}
			row = k
		default:
			err = fmt.Errorf("unknown table %q", l.Table)
		}
		if err != nil {
			return "", nil, badExport("line %d: %v", er.n, err)
		}
		er.counts[l.Table]++
		er.h.Write(raw)
		er.h.Write([]byte{'\n'})
		return l.Table, row, nil
	}
	if err := er.sc.Err(); err != nil {
		return "", nil, badExport("%v", err)
	}
	switch {
	case er.trailer == nil:
		return "", nil, badExport("no end line: the file is truncated")
	case er.trailer.SHA256 != hex.EncodeToString(er.h.Sum(nil)):
		return "", nil, badExport("checksum mismatch: the file was altered or damaged")
	}
	for _, table := range tables {
		if er.trailer.Counts[table] != er.counts[table] {
			return "", nil, badExport("%s: %d rows, the end line says %d", table, er.counts[table], er.trailer.Counts[table])
		}
	}
	return "", nil, io.EOF
}

// checkExternalID applies textrule.ExternalID, as the API does.
func checkExternalID(v *string) error {
	if v == nil {
		return nil
	}
	return checkTexts(textField{"external_id", *v, textrule.ExternalID})
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
// The file streams: rows are written as they are read and checked, in one
// transaction that its last check (counts, checksum) precedes, so a bad or
// truncated file leaves nothing behind.
func Import(ctx context.Context, pool *pgxpool.Pool, slug, name string, r io.Reader) (Imported, error) {
	if name != "" {
		if err := textrule.TenantName.Check(name); err != nil {
			return Imported{}, &db.Error{Code: db.ErrInvalid, Field: "name", Message: fmt.Sprintf("the tenant's name %v", err)}
		}
	}
	er, err := newExportReader(r)
	if err != nil {
		return Imported{}, err
	}
	if name == "" {
		name = er.header.Tenant.Name
	}
	var out Imported
	existing, err := db.Unscoped(pool).TenantBySlug(ctx, slug)
	create := errors.Is(err, db.ErrNotFound)
	switch {
	case create:
		existing.ID = er.header.Tenant.ID
		if _, err := db.Unscoped(pool).TenantGet(ctx, existing.ID); !errors.Is(err, db.ErrNotFound) {
			existing.ID = uuid.New() // the exported id is taken (or unknown): a copy
		}
	case err != nil:
		return Imported{}, err
	case existing.Status == dbtype.TenantStatusArchived:
		// Its rows are in its archive: live rows beside it would make
		// Restore refuse it (TestArchivedTenantKeepsItsStatus).
		return Imported{}, ErrArchived
	}
	keepKeys := existing.ID == er.header.Tenant.ID
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
		var err error
		out.Counts, out.KeysSkipped, err = importRows(ctx, q, er, keepKeys)
		return err
	})
	if err != nil {
		return Imported{}, err
	}
	return out, nil
}

// importRows writes the rows of er in statements of importChunk rows, as
// they are read: memory holds one batch, whatever the file's size. The
// caller's transaction makes it all or nothing; er's last check (counts and
// checksum) comes before that transaction commits.
func importRows(ctx context.Context, q *dbsqlc.Queries, er *exportReader, keepKeys bool) (counts map[string]int, skipped int, err error) {
	counts = map[string]int{}
	var (
		users    dbsqlc.UserImportParams
		products dbsqlc.ProductImportParams
		keys     dbsqlc.APIKeyImportParams
		pending  int
		table    string
	)
	flush := func() error {
		if pending == 0 {
			return nil
		}
		var n int64
		var err error
		switch table {
		case "users":
			n, err = q.UserImport(ctx, users)
			users = dbsqlc.UserImportParams{}
		case "products":
			n, err = q.ProductImport(ctx, products)
			products = dbsqlc.ProductImportParams{}
		case "api_keys":
			n, err = q.APIKeyImport(ctx, keys)
			keys = dbsqlc.APIKeyImportParams{}
		}
		counts[table] += int(n)
		pending = 0
		return err
	}
	for {
		t, row, err := er.next()
		if errors.Is(err, io.EOF) {
			return counts, skipped, flush()
		}
		if err != nil {
			return nil, 0, err
		}
		if t == "api_keys" && !keepKeys {
			skipped++
			continue
		}
		if t != table || pending == importChunk {
			if err := flush(); err != nil {
				return nil, 0, err
			}
			table = t
		}
		pending++
		switch r := row.(type) {
		case userRow:
			users.Ids, users.Names, users.Emails, users.Roles = append(users.Ids, r.ID), append(users.Names, r.Name), append(users.Emails, r.Email), append(users.Roles, string(r.Role))
			users.ExternalIds = append(users.ExternalIds, deref(r.ExternalID))
			users.CreatedAts, users.UpdatedAts = append(users.CreatedAts, r.CreatedAt), append(users.UpdatedAts, r.UpdatedAt)
		case productRow:
			products.Ids, products.Names, products.Descriptions, products.Prices = append(products.Ids, r.ID), append(products.Names, r.Name), append(products.Descriptions, r.Description), append(products.Prices, r.Price)
			products.CreatedAts, products.UpdatedAts = append(products.CreatedAts, r.CreatedAt), append(products.UpdatedAts, r.UpdatedAt)
		case apiKeyRow:
			keys.Ids, keys.UserIds, keys.Names, keys.Roles = append(keys.Ids, r.ID), append(keys.UserIds, r.UserID), append(keys.Names, r.Name), append(keys.Roles, string(r.Role))
			keys.SecretHashes, keys.CreatedAts = append(keys.SecretHashes, r.SecretHash), append(keys.CreatedAts, r.CreatedAt)
			keys.ExpiresAts, keys.LastUsedAts, keys.RevokedAts = append(keys.ExpiresAts, timeText(r.ExpiresAt)),
				append(keys.LastUsedAts, timeText(r.LastUsedAt)), append(keys.RevokedAts, timeText(r.RevokedAt))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// importChunk rows go in one statement.
const importChunk = 5000

func timeText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
