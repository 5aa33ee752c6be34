package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/lifecycle"
)

// reachable reports whether this instance holds a pool for the cell named
// name (cells.Place chooses among those only).
func (s *server) reachable(name string) bool {
	if name == cells.Default {
		return true
	}
	c, ok := s.cells.Get(name)
	return ok && c.Platform != nil
}

// onboardInCell onboards t in the cell placement chooses (cells.Place: "",
// a cell's name, or labels such as region=eu). Errors: a db.ErrInvalid on
// field "cell" when no configured cell fits, and lifecycle.OnboardIn's.
func (s *server) onboardInCell(ctx context.Context, placement string, t lifecycle.Tenant) (lifecycle.Onboarded, error) {
	cell, err := cells.Place(ctx, s.platformPool, placement, s.reachable)
	if err != nil {
		return lifecycle.Onboarded{}, err
	}
	if cell == cells.Default {
		return lifecycle.Onboard(ctx, s.platformPool, t)
	}
	c, _ := s.cells.Get(cell)
	return lifecycle.OnboardIn(ctx, s.platformPool, c.Platform, cell, t)
}

// deleteInCell deletes a tenant placed outside the default cell from its
// cell (its copy of the tenant's row, and through the foreign keys every row
// it owns there), before the catalog's row goes: a failure leaves the
// tenant in the catalog, to be deleted again. Errors: cells.ErrNotConfigured.
func (s *server) deleteInCell(ctx context.Context, t dbsqlc.Tenant) error {
	if t.Cell == cells.Default {
		return nil
	}
	if !s.reachable(t.Cell) {
		return fmt.Errorf("cell %q: %w", t.Cell, cells.ErrNotConfigured)
	}
	c, _ := s.cells.Get(t.Cell)
	err := lifecycle.Delete(ctx, c.Platform, t.ID)
	if err != nil && !errors.Is(err, db.ErrNotFound) { // already gone from the cell: go on
		return err
	}
	return nil
}

// handleCellList: GET /v1/admin/cells lists the catalog's cells, their
// labels, how many tenants each holds, and whether this instance can reach
// it (CELLS).
func (s *server) handleCellList() http.Handler {
	type cellJSON struct {
		cells.Info
		Configured bool `json:"configured"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := cells.List(r.Context(), s.platformPool)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := make([]cellJSON, 0, len(list))
		for _, c := range list {
			out = append(out, cellJSON{c, s.reachable(c.Name)})
		}
		encode(w, http.StatusOK, map[string]any{"items": out})
	})
}

// handlePlacementList: GET /v1/admin/placements lists which cell holds each
// tenant (by cell, then slug).
func (s *server) handlePlacementList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := cells.Placements(r.Context(), s.platformPool)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		encode(w, http.StatusOK, map[string]any{"items": p})
	})
}
