package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// Exports: a tenant's admins request a backup of the tenant (POST, 202), the
// export job writes it in the background under the tenant's own setting
// (jobs/), and they download it when done. The format is docs/EXPORT.md's.

// ExportLimits are a tenant's export quota and retention (EXPORT_MAX_COUNT,
// EXPORT_MAX_BYTES, EXPORT_RETENTION in config/vars.go).
type ExportLimits struct {
	MaxCount  int           // kept exports at once
	MaxBytes  int64         // bytes of kept exports together
	Retention time.Duration // how long an export is kept
}

// DefaultExportLimits are config/vars.go's defaults.
var DefaultExportLimits = ExportLimits{MaxCount: 10, MaxBytes: 10 << 30, Retention: 7 * 24 * time.Hour}

func (l ExportLimits) orDefault() ExportLimits {
	d := DefaultExportLimits
	if l.MaxCount > 0 {
		d.MaxCount = l.MaxCount
	}
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.Retention > 0 {
		d.Retention = l.Retention
	}
	return d
}

type exportJSON struct {
	ID          uuid.UUID           `json:"id"`
	RequestedBy uuid.UUID           `json:"requested_by"`
	Status      dbtype.ExportStatus `json:"status"`
	Error       string              `json:"error,omitempty"`
	Counts      json.RawMessage     `json:"counts"`
	// Bytes is the export's size once done (0 before).
	Bytes      int64      `json:"bytes"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// ExpiresAt is when the export is deleted (EXPORT_RETENTION).
	ExpiresAt *time.Time `json:"expires_at"`
	// Download is where a finished export is fetched.
	Download string `json:"download,omitempty"`
}

// renderExport is e as the request sees it: a finished export links to its
// download, as the request addresses the API (apiPath).
func (s *server) renderExport(r *http.Request) func(e dbsqlc.ExportGetRow) exportJSON {
	return func(e dbsqlc.ExportGetRow) exportJSON {
		out := exportJSON{ID: e.ID, RequestedBy: e.RequestedBy, Status: e.Status, Error: e.Error, Counts: e.Counts,
			Bytes: e.Bytes, CreatedAt: e.CreatedAt.UTC(), FinishedAt: utcPtr(e.FinishedAt), ExpiresAt: utcPtr(e.ExpiresAt)}
		if out.Counts == nil {
			out.Counts = json.RawMessage("null")
		}
		if e.Status == dbtype.ExportStatusDone {
			out.Download = s.apiPath(r, "exports", e.ID.String(), "download")
		}
		return out
	}
}

// exportPosition is e's place in the export list (creation order).
func exportPosition(e dbsqlc.ExportGetRow, _ string) position {
	return position{CreatedAt: e.CreatedAt, ID: e.ID}
}

// handleExportList: GET /v1/exports.
func (s *server) handleExportList() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		l, ok := s.readList(w, r, s.scope(r).TenantID, "exports", nil, false, false)
		if !ok {
			return
		}
		rows, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) ([]dbsqlc.ExportListRow, error) {
			return q.ExportList(r.Context(), dbsqlc.ExportListParams{AfterCreatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		found := make([]dbsqlc.ExportGetRow, len(rows))
		for i, e := range rows {
			found[i] = dbsqlc.ExportGetRow(e)
		}
		s.writePage(w, r, l, pageOf(l, found, s.renderExport(r), exportPosition))
	}
}

// handleExportGet: GET /v1/exports/{id}, with its ETag.
func (s *server) handleExportGet() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		e, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportGetRow, error) { return q.ExportGet(r.Context(), id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 1, 0)
		encodeResource(w, r, http.StatusOK, s.renderExport(r)(e), true)
	}
}

// handleExportCreate: POST /v1/exports takes no body: the export is of the
// whole tenant.
func (s *server) handleExportCreate() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		if r.ContentLength > 0 {
			writeProblem(w, r, probBadRequest, "POST /v1/exports takes no body")
			return
		}
		p, _ := auth.FromContext(r.Context())
		lim := s.exports
		row, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
			return q.ExportCreate(r.Context(), dbsqlc.ExportCreateParams{RequestedBy: p.UserID, RetentionSeconds: lim.Retention.Seconds(),
				MaxCount: int64(lim.MaxCount), MaxBytes: lim.MaxBytes})
		})
		if errors.Is(err, db.ErrNotFound) { // one in progress, or the quota (queries/export.sql)
			busy, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ExportInProgress(r.Context()) })
			if err == nil {
				writeProblem(w, r, probConflict, "export "+busy.String()+" is in progress; request another once it is done or failed")
				return
			}
			if !errors.Is(err, db.ErrNotFound) {
				s.writeError(w, r, err)
				return
			}
			usage, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportUsageRow, error) { return q.ExportUsage(r.Context()) })
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			switch {
			case usage.Exports >= int64(lim.MaxCount):
				writeProblem(w, r, probExportQuota, fmt.Sprintf("the tenant keeps %d exports, its quota; delete one (DELETE /v1/exports/{id}) or wait until one expires", usage.Exports))
			case usage.Bytes >= lim.MaxBytes:
				writeProblem(w, r, probExportQuota, fmt.Sprintf("the tenant's exports hold %d bytes, its quota is %d; delete one (DELETE /v1/exports/{id}) or wait until one expires", usage.Bytes, lim.MaxBytes))
			default:
				writeProblem(w, r, probConflict, "an export was in progress; try again")
			}
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.Header().Set("Location", s.apiPath(r, "exports", row.ID.String()))
		encode(w, http.StatusAccepted, s.renderExport(r)(dbsqlc.ExportGetRow(row)))
	}
}

// handleExportDelete: DELETE /v1/exports/{id} ends the export's life at
// once (gone for the API and the quota; one UPDATE whatever its size) and
// enqueues the cleanup job, which deletes its chunks in bounded batches
// (00024). 409 while the export is in progress.
func (s *server) handleExportDelete() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		_, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ExportDelete(r.Context(), id) })
		if errors.Is(err, db.ErrNotFound) {
			e, gerr := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportGetRow, error) { return q.ExportGet(r.Context(), id) })
			if gerr == nil {
				writeProblem(w, r, probConflict, "the export is "+string(e.Status)+"; delete it once it is done or failed")
				return
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.WriteHeader(http.StatusNoContent)
	}
}

// handleExportDownload: GET /v1/exports/{id}/download, once it is done.
func (s *server) handleExportDownload() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		row, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportDownloadInfoRow, error) {
			return q.ExportDownloadInfo(r.Context(), id)
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if row.Status != dbtype.ExportStatusDone {
			writeProblem(w, r, probConflict, "the export is "+string(row.Status)+"; download it once its status is done")
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+infoFrom(r).tenant+`-`+id.String()+`.jsonl"`)
		w.Header().Set("Content-Length", strconv.FormatInt(row.Bytes, 10))
		w.WriteHeader(http.StatusOK)
		// The body streams chunk by chunk (1 MiB each, one statement each):
		// memory holds one chunk and no connection is held between chunks,
		// whatever the export's size. A download outlives REQUEST_TIMEOUT
		// (meant for one request's database work) and the server's
		// WriteTimeout: each chunk gets that much time of its own.
		rc := http.NewResponseController(w)
		base := context.WithoutCancel(r.Context())
		timeout := cmp.Or(s.requestTimeout, 30*time.Second)
		for seq := int32(0); seq < row.Chunks; seq++ {
			ctx, cancel := context.WithTimeout(base, timeout)
			data, err := db.OneIn(ctx, exec, func(q *dbsqlc.Queries) ([]byte, error) {
				return q.ExportChunk(ctx, dbsqlc.ExportChunkParams{ExportID: id, Seq: seq})
			})
			cancel()
			if err != nil {
				// Deleted meanwhile, or the database failed: the status is
				// sent, so the only honest signal is a cut body (shorter
				// than Content-Length, and without its end line).
				s.log.Warn("export download cut", "export", id, "chunk", seq, "err", err)
				panic(http.ErrAbortHandler)
			}
			_ = rc.SetWriteDeadline(time.Now().Add(max(timeout, time.Minute)))
			if _, err := w.Write(data); err != nil {
				return // the client went away
			}
		}
	}
}
