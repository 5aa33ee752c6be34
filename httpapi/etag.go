package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
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

// etagList splits If-Match / If-None-Match values into their entity tags.
func etagList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// noneMatch: If-None-Match holds the tag ("*", or the tag itself, compared
// weakly: W/"x" matches "x").
func noneMatch(values []string, tag string) bool {
	for _, t := range etagList(values) {
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
	for _, t := range etagList(values) {
		if t == "*" || t == tag {
			return true, true
		}
	}
	return true, false
}

// errPrecondition carries the current ETag of a resource that If-Match did
// not match.
type errPrecondition struct{ current string }

func (e errPrecondition) Error() string {
	return "If-Match does not hold the current ETag " + e.current
}

// preconditionFailed answers 412 when err is an errPrecondition.
func preconditionFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	var pf errPrecondition
	if !errors.As(err, &pf) {
		return false
	}
	w.Header().Set("ETag", pf.current)
	writeProblem(w, r, probPreconditionFailed, "the resource changed since you read it (its ETag is now "+pf.current+"); read it again and retry")
	return true
}
