package lifecycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// Tenant archives (issue 16, item 4). Archive moves an inactive tenant's
// rows out of the live tables into its archive (an export of kind
// 'archive', kept by the platform: no quota, no retention) and sets its
// status to archived; Restore puts them back and makes it active. The
// tenant stays in the registry, so its requests get 409 tenant-archived,
// not 404s that look like missing rows.

// ErrNotSuspended: only a suspended tenant is archived, so that no request
// writes while its rows move (running servers stop serving it within
// TENANT_CACHE_TTL of its suspension). A db.ErrConflict.
var ErrNotSuspended = &db.Error{Code: db.ErrConflict, Message: "only a suspended tenant is archived: suspend it first (rowfence tenant suspend), then archive it"}

// ErrNotArchived: Restore of a tenant that is not archived. A db.ErrConflict.
var ErrNotArchived = &db.Error{Code: db.ErrConflict, Message: "the tenant is not archived"}

// Archived says what Archive moved.
type Archived struct {
	Tenant  dbsqlc.Tenant
	Archive uuid.UUID
	Counts  map[string]int
	Bytes   int64
}

// Archive archives the suspended tenant slug, in three steps, each all or
// nothing, crash-safe at every point between them:
//
//  1. One REPEATABLE READ transaction (A) reads the tenant's rows.
//  2. A second transaction (B) writes them, streaming from A's snapshot,
//     into the archive's chunks, then reads the archive back and checks it
//     as an import would (strict lines, counts, checksum), and commits. A
//     crash before this commit leaves no archive; after it, an archive and
//     the rows, both intact (the next Archive replaces that archive).
//  3. A sets the status archived and deletes the tenant's live rows, which
//     must be exactly the rows it exported (same snapshot; a row changed
//     since fails A with a serialization error), then commits.
//
// pool connects as the migrating role (its connections act as
// rowfence_owner, bound by RLS: every step runs under the tenant's own
// setting) with at least two connections.
func Archive(ctx context.Context, pool *pgxpool.Pool, slug string) (Archived, error) {
	t, err := db.Unscoped(pool).TenantBySlug(ctx, slug)
	if err != nil {
		return Archived{}, notFound(err)
	}
	if t.Status != dbtype.TenantStatusSuspended {
		return Archived{}, ErrNotSuspended
	}
	scope := db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}
	out := Archived{Tenant: t}
	err = db.Stream(ctx, pool, scope, db.BeginSnapshotWrite, func(conn *pgx.Conn) error {
		qa := db.Unscoped(conn)
		// Step 2, in B.
		err := db.Tx(ctx, pool, scope, func(qb *dbsqlc.Queries) error {
			if _, err := qb.ArchiveDeleteAll(ctx); err != nil {
				return err
			}
			id, err := qb.ArchiveCreate(ctx, uuid.Nil)
			if err != nil {
				return err
			}
			h := sha256.New()
			cw := &chunkWriter{put: func(seq int32, data []byte) error {
				h.Write(data)
				return qb.ExportChunkInsert(ctx, dbsqlc.ExportChunkInsertParams{ExportID: id, Seq: seq, Data: data})
			}}
			counts, err := exportFrom(ctx, conn, t, cw)
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
			if err := qb.ExportFinish(ctx, dbsqlc.ExportFinishParams{ID: id, Counts: countsJSON, Bytes: cw.bytes, Chunks: cw.seq}); err != nil {
				return err
			}
			if err := verifyArchive(ctx, qb, id, cw.seq, cw.bytes, h.Sum(nil)); err != nil {
				return err
			}
			out.Archive, out.Counts, out.Bytes = id, counts, cw.bytes
			return nil
		})
		if err != nil {
			return fmt.Errorf("write the archive: %w", err)
		}
		// Step 3, in A.
		archived := string(dbtype.TenantStatusArchived)
		if out.Tenant, err = qa.TenantUpdate(ctx, dbsqlc.TenantUpdateParams{ID: t.ID, Status: &archived}); err != nil {
			return err
		}
		deleted := map[string]int64{}
		if deleted["api_keys"], err = qa.ArchiveDeleteAPIKeys(ctx); err != nil {
			return err
		}
		if deleted["products"], err = qa.ArchiveDeleteProducts(ctx); err != nil {
			return err
		}
		if deleted["users"], err = qa.ArchiveDeleteUsers(ctx); err != nil {
			return err
		}
		for _, table := range tables {
			if deleted[table] != int64(out.Counts[table]) {
				return fmt.Errorf("%s: %d live rows, the archive holds %d; nothing was deleted", table, deleted[table], out.Counts[table])
			}
		}
		return qa.ArchiveDeleteRest(ctx)
	})
	if err != nil {
		return Archived{}, err
	}
	return out, nil
}

// verifyArchive reads the archive back inside its own transaction and
// checks it as an import would: the bytes written (length, SHA-256), and
// every line strictly typed, counted and checksummed (exportReader).
func verifyArchive(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID, chunks int32, size int64, sum []byte) error {
	h := sha256.New()
	r := io.TeeReader(NewChunkReader(ctx, db.Joined(q), id, chunks), h)
	er, err := newExportReader(r)
	if err != nil {
		return fmt.Errorf("the archive does not read back: %w", err)
	}
	for {
		_, _, err := er.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the archive does not read back: %w", err)
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), sum) {
		return fmt.Errorf("the archive does not read back as written (%d bytes)", size)
	}
	return nil
}

// Restore puts an archived tenant's rows back from its archive, with their
// ids and timestamps, API keys included (the tenant's id is the archive's),
// and makes it active, in one transaction: all or nothing. The archive is
// deleted with it. pool is as Archive's.
func Restore(ctx context.Context, pool *pgxpool.Pool, slug string) (Imported, error) {
	t, err := db.Unscoped(pool).TenantBySlug(ctx, slug)
	if err != nil {
		return Imported{}, notFound(err)
	}
	if t.Status != dbtype.TenantStatusArchived {
		return Imported{}, ErrNotArchived
	}
	scope := db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}
	arch, err := db.One(ctx, pool, scope, func(q *dbsqlc.Queries) (dbsqlc.ArchiveFindRow, error) { return q.ArchiveFind(ctx) })
	if err != nil {
		return Imported{}, fmt.Errorf("the archive of %s: %w", slug, err)
	}
	out := Imported{}
	err = db.Tx(ctx, pool, scope, func(q *dbsqlc.Queries) error {
		// The chunks are read through the joined transaction: what it
		// deletes at the end is what it read.
		er, err := newExportReader(NewChunkReader(ctx, db.Joined(q), arch.ID, arch.Chunks))
		if err != nil {
			return err
		}
		if er.header.Tenant.ID != t.ID {
			return fmt.Errorf("%w: the archive is of tenant %s, not %s", ErrBadExport, er.header.Tenant.ID, t.ID)
		}
		c, err := q.TenantRowCounts(ctx)
		if err != nil {
			return err
		}
		if c.Users+c.Products+c.ApiKeys > 0 {
			return fmt.Errorf("%w: %s has %d users, %d products, %d API keys", ErrNotEmpty, slug, c.Users, c.Products, c.ApiKeys)
		}
		if out.Counts, out.KeysSkipped, err = importRows(ctx, q, er, true); err != nil {
			return err
		}
		active := string(dbtype.TenantStatusActive)
		if out.Tenant, err = q.TenantUpdate(ctx, dbsqlc.TenantUpdateParams{ID: t.ID, Status: &active}); err != nil {
			return err
		}
		_, err = q.ArchiveDeleteAll(ctx)
		return err
	})
	if err != nil {
		return Imported{}, err
	}
	return out, nil
}

// ArchiveIn is Archive for a tenant in any cell (package cells): catalog is
// the default cell's pool (the registry, whose row says the tenant's
// status to every instance), cell the pool of the cell the catalog places
// the tenant in (the same pool for the default cell), both as the migrating
// role, cell with at least two connections.
//
// The archive lives in the tenant's cell, next to its live rows: a tenant
// placed in a cell for its region keeps its data there, archived or not;
// the catalog keeps no tenant data; the archive is rows of the tenant's own
// tables (exports, export_chunks), so a move carries it; and Restore is
// one transaction in one database (docs/SCALING.md).
//
// Two steps. The cell's: its copy of the tenants row is made the catalog's
// (suspended: cells.CopyTenant), then Archive runs there (the copy becomes
// archived with the rows' deletion). The catalog's: its row becomes
// archived, which is what requests see (409 tenant-archived). A crash
// between them leaves the tenant suspended in the catalog (its requests
// still refused) and archived in its cell; ArchiveIn run again sees that
// and completes the catalog's step. Errors: as Archive's.
func ArchiveIn(ctx context.Context, catalog, cell *pgxpool.Pool, slug string) (Archived, error) {
	if catalog == cell {
		return Archive(ctx, cell, slug)
	}
	t, err := db.Unscoped(catalog).TenantBySlug(ctx, slug)
	if err != nil {
		return Archived{}, notFound(err)
	}
	if t.Status != dbtype.TenantStatusSuspended {
		return Archived{}, ErrNotSuspended
	}
	var out Archived
	inCell, err := db.Unscoped(cell).TenantGet(ctx, t.ID)
	if err == nil && inCell.Status == dbtype.TenantStatusArchived {
		// The cell's step is done: what it archived.
		scope := db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}
		arch, err := db.One(ctx, cell, scope, func(q *dbsqlc.Queries) (dbsqlc.ArchiveFindRow, error) { return q.ArchiveFind(ctx) })
		if err != nil {
			return Archived{}, fmt.Errorf("the archive of %s in its cell: %w", slug, err)
		}
		out = Archived{Archive: arch.ID, Bytes: arch.Bytes}
		if err := json.Unmarshal(arch.Counts, &out.Counts); err != nil {
			return Archived{}, err
		}
	} else {
		if err := cells.CopyTenant(ctx, catalog, cell, t.ID); err != nil {
			return Archived{}, fmt.Errorf("the tenant's row in its cell: %w", err)
		}
		if out, err = Archive(ctx, cell, slug); err != nil {
			return Archived{}, err
		}
	}
	archived := string(dbtype.TenantStatusArchived)
	if out.Tenant, err = db.Unscoped(catalog).TenantUpdate(ctx, dbsqlc.TenantUpdateParams{ID: t.ID, Status: &archived}); err != nil {
		return Archived{}, fmt.Errorf("archived in its cell; the catalog's status (run the archive again): %w", err)
	}
	return out, nil
}

// RestoreIn is Restore for a tenant in any cell; catalog and cell are as
// ArchiveIn's. Restore runs in the tenant's cell, where its archive is,
// then the catalog's row becomes active (and the cell's copy follows it:
// cells.CopyTenant). A crash between them leaves the tenant restored in its
// cell but archived in the catalog (its requests still get 409
// tenant-archived); RestoreIn run again sees that (the cell's copy active,
// no archive left) and completes the catalog's step. Errors: as Restore's.
func RestoreIn(ctx context.Context, catalog, cell *pgxpool.Pool, slug string) (Imported, error) {
	if catalog == cell {
		return Restore(ctx, cell, slug)
	}
	t, err := db.Unscoped(catalog).TenantBySlug(ctx, slug)
	if err != nil {
		return Imported{}, notFound(err)
	}
	if t.Status != dbtype.TenantStatusArchived {
		return Imported{}, ErrNotArchived
	}
	var out Imported
	inCell, err := db.Unscoped(cell).TenantGet(ctx, t.ID)
	if err != nil {
		return Imported{}, fmt.Errorf("the tenant's row in its cell: %w", err)
	}
	scope := db.Scope{TenantID: t.ID, Role: dbtype.RoleAdmin}
	if inCell.Status == dbtype.TenantStatusArchived {
		if out, err = Restore(ctx, cell, slug); err != nil {
			return Imported{}, err
		}
	} else {
		// The cell's step is done if no archive is left there.
		if _, err := db.One(ctx, cell, scope, func(q *dbsqlc.Queries) (dbsqlc.ArchiveFindRow, error) { return q.ArchiveFind(ctx) }); !errors.Is(err, db.ErrNotFound) {
			return Imported{}, errors.Join(err, fmt.Errorf("%s is archived in the catalog, %s in its cell, which still holds an archive: restore it there by hand", slug, inCell.Status))
		}
		c, err := db.One(ctx, cell, scope, func(q *dbsqlc.Queries) (dbsqlc.TenantRowCountsRow, error) { return q.TenantRowCounts(ctx) })
		if err != nil {
			return Imported{}, err
		}
		out.Counts = map[string]int{"users": int(c.Users), "products": int(c.Products), "api_keys": int(c.ApiKeys)}
	}
	active := string(dbtype.TenantStatusActive)
	if out.Tenant, err = db.Unscoped(catalog).TenantUpdate(ctx, dbsqlc.TenantUpdateParams{ID: t.ID, Status: &active}); err != nil {
		return Imported{}, fmt.Errorf("restored in its cell; the catalog's status (run the restore again): %w", err)
	}
	if err := cells.CopyTenant(ctx, catalog, cell, t.ID); err != nil {
		return Imported{}, fmt.Errorf("the tenant's row in its cell: %w", err)
	}
	return out, nil
}
