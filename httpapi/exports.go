package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
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

type exportJSON struct {
	ID          uuid.UUID           `json:"id"`
	RequestedBy uuid.UUID           `json:"requested_by"`
	Status      dbtype.ExportStatus `json:"status"`
	Error       string              `json:"error,omitempty"`
	Counts      json.RawMessage     `json:"counts"`
	CreatedAt   time.Time           `json:"created_at"`
	FinishedAt  *time.Time          `json:"finished_at"`
	// Download is where a finished export is fetched.
	Download string `json:"download,omitempty"`
}

// renderExport is e as the request sees it: a finished export links to its
// download, as the request addresses the API (apiPath).
func (s *server) renderExport(r *http.Request) func(e dbsqlc.ExportGetRow) exportJSON {
	return func(e dbsqlc.ExportGetRow) exportJSON {
		out := exportJSON{ID: e.ID, RequestedBy: e.RequestedBy, Status: e.Status, Error: e.Error, Counts: e.Counts,
			CreatedAt: e.CreatedAt.UTC(), FinishedAt: utcPtr(e.FinishedAt)}
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
		row, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
			return q.ExportCreate(r.Context(), p.UserID)
		})
		if errors.Is(err, db.ErrNotFound) { // one in progress (queries/export.sql)
			busy, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.ExportInProgress(r.Context()) })
			if err == nil {
				writeProblem(w, r, probConflict, "export "+busy.String()+" is in progress; request another once it is done or failed")
				return
			}
			if !errors.Is(err, db.ErrNotFound) {
				s.writeError(w, r, err)
				return
			}
			writeProblem(w, r, probConflict, "an export was in progress; try again")
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

// handleExportDownload: GET /v1/exports/{id}/download, once it is done.
func (s *server) handleExportDownload() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		row, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.ExportContentRow, error) {
			return q.ExportContent(r.Context(), id)
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
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(row.Content)
	}
}
