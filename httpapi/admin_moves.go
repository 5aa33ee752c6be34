package httpapi

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/cells"
)

// Tenant moves through /v1/admin (issue #18, item 3): POST records a move
// and enqueues its job (cells.RequestMove) in the catalog as
// rowfence_platform; the move itself runs in the background, in a River job
// of an instance configured for moves (TENANT_MOVES), which holds the
// superuser connections a move needs (docs/SCALING.md). No handler here
// ever holds those: a request only reads and writes the move's record.

// adminMoveBody is POST /v1/admin/tenants/{id}/move.
type adminMoveBody struct {
	To *string `json:"to"`
}

func (b adminMoveBody) valid() fieldErrors {
	fe := fieldErrors{}
	if checkRequired(fe, "to", b.To) && !cells.ValidName(*b.To) {
		fe.add("to", "must be a cell's name: 2-32 characters of a-z, 0-9 and -, starting with a letter")
	}
	return fe
}

// handleTenantMove: POST /v1/admin/tenants/{id}/move starts moving a
// tenant to the cell the body names: 202 with the move's record and its
// Location. 409 when moves are off on this instance, the tenant is being
// deleted, or a move of it is in progress (an archived tenant moves with its
// archive); 422 naming "to" for a
// cell that is not registered, not reachable, or the tenant's own.
func (s *server) handleTenantMove() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		in, ok := decodeValid[adminMoveBody](w, r, "application/json")
		if !ok {
			return
		}
		if s.moveCells == nil {
			writeProblem(w, r, probConflict, "tenant moves are off on this instance: run serve with TENANT_MOVES=true, "+
				"DATABASE_URL and CELLS naming each cell's superuser (docs/SCALING.md), or use rowfence tenant move")
			return
		}
		rec, err := cells.RequestMove(r.Context(), s.platformPool, id, *in.To, s.moveCells)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", s.apiPath(r, "admin", "moves", rec.ID.String()))
		encode(w, http.StatusAccepted, rec)
	})
}

// movePosition is a move's place in the list (creation order).
func movePosition(m cells.MoveRecord, _ string) position {
	return position{CreatedAt: m.CreatedAt, ID: m.ID}
}

// handleMoveList: GET /v1/admin/moves, every move, oldest first (keyset
// pages, as every list).
func (s *server) handleMoveList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, ok := s.readList(w, r, uuid.Nil, "admin/moves", nil, false, false)
		if !ok {
			return
		}
		rows, err := cells.ListMoves(r.Context(), s.platformPool, l.after.CreatedAt, l.after.ID, l.fetch())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		page := pageOf(l, rows, func(m cells.MoveRecord) cells.MoveRecord { return m }, movePosition)
		s.linkNext(w, r, l, page.NextCursor)
		encode(w, http.StatusOK, page)
	})
}

// handleMoveGet: GET /v1/admin/moves/{id}, the move's record.
func (s *server) handleMoveGet() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		rec, err := cells.GetMove(r.Context(), s.platformPool, id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		encode(w, http.StatusOK, rec)
	})
}

// handleMoveCancel: DELETE /v1/admin/moves/{id} cancels a move before its
// switch (202 with the record: a pending move is cancelled at once, a
// running one by its job, which undoes it; GET shows when). 409 once the
// move switched or ended: a switched tenant is moved back with a new move.
func (s *server) handleMoveCancel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		rec, err := cells.CancelMove(r.Context(), s.platformPool, id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		encode(w, http.StatusAccepted, rec)
	})
}
