package cells

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/tenancy"
)

// Info is a registered cell as the catalog lists it.
type Info struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	// Tenants is how many tenants the catalog places in it.
	Tenants int64 `json:"tenants"`
}

// List reads the catalog's cells, sorted by name. catalog is the default
// cell's pool as rowfence_platform or the migrating role.
func List(ctx context.Context, catalog dbsqlc.DBTX) ([]Info, error) {
	rows, err := db.Unscoped(catalog).CellList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(rows))
	for _, r := range rows {
		labels := map[string]string{}
		var raw map[string]any
		if err := json.Unmarshal(r.Labels, &raw); err != nil {
			return nil, fmt.Errorf("cell %s: labels: %w", r.Name, err)
		}
		for k, v := range raw {
			labels[k] = fmt.Sprint(v) // the CHECK keeps an object; values are meant as strings
		}
		out = append(out, Info{Name: r.Name, Labels: labels, Tenants: r.Tenants})
	}
	return out, nil
}

// Register records a cell and its labels in the catalog, or replaces the
// labels of one already there. A cell must be registered before a tenant is
// placed in it; its connection string is configuration (CELLS). Errors: a
// db.ErrInvalid naming "name" or "labels".
func Register(ctx context.Context, catalog dbsqlc.DBTX, name string, labels map[string]string) (Info, error) {
	if !ValidName(name) {
		return Info{}, &db.Error{Code: db.ErrInvalid, Field: "name",
			Message: fmt.Sprintf("cell name %q: 2-32 characters of a-z, 0-9 and -, starting with a letter", name)}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range labels {
		if !validLabel(k) || !validLabel(v) {
			return Info{}, &db.Error{Code: db.ErrInvalid, Field: "labels",
				Message: fmt.Sprintf("label %q=%q: keys and values are 1-63 characters of a-z, A-Z, 0-9, '.', '_' and '-'", k, v)}
		}
	}
	raw, _ := json.Marshal(labels)
	if _, err := db.Unscoped(catalog).CellRegister(ctx, dbsqlc.CellRegisterParams{Name: name, Labels: raw}); err != nil {
		return Info{}, err
	}
	return Info{Name: name, Labels: labels}, nil
}

// validLabel: what a label key or value may be (as Kubernetes label values:
// no '=' or ',' so that a selector reads unambiguously).
func validLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseLabels reads "k=v,k2=v2" (a selector, or the labels to register).
// Errors: a db.ErrInvalid naming field.
func ParseLabels(field, raw string) (map[string]string, error) {
	out := map[string]string{}
	if raw == "" {
		return out, nil
	}
	for _, pair := range strings.Split(raw, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || !validLabel(k) || !validLabel(v) {
			return nil, &db.Error{Code: db.ErrInvalid, Field: field,
				Message: fmt.Sprintf("%q: labels are key=value pairs separated by commas, of a-z, A-Z, 0-9, '.', '_' and '-'", pair)}
		}
		out[k] = v
	}
	return out, nil
}

// Place chooses the cell for a new tenant. placement is "" (the default
// cell), a cell's name, or a label selector ("region=eu", "k=v,k2=v2"):
// of the registered cells carrying every label, the one holding the fewest
// tenants (then the first by name). Only cells reachable from this instance
// (reachable(name); nil: all) are chosen. Errors: a db.ErrInvalid on field
// "cell" when nothing fits.
func Place(ctx context.Context, catalog dbsqlc.DBTX, placement string, reachable func(string) bool) (string, error) {
	if placement == "" || placement == Default {
		return Default, nil
	}
	if reachable == nil {
		reachable = func(string) bool { return true }
	}
	infos, err := List(ctx, catalog)
	if err != nil {
		return "", err
	}
	if !strings.Contains(placement, "=") {
		if !ValidName(placement) {
			return "", &db.Error{Code: db.ErrInvalid, Field: "cell",
				Message: fmt.Sprintf("%q is neither a cell name nor a label selector such as region=eu", placement)}
		}
		if !slices.ContainsFunc(infos, func(i Info) bool { return i.Name == placement }) {
			return "", &db.Error{Code: db.ErrInvalid, Field: "cell", Message: fmt.Sprintf("no cell %q is registered", placement)}
		}
		if !reachable(placement) {
			return "", &db.Error{Code: db.ErrInvalid, Field: "cell", Message: fmt.Sprintf("cell %q is not configured (CELLS) on this instance", placement)}
		}
		return placement, nil
	}
	want, err := ParseLabels("cell", placement)
	if err != nil {
		return "", err
	}
	var best *Info
	for i := range infos {
		c := &infos[i]
		if !reachable(c.Name) || !hasLabels(c.Labels, want) {
			continue
		}
		if best == nil || c.Tenants < best.Tenants {
			best = c
		}
	}
	if best == nil {
		return "", &db.Error{Code: db.ErrInvalid, Field: "cell",
			Message: fmt.Sprintf("no configured cell has the labels %s", placement)}
	}
	return best.Name, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Labels formats labels as "k=v,…" with sorted keys, for display.
func Labels(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}

// Placement is one tenant's cell, as the catalog says.
type Placement struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
	Cell string    `json:"cell"`
}

// Placements reads every tenant's cell from the catalog, by cell then slug.
func Placements(ctx context.Context, catalog dbsqlc.DBTX) ([]Placement, error) {
	rows, err := db.Unscoped(catalog).CellPlacements(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Placement, 0, len(rows))
	for _, r := range rows {
		out = append(out, Placement{ID: r.ID, Slug: r.Slug, Cell: r.Cell})
	}
	return out, nil
}

// PoolFor is auth.Config.PoolFor for a set: the app pool of the cell the
// catalog places tenant in, through r (cached). Errors: tenancy.ErrUnknown,
// ErrNotConfigured, and the lookup's.
func (s *Set) PoolFor(r *tenancy.Resolver) func(ctx context.Context, tenant uuid.UUID) (*pgxpool.Pool, error) {
	return func(ctx context.Context, tenant uuid.UUID) (*pgxpool.Pool, error) {
		t, err := r.Resolve(ctx, tenancy.Key{ID: tenant})
		if err != nil {
			return nil, err
		}
		return s.App(t)
	}
}

// Reachable reports whether the set holds a cell named name, for Place.
func (s *Set) Reachable(name string) bool {
	_, ok := s.Get(name)
	return ok
}
