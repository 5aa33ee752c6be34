package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/textrule"
)

// Lists page with keyset cursors (cursor.go): a page is the rows after the
// cursor's position in the list's order, one more than the limit fetched to
// tell whether a next page exists.

// List paging.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// firstPage is the keyset position before a list's first row:
// db.KeysetOrigin and the nil UUID.
var firstPage = position{CreatedAt: db.KeysetOrigin}

type listPage[R any] struct {
	Items      []R     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// listQuery is a list's query string.
type listQuery struct {
	limit           int
	cursor, sort, q string
	email           string
}

// listRequest is a list's query string read, and where its page starts.
type listRequest struct {
	listQuery
	// custom: the list is sorted or filtered (?sort=, ?q=, ?email=); sort
	// is then at least "created_at".
	custom bool
	// after is the position the page starts after (firstPage: the first);
	// first says the page is the first.
	after position
	first bool
	// The cursor of the next page is bound to tenant and to list: the
	// collection and, when custom, its sort and filter.
	tenant  uuid.UUID
	list    string
	cursors cursorCodec
}

// readList reads the request's list query for the collection name of tenant
// (uuid.Nil for /v1/admin's) and its cursor, answering 400 itself. A list
// with sorts also takes ?sort= and ?q=, and with email ?email=.
func (s *server) readList(w http.ResponseWriter, r *http.Request, tenant uuid.UUID, name string, sorts []string, email bool) (listRequest, bool) {
	lq, detail := parseListQuery(r.URL.RawQuery, sorts, email)
	if detail != "" {
		writeProblem(w, r, probBadRequest, detail)
		return listRequest{}, false
	}
	l := listRequest{listQuery: lq, after: firstPage, first: true, tenant: tenant, list: name, cursors: s.cursors}
	if l.custom = lq.sort != "" || lq.q != "" || lq.email != ""; l.custom {
		if l.sort == "" {
			l.sort = "created_at"
		}
		l.list += "?sort=" + l.sort + "&q=" + l.q + "&email=" + l.email
	}
	if lq.cursor != "" {
		p, err := s.cursors.decode(tenant, l.list, lq.cursor)
		if err != nil {
			writeProblem(w, r, probInvalidCursor, err.Error())
			return listRequest{}, false
		}
		l.after, l.first = p, false
	}
	return l, true
}

// pageSize is a listPage of any item type.
type pageSize interface{ size() int }

func (p listPage[R]) size() int { return len(p.Items) }

// writePage answers a list's page, and counts its rows for the metrics.
func (s *server) writePage(w http.ResponseWriter, r *http.Request, page pageSize) {
	s.rows(r, page.size(), 0)
	encode(w, http.StatusOK, page)
}

// fetch is the number of rows to read: one more than the page shows.
func (l listRequest) fetch() int32 { return int32(l.limit + 1) }

// listOrder is how a list reads its rows.
type listOrder int

const (
	// byCreation walks the tenant-leading (tenant_id, created_at, id) index.
	byCreation listOrder = iota
	// searchByCreation filters (?q=, ?email=) in creation order, which that
	// index gives without sorting.
	searchByCreation
	// sorted sorts by ?sort=, filtered or not.
	sorted
)

func (l listRequest) order() listOrder {
	switch {
	case !l.custom || l.sort == "created_at" && l.q == "" && l.email == "":
		return byCreation
	case l.sort == "created_at":
		return searchByCreation
	}
	return sorted
}

// pageOf is the page of rows, read with l.fetch(): at most l.limit of them,
// rendered, and the cursor after the last one when more follow. position
// gives a row's place in a list sorted by sort ("" in the default order).
func pageOf[T, R any](l listRequest, rows []T, render func(T) R, position func(row T, sort string) position) listPage[R] {
	page := listPage[R]{Items: make([]R, 0, min(len(rows), l.limit))}
	if len(rows) > l.limit {
		rows = rows[:l.limit]
		next := l.cursors.encode(l.tenant, l.list, position(rows[l.limit-1], l.sort))
		page.NextCursor = &next
	}
	for _, row := range rows {
		page.Items = append(page.Items, render(row))
	}
	return page
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
