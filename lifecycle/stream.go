package lifecycle

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// The export's reads. They live here rather than in queries/ because sqlc's
// :many collects a whole result in memory; pgx.Rows reads one row at a time
// from the socket. Like every query they never name the tenant: they run
// under its setting (db.Stream), and RLS gives them its rows only. No ORDER
// BY: a sort of ten million rows spills to disk and is not needed (an import
// does not depend on the order; users come before the API keys that
// reference them).
const (
	userExportSQL    = `SELECT id, name, email, role, external_id, created_at, updated_at FROM users`
	productExportSQL = `SELECT id, name, description, price, created_at, updated_at FROM products`
	apiKeyExportSQL  = `SELECT id, user_id, name, role, secret_hash, created_at, expires_at, last_used_at, revoked_at FROM api_keys`
)

// streamRows writes one line per row of users, products and api_keys to w,
// encoding each row as it arrives (appendUser and the others write the same
// JSON encoding/json would, without its reflection: the export's CPU is on
// the database's side).
func streamRows(ctx context.Context, conn *pgx.Conn, w io.Writer, counts map[string]int) error {
	line := make([]byte, 0, 1024)
	each := func(table, sql string, encode func(rows pgx.Rows, b []byte) ([]byte, error)) error {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		prefix := `{"table":"` + table + `","row":`
		for rows.Next() {
			line = append(line[:0], prefix...)
			if line, err = encode(rows, line); err != nil {
				return err
			}
			line = append(line, "}\n"...)
			if _, err := w.Write(line); err != nil {
				return err
			}
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		counts[table] = n
		return nil
	}
	var (
		id, userID                     uuid.UUID
		name, email, role, description string
		externalID                     *string
		price                          int64
		secretHash                     []byte
		createdAt, updatedAt           time.Time
		expiresAt, lastUsedAt, revoked *time.Time
	)
	if err := each("users", userExportSQL, func(rows pgx.Rows, b []byte) ([]byte, error) {
		if err := rows.Scan(&id, &name, &email, &role, &externalID, &createdAt, &updatedAt); err != nil {
			return b, err
		}
		b = appendField(b, '{', "id", appendUUID, id)
		b = appendField(b, ',', "name", appendString, name)
		b = appendField(b, ',', "email", appendString, email)
		b = appendField(b, ',', "role", appendString, role)
		b = appendField(b, ',', "external_id", appendStringPtr, externalID)
		b = appendField(b, ',', "created_at", appendTime, createdAt)
		b = appendField(b, ',', "updated_at", appendTime, updatedAt)
		return append(b, '}'), nil
	}); err != nil {
		return err
	}
	if err := each("products", productExportSQL, func(rows pgx.Rows, b []byte) ([]byte, error) {
		if err := rows.Scan(&id, &name, &description, &price, &createdAt, &updatedAt); err != nil {
			return b, err
		}
		b = appendField(b, '{', "id", appendUUID, id)
		b = appendField(b, ',', "name", appendString, name)
		b = appendField(b, ',', "description", appendString, description)
		b = appendField(b, ',', "price", appendInt, price)
		b = appendField(b, ',', "created_at", appendTime, createdAt)
		b = appendField(b, ',', "updated_at", appendTime, updatedAt)
		return append(b, '}'), nil
	}); err != nil {
		return err
	}
	return each("api_keys", apiKeyExportSQL, func(rows pgx.Rows, b []byte) ([]byte, error) {
		if err := rows.Scan(&id, &userID, &name, &role, &secretHash, &createdAt, &expiresAt, &lastUsedAt, &revoked); err != nil {
			return b, err
		}
		b = appendField(b, '{', "id", appendUUID, id)
		b = appendField(b, ',', "user_id", appendUUID, userID)
		b = appendField(b, ',', "name", appendString, name)
		b = appendField(b, ',', "role", appendString, role)
		b = appendField(b, ',', "secret_hash", appendBase64, secretHash)
		b = appendField(b, ',', "created_at", appendTime, createdAt)
		b = appendField(b, ',', "expires_at", appendTimePtr, expiresAt)
		b = appendField(b, ',', "last_used_at", appendTimePtr, lastUsedAt)
		b = appendField(b, ',', "revoked_at", appendTimePtr, revoked)
		return append(b, '}'), nil
	})
}

func appendField[T any](b []byte, sep byte, name string, enc func([]byte, T) []byte, v T) []byte {
	b = append(b, sep, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return enc(b, v)
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

func appendUUID(b []byte, id uuid.UUID) []byte {
	b = append(b, '"')
	b = append(b, id.String()...)
	return append(b, '"')
}

// appendTime is encoding/json's form of a time.Time (RFC 3339 with
// nanoseconds), in UTC as the export has always written it.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}

func appendBase64(b []byte, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendString writes s as a JSON string (RFC 8259, section 7) in RFC
// 8785's minimal form; an invalid UTF-8 byte, which PostgreSQL's text cannot
// hold, becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

// ChunkSize is the most bytes one row of export_chunks holds (its CHECK
// constraint, sql/migrations/00019_export_chunks.sql): what an export's
// writer and a download hold of it at a time.
const ChunkSize = 1 << 20

// chunkWriter cuts what is written to it into chunks of ChunkSize bytes
// (the last one shorter) and hands each to put.
type chunkWriter struct {
	buf   []byte
	seq   int32
	bytes int64
	limit int64 // the most bytes the export may have (its quota); 0: none
	put   func(seq int32, data []byte) error
}

// ErrExportQuota: an export outgrew what its tenant's quota leaves for it.
var ErrExportQuota = errors.New("the export exceeds the tenant's export quota (EXPORT_MAX_BYTES)")

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	c.bytes += int64(n)
	if c.limit > 0 && c.bytes > c.limit {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrExportQuota, c.limit)
	}
	for len(p) > 0 {
		if c.buf == nil {
			c.buf = make([]byte, 0, ChunkSize)
		}
		k := min(len(p), ChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == ChunkSize {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	if err := c.put(c.seq, c.buf); err != nil {
		return err
	}
	c.seq++
	c.buf = c.buf[:0]
	return nil
}

// Written says what WriteExport stored.
type Written struct {
	Counts map[string]int
	Bytes  int64
	Chunks int32
}

// WriteExport exports tenant t into the chunks of its export exportID and
// marks the export done, in one transaction: a failure leaves no chunk
// behind, and a reader never sees a done export with chunks missing. It
// holds two connections of pool for the duration (one reads the snapshot,
// one writes the chunks) and about 1.2 MiB of memory whatever the tenant's
// size. maxBytes (0: no bound) fails the export with ErrExportQuota once it
// outgrows it. pool connects as rowfence_platform or the migrating role.
func WriteExport(ctx context.Context, pool *pgxpool.Pool, t dbsqlc.Tenant, exportID uuid.UUID, maxBytes int64) (Written, error) {
	var out Written
	err := db.Tx(ctx, pool, db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
		cw := &chunkWriter{limit: maxBytes, put: func(seq int32, data []byte) error {
			return q.ExportChunkInsert(ctx, dbsqlc.ExportChunkInsertParams{ExportID: exportID, Seq: seq, Data: data})
		}}
		counts, err := ExportTenant(ctx, pool, t, cw)
		if err != nil {
			return err
		}
		if err := cw.flush(); err != nil {
			return err
		}
		countsJSON, err := json.Marshal(counts)
		if err != nil {
			return err
		}
		out = Written{Counts: counts, Bytes: cw.bytes, Chunks: cw.seq}
		return q.ExportFinish(ctx, dbsqlc.ExportFinishParams{ID: exportID, Counts: countsJSON, Bytes: out.Bytes, Chunks: out.Chunks})
	})
	if err != nil {
		return Written{}, err
	}
	return out, nil
}

// ChunkReader reads the chunks of one export in order, each in a statement
// of its own under the tenant's setting (scope), so that it holds one chunk
// and no connection between reads. A chunk missing before the count
// (the export was deleted meanwhile) is an error, never a silent end.
type ChunkReader struct {
	ctx    context.Context
	exec   db.Executor
	id     uuid.UUID
	chunks int32
	seq    int32
	cur    []byte
}

// NewChunkReader reads chunks 0..chunks-1 of export id through exec.
func NewChunkReader(ctx context.Context, exec db.Executor, id uuid.UUID, chunks int32) *ChunkReader {
	return &ChunkReader{ctx: ctx, exec: exec, id: id, chunks: chunks}
}

func (r *ChunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.seq >= r.chunks {
			return 0, io.EOF
		}
		data, err := db.OneIn(r.ctx, r.exec, func(q *dbsqlc.Queries) ([]byte, error) {
			return q.ExportChunk(r.ctx, dbsqlc.ExportChunkParams{ExportID: r.id, Seq: r.seq})
		})
		if err != nil {
			return 0, fmt.Errorf("export %s, chunk %d: %w", r.id, r.seq, err)
		}
		r.cur = data
		r.seq++
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo hands each chunk to w whole (io.Copy uses it): no copy through a
// buffer of io.Copy's.
func (r *ChunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(r.cur) > 0 {
		n, err := w.Write(r.cur)
		total += int64(n)
		r.cur = nil
		if err != nil {
			return total, err
		}
	}
	for r.seq < r.chunks {
		data, err := db.OneIn(r.ctx, r.exec, func(q *dbsqlc.Queries) ([]byte, error) {
			return q.ExportChunk(r.ctx, dbsqlc.ExportChunkParams{ExportID: r.id, Seq: r.seq})
		})
		if err != nil {
			return total, fmt.Errorf("export %s, chunk %d: %w", r.id, r.seq, err)
		}
		r.seq++
		n, err := w.Write(data)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
