package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// Conditional requests (RFC 9110, section 13): every single resource is
// answered with a strong ETag, a hash of its JSON. GET with If-None-Match
// holding it is a 304; PATCH and DELETE with If-Match that no longer holds
// it are a 412, so that two clients cannot overwrite each other unseen.

// etagOf is body's strong ETag: the first 18 bytes (144 bits) of its
// SHA-256 in unpadded base64url (24 characters), quoted. One allocation:
// the tag is written out on the stack.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	var tag [1 + 24 + 1]byte
	tag[0], tag[len(tag)-1] = '"', '"'
	base64.RawURLEncoding.Encode(tag[1:len(tag)-1], sum[:18])
	return string(tag[:])
}

// etagList reads If-Match / If-None-Match values: "*" or entity tags,
// [W/]"<etagc…>" (RFC 9110, section 8.8.3), separated by commas. ok is
// false when a value is anything else; textrule's rule for headers, visible
// ASCII, also holds inside a tag, where RFC 9110 would allow obs-text
// (rowfence's tags never hold it).
func etagList(values []string) (tags []string, ok bool) {
	for _, v := range values {
		for s := v; ; {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] == '*' {
				tags, s = append(tags, "*"), s[1:]
			} else {
				opaque := strings.TrimPrefix(s, "W/")
				if opaque == "" || opaque[0] != '"' {
					return nil, false
				}
				end := strings.IndexByte(opaque[1:], '"') + 1
				if end == 0 {
					return nil, false
				}
				for i := 1; i < end; i++ {
					if opaque[i] < 0x21 || opaque[i] > 0x7e {
						return nil, false
					}
				}
				n := len(s) - len(opaque) + end + 1
				tags, s = append(tags, s[:n]), s[n:]
			}
			if s = strings.TrimLeft(s, " \t"); s != "" && s[0] != ',' {
				return nil, false
			}
		}
	}
	return tags, true
}

// conditionalHeadersValid answers 400 for a malformed If-Match or
// If-None-Match, before any SQL runs.
func conditionalHeadersValid(w http.ResponseWriter, r *http.Request) bool {
	for _, name := range []string{"If-Match", "If-None-Match"} {
		if _, ok := etagList(r.Header.Values(name)); !ok {
			writeProblem(w, r, probBadRequest, name+` must be * or a list of entity tags such as "xyz" or W/"xyz" (RFC 9110, section 13.1), of visible ASCII`)
			return false
		}
	}
	return true
}

// noneMatch: If-None-Match holds the tag ("*", or the tag itself, compared
// weakly: W/"x" matches "x").
func noneMatch(values []string, tag string) bool {
	tags, _ := etagList(values)
	for _, t := range tags {
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}

// ifMatchHolds reports whether the request's If-Match holds tag ("*" or
// the tag itself, compared strongly: a weak tag never matches).
func ifMatchHolds(r *http.Request, tag string) bool {
	tags, _ := etagList(r.Header.Values("If-Match"))
	for _, t := range tags {
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// errPrecondition carries the current ETag of a resource that If-Match did
// not match: a 412 (writeError).
type errPrecondition struct{ current string }

func (e errPrecondition) Error() string {
	return "If-Match does not hold the current ETag " + e.current
}

// writeIfMatch runs write, one statement that changes or deletes a row,
// through exec. With an If-Match it first runs current in the same
// transaction, which locks the row (FOR UPDATE) and returns the
// representation its ETag is of, and writes only if the If-Match holds that
// ETag: errPrecondition otherwise (RFC 9110, section 13.1.1). Without one,
// write runs alone (db.OneIn).
func writeIfMatch[T any](r *http.Request, exec db.Executor, current func(q *dbsqlc.Queries) (any, error), write func(q *dbsqlc.Queries) (T, error)) (T, error) {
	if len(r.Header.Values("If-Match")) == 0 {
		return db.OneIn(r.Context(), exec, write)
	}
	var out T
	err := db.TxIn(r.Context(), exec, func(q *dbsqlc.Queries) error {
		v, err := current(q)
		if err != nil {
			return err
		}
		if tag := etagJSON(v); !ifMatchHolds(r, tag) {
			return errPrecondition{current: tag}
		}
		out, err = write(q)
		return err
	})
	return out, err
}
