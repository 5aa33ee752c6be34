package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// Conditional requests (RFC 9110, section 13): every single resource is
// answered with a strong ETag, a hash of its JSON. GET with If-None-Match
// holding it is a 304; PATCH and DELETE with If-Match that no longer holds
// it are a 412, so that two clients cannot overwrite each other unseen.

func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
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

// ifMatch reports whether the request has an If-Match, and whether it holds
// tag ("*" or the tag itself, compared strongly: a weak tag never matches).
func ifMatch(r *http.Request, tag string) (present, ok bool) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return false, true
	}
	tags, _ := etagList(values)
	for _, t := range tags {
		if t == "*" || t == tag {
			return true, true
		}
	}
	return true, false
}

// errPrecondition carries the current ETag of a resource that If-Match did
// not match: a 412 (writeError).
type errPrecondition struct{ current string }

func (e errPrecondition) Error() string {
	return "If-Match does not hold the current ETag " + e.current
}
