package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/textrule"
)

// collection describes one resource type (products, users) to the generic
// list, get, create, update and delete handlers below. Each database call is a
// single statement, so each request costs one round trip (db.One).
type collection[T, R any] struct {
	name   string // path segment; also binds cursors to this list
	list   func(ctx context.Context, q *db.Queries, after position, limit int32) ([]T, error)
	get    func(q *db.Queries, ctx context.Context, id uuid.UUID) (T, error)         // a method expression
	remove func(q *db.Queries, ctx context.Context, id uuid.UUID) (uuid.UUID, error) // a method expression
	// removed, if set, runs after a successful DELETE.
	removed func(s *server, r *http.Request, id uuid.UUID)
	// lock reads a row FOR UPDATE, for If-Match on PATCH and DELETE.
	lock   func(q *db.Queries, ctx context.Context, id uuid.UUID) (T, error) // a method expression
	pos    func(T) position
	render func(T) R // the JSON shape
	// links, if set, adds the links of a rendered row; path builds them
	// (server.apiPath) so that they work in the request's tenant mode.
	links func(out *R, path func(segments ...string) string)
	// sorts are the fields ?sort= takes (prefixed with - for descending);
	// with them, lists also take ?q= (a name prefix) and, with
	// emailFilter, ?email=. sorted lists that way; sortKey is a row's key
	// for the cursor.
	sorts       []string
	emailFilter bool
	sorted      func(ctx context.Context, q *db.Queries, lq listQuery, after position, first bool, limit int32) ([]T, error)
	// search filters in the default order, which the tenant-leading index
	// gives without sorting.
	search  func(ctx context.Context, q *db.Queries, lq listQuery, after position, limit int32) ([]T, error)
	sortKey func(row T, sort string) string
}

// view is a row as the request sees it: rendered, with its links.
func (c collection[T, R]) view(s *server, r *http.Request, row T) R {
	out := c.render(row)
	if c.links != nil {
		c.links(&out, func(segments ...string) string { return s.apiPath(r, segments...) })
	}
	return out
}

// List paging.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// firstPage sorts before every row: created_at is never that old.
var firstPage = position{CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}

type listPage[R any] struct {
	Items      []R     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func (c collection[T, R]) handleList(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lq, detail := parseListQuery(r.URL.RawQuery, c.sorts, c.emailFilter)
		if detail != "" {
			writeProblem(w, r, probBadRequest, detail)
			return
		}
		sc := s.scope(r)
		// A cursor is bound to its tenant and to its list: the collection
		// and, for a sorted or filtered one, that sort and filter.
		listName := c.name
		custom := lq.sort != "" || lq.q != "" || lq.email != ""
		if custom {
			if lq.sort == "" {
				lq.sort = "created_at"
			}
			listName += "?sort=" + lq.sort + "&q=" + lq.q + "&email=" + lq.email
		}
		after, first := firstPage, true
		if lq.cursor != "" {
			p, err := s.cursors.decode(sc.TenantID, listName, lq.cursor)
			if err != nil {
				writeProblem(w, r, probInvalidCursor, err.Error())
				return
			}
			after, first = p, false
		}
		// One row more than asked says whether there is a next page.
		rows, err := db.One(r.Context(), s.pool, sc, func(q *db.Queries) ([]T, error) {
			switch {
			case custom && lq.sort == "created_at" && lq.q == "" && lq.email == "":
				return c.list(r.Context(), q, after, int32(lq.limit+1))
			case custom && lq.sort == "created_at" && c.search != nil:
				return c.search(r.Context(), q, lq, after, int32(lq.limit+1))
			case custom:
				return c.sorted(r.Context(), q, lq, after, first, int32(lq.limit+1))
			}
			return c.list(r.Context(), q, after, int32(lq.limit+1))
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		page := listPage[R]{Items: make([]R, 0, min(len(rows), lq.limit))}
		if len(rows) > lq.limit {
			rows = rows[:lq.limit]
			last := rows[lq.limit-1]
			pos := c.pos(last)
			if custom {
				pos.Key = c.sortKey(last, lq.sort)
			}
			next := s.cursors.encode(sc.TenantID, listName, pos)
			page.NextCursor = &next
		}
		for _, row := range rows {
			page.Items = append(page.Items, c.view(s, r, row))
		}
		s.rows(r, len(page.Items), 0)
		encode(w, http.StatusOK, page)
	})
}

// listQuery is a list's query string.
type listQuery struct {
	limit           int
	cursor, sort, q string
	email           string
}

// parseListQuery reads ?limit=, ?cursor= and, where the list has them,
// ?sort=, ?q= and ?email=. Anything else, a repeated parameter or a bad
// value is refused with a detail for the 400.
func parseListQuery(raw string, sorts []string, email bool) (lq listQuery, detail string) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return lq, "the query string is malformed"
	}
	lq.limit = defaultLimit
	known := "limit and cursor"
	if len(sorts) > 0 {
		known = "limit, cursor, sort and q"
		if email {
			known = "limit, cursor, sort, q and email"
		}
	}
	for name, vs := range values {
		if len(vs) != 1 {
			return lq, "query parameter " + strconv.Quote(name) + " may appear once"
		}
		v := vs[0]
		switch {
		case name == "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxLimit || v != strconv.Itoa(n) {
				return lq, "limit must be an integer from 1 to " + strconv.Itoa(maxLimit)
			}
			lq.limit = n
		case name == "cursor":
			if v == "" {
				return lq, "cursor must not be empty; omit it for the first page"
			}
			lq.cursor = v
		case name == "sort" && len(sorts) > 0:
			if !slices.Contains(sorts, strings.TrimPrefix(v, "-")) {
				return lq, "sort must be one of " + strings.Join(sorts, ", ") + ", each optionally prefixed with - for descending"
			}
			lq.sort = v
		case name == "q" && len(sorts) > 0:
			if err := textrule.SearchPrefix.Check(v); err != nil {
				return lq, "q " + err.Error()
			}
			lq.q = v
		case name == "email" && email:
			if err := textrule.UserEmail.Check(v); err != nil {
				return lq, "email " + err.Error()
			}
			lq.email = v
		default:
			return lq, "unknown query parameter " + strconv.Quote(name) + "; this list takes " + known
		}
	}
	return lq, ""
}

func (c collection[T, R]) handleGet(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		if !conditionalHeadersValid(w, r) {
			return
		}
		row, err := db.One(r.Context(), s.pool, s.scope(r), func(q *db.Queries) (T, error) {
			return c.get(q, r.Context(), id)
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 1, 0)
		encodeResource(w, r, http.StatusOK, c.view(s, r, row), true)
	})
}

func (c collection[T, R]) handleDelete(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		if !conditionalHeadersValid(w, r) {
			return
		}
		var err error
		if len(r.Header.Values("If-Match")) > 0 {
			err = s.tx(r, func(q *db.Queries) error {
				if err := c.checkMatch(s, r, q, id); err != nil {
					return err
				}
				_, err := c.remove(q, r.Context(), id)
				return err
			})
		} else {
			_, err = db.One(r.Context(), s.pool, s.scope(r), func(q *db.Queries) (uuid.UUID, error) {
				return c.remove(q, r.Context(), id)
			})
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if c.removed != nil {
			c.removed(s, r, id)
		}
		s.rows(r, 0, 1)
		w.WriteHeader(http.StatusNoContent)
	})
}

// checkMatch locks the row and compares its current ETag with If-Match.
func (c collection[T, R]) checkMatch(s *server, r *http.Request, q *db.Queries, id uuid.UUID) error {
	row, err := c.lock(q, r.Context(), id)
	if err != nil {
		return err
	}
	tag := etagJSON(c.view(s, r, row))
	if _, ok := ifMatch(r, tag); !ok {
		return errPrecondition{current: tag}
	}
	return nil
}

func handleCreate[In validator, T, R any](s *server, c collection[T, R], create func(ctx context.Context, q *db.Queries, in In) (T, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, ok := decodeValid[In](w, r, "application/json")
		if !ok {
			return
		}
		row, err := one(s, r, func(q *db.Queries) (T, error) {
			return create(r.Context(), q, in)
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.Header().Set("Location", s.apiPath(r, c.name, c.pos(row).ID.String()))
		encodeResource(w, r, http.StatusCreated, c.view(s, r, row), true)
	})
}

func handleUpdate[In validator, T, R any](s *server, c collection[T, R], update func(ctx context.Context, q *db.Queries, id uuid.UUID, in In) (T, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		if !conditionalHeadersValid(w, r) {
			return
		}
		in, ok := decodeValid[In](w, r, "application/json", "application/merge-patch+json")
		if !ok {
			return
		}
		var row T
		var err error
		if len(r.Header.Values("If-Match")) > 0 {
			err = s.tx(r, func(q *db.Queries) error {
				if err := c.checkMatch(s, r, q, id); err != nil {
					return err
				}
				row, err = update(r.Context(), q, id, in)
				return err
			})
		} else {
			row, err = db.One(r.Context(), s.pool, s.scope(r), func(q *db.Queries) (T, error) {
				return update(r.Context(), q, id, in)
			})
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		encodeResource(w, r, http.StatusOK, c.view(s, r, row), true)
	})
}
