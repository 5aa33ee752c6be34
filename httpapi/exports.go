package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
)

// Exports: a tenant's admins request a backup of the tenant (POST, 202), the
// export job writes it in the background under the tenant's own setting
// (jobs/), and they download it when done. The format is docs/EXPORT.md's.

type exportJSON struct {
	ID          uuid.UUID       `json:"id"`
	RequestedBy uuid.UUID       `json:"requested_by"`
	Status      string          `json:"status"`
	Error       string          `json:"error,omitempty"`
	Counts      json.RawMessage `json:"counts"`
	CreatedAt   time.Time       `json:"created_at"`
	FinishedAt  *time.Time      `json:"finished_at"`
	// Download is where a finished export is fetched.
	Download string `json:"download,omitempty"`
}

var exportList = collection[db.ExportGetRow, exportJSON]{
	name: "exports",
	list: func(ctx context.Context, q *db.Queries, after position, limit int32) ([]db.ExportGetRow, error) {
		rows, err := q.ExportList(ctx, db.ExportListParams{AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
		out := make([]db.ExportGetRow, len(rows))
		for i, r := range rows {
			out[i] = db.ExportGetRow(r)
		}
		return out, err
	},
	get:    (*db.Queries).ExportGet,
	pos:    func(e db.ExportGetRow) position { return position{CreatedAt: e.CreatedAt, ID: e.ID} },
	render: renderExport,
	links: func(e *exportJSON, path func(...string) string) {
		if e.Status == "done" {
			e.Download = path("exports", e.ID.String(), "download")
		}
	},
}

func renderExport(e db.ExportGetRow) exportJSON {
	out := exportJSON{ID: e.ID, RequestedBy: e.RequestedBy, Status: e.Status, Error: e.Error, Counts: e.Counts,
		CreatedAt: e.CreatedAt.UTC(), FinishedAt: utcPtr(e.FinishedAt)}
	if out.Counts == nil {
		out.Counts = json.RawMessage("null")
	}
	return out
}

// handleExportCreate takes no body: the export is of the whole tenant.
func (s *server) handleExportCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 0 {
			writeProblem(w, r, probBadRequest, "POST /v1/exports takes no body")
			return
		}
		p, _ := auth.FromContext(r.Context())
		row, err := one(s, r, func(q *db.Queries) (db.ExportCreateRow, error) {
			return q.ExportCreate(r.Context(), p.UserID)
		})
		if errors.Is(err, db.ErrNotFound) { // one in progress (queries/export.sql)
			busy, err := one(s, r, func(q *db.Queries) (uuid.UUID, error) { return q.ExportInProgress(r.Context()) })
			if err == nil {
				writeProblem(w, r, probConflict, "export "+busy.String()+" is in progress; request another once it is done or failed")
				return
			}
			if !errors.Is(err, db.ErrNotFound) {
				s.dbError(w, r, err)
				return
			}
			writeProblem(w, r, probConflict, "an export was in progress; try again")
			return
		}
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.Header().Set("Location", s.apiPath(r, exportList.name, row.ID.String()))
		encode(w, http.StatusAccepted, exportList.view(s, r, db.ExportGetRow(row)))
	})
}

func (s *server) handleExportDownload() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		row, err := db.One(r.Context(), s.pool, s.scope(r), func(q *db.Queries) (db.ExportContentRow, error) {
			return q.ExportContent(r.Context(), id)
		})
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		if row.Status != "done" {
			writeProblem(w, r, probConflict, "the export is "+row.Status+"; download it once its status is done")
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+infoFrom(r).tenant+`-`+id.String()+`.jsonl"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(row.Content)
	})
}
