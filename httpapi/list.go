package httpapi

import (
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

// Lists page with keyset cursors (cursor.go): a page is the rows after the
// cursor's position in the list's order, one more than the limit fetched to
// tell whether a next page exists. A page that has a next one says so twice:
// "next_cursor" in the body, and a Link header (RFC 8288, section 3) with
// rel="next" to the request's own list with that cursor (linkNext).

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
	// updatedSince is ?updated_since=, rounded up to PostgreSQL's
	// microseconds; since says it was given.
	updatedSince time.Time
	since        bool
}

// sortUpdated is the internal sort of an ?updated_since= list: (updated_at,
// id). Clients cannot ask for it with ?sort=; a row's position in it
// (productPosition, userPosition) carries updated_at in CreatedAt.
const sortUpdated = "updated_at"

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
	// collection and, when custom, its sort and filter, or its
	// ?updated_since=.
	tenant  uuid.UUID
	list    string
	cursors cursorCodec
	// path is the list's path below /v1 ("products", "admin/tenants"), for
	// its Link to the next page.
	path string
}

// readList reads the request's list query for the collection name of tenant
// (uuid.Nil for /v1/admin's) and its cursor, answering 400 itself. A list
// with sorts also takes ?sort= and ?q=, with email ?email=, and with since
// ?updated_since= (alone: it has an order of its own).
func (s *server) readList(w http.ResponseWriter, r *http.Request, tenant uuid.UUID, name string, sorts []string, email, since bool) (listRequest, bool) {
	lq, detail := parseListQuery(r.URL.RawQuery, sorts, email, since)
	if detail != "" {
		writeProblem(w, r, probBadRequest, detail)
		return listRequest{}, false
	}
	l := listRequest{listQuery: lq, after: firstPage, first: true, tenant: tenant, list: name, cursors: s.cursors, path: name}
	if lq.since {
		// Rows updated at or after the time: the first page starts just
		// before (time, the nil UUID). The cursor is bound to the time.
		l.sort = sortUpdated
		l.after = position{CreatedAt: lq.updatedSince}
		l.list += "?updated_since=" + lq.updatedSince.Format(time.RFC3339Nano)
	} else if l.custom = lq.sort != "" || lq.q != "" || lq.email != ""; l.custom {
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
type pageSize interface {
	size() int
	next() *string
}

func (p listPage[R]) size() int     { return len(p.Items) }
func (p listPage[R]) next() *string { return p.NextCursor }

// writePage answers l's page, with its Link to the next, and counts its rows
// for the metrics.
func (s *server) writePage(w http.ResponseWriter, r *http.Request, l listRequest, page pageSize) {
	s.rows(r, page.size(), 0)
	s.linkNext(w, r, l, page.next())
	encode(w, http.StatusOK, page)
}

// linkNext sets the Link header (RFC 8288) of a page with a next one (next
// is its cursor; nil on the last page, which gets none):
//
//	Link: </v1/products?cursor=…&limit=20&sort=name>; rel="next"
//
// The target is the request's own list query (sort, q, email,
// updated_since: parseListQuery has already refused anything else) with the
// next cursor and the limit, at the list's path as the request addresses
// the API (apiPath: /t/{tenant}/v1/… in path mode). It is a relative
// reference (RFC 3986, section 4.2), resolved against the request's URL.
func (s *server) linkNext(w http.ResponseWriter, r *http.Request, l listRequest, next *string) {
	if next == nil {
		return
	}
	w.Header().Set("Link", "<"+s.apiPath(r, strings.Split(l.path, "/")...)+"?"+nextQuery(r.URL.RawQuery, l, *next)+`>; rel="next"`)
}

// nextQuery is the query string of the Link to the next page: the request's
// own (raw) with cursor and limit replaced, as url.Values.Encode writes it
// (keys sorted). A list neither sorted, filtered nor ?updated_since= can
// only have had cursor and limit (parseListQuery refuses anything else, and
// empty values of the others), so its query is written directly, without
// parsing it again: the common case, every page of a plain list.
func nextQuery(raw string, l listRequest, next string) string {
	if !l.custom && !l.since {
		return "cursor=" + url.QueryEscape(next) + "&limit=" + strconv.Itoa(l.limit)
	}
	query, _ := url.ParseQuery(raw) // parsed without error by parseListQuery
	query.Set("cursor", next)
	query.Set("limit", strconv.Itoa(l.limit))
	return query.Encode()
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
	// byUpdate (?updated_since=) walks the (tenant_id, updated_at, id)
	// index from the time on.
	byUpdate
)

func (l listRequest) order() listOrder {
	switch {
	case l.since:
		return byUpdate
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
// ?sort=, ?q=, ?email= and ?updated_since=. Anything else, a repeated
// parameter or a bad value is refused with a detail for the 400.
func parseListQuery(raw string, sorts []string, email, since bool) (lq listQuery, detail string) {
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
		if since {
			known = strings.Replace(known, " and ", ", ", 1) + " and updated_since"
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
		case name == "updated_since" && since:
			at, detail := parseUpdatedSince(v)
			if detail != "" {
				return lq, detail
			}
			lq.updatedSince, lq.since = at, true
		default:
			return lq, "unknown query parameter " + strconv.Quote(name) + "; this list takes " + known
		}
	}
	if lq.since && (lq.sort != "" || lq.q != "" || lq.email != "") {
		return lq, "updated_since cannot be combined with sort, q or email: it lists in updated_at order, unfiltered"
	}
	return lq, ""
}

// parseUpdatedSince reads ?updated_since=: an RFC 3339 date-time (section
// 5.6: a time zone offset is required, fractional seconds are allowed) not
// before db.KeysetOrigin. PostgreSQL keeps microseconds (timestamptz, section
// 8.5 of its manual), so a finer time is rounded up: a row is listed exactly
// when it was updated at or after the time asked.
func parseUpdatedSince(v string) (time.Time, string) {
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, "updated_since must be an RFC 3339 date-time with a time zone offset, such as 2026-01-02T15:04:05.123456Z"
	}
	if at.Before(db.KeysetOrigin) {
		return time.Time{}, "updated_since must not be before " + db.KeysetOrigin.Format(time.RFC3339)
	}
	if rounded := at.Truncate(time.Microsecond); !rounded.Equal(at) {
		at = rounded.Add(time.Microsecond)
	}
	return at.UTC(), ""
}
