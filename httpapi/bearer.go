package httpapi

import (
	"errors"
	"net/http"

	"github.com/rowfence/rowfence/auth"
)

// bearer returns the request's bearer credential, read by
// auth.BearerCredential as on every path that takes one (the tenant routes,
// /v1/admin, /metrics), or answers 401 itself with realm's challenge
// (RFC 6750, section 3): error="invalid_request" for several Authorization
// fields, no error code for none or another scheme; want says what to send.
func bearer(w http.ResponseWriter, r *http.Request, realm, want string) (string, bool) {
	cred, err := auth.BearerCredential(r.Header.Values("Authorization"))
	switch {
	case errors.Is(err, auth.ErrSeveralAuthorization):
		challenge(w, r, realm, "invalid_request", "send exactly one Authorization header")
		return "", false
	case err != nil:
		challenge(w, r, realm, "", "send Authorization: Bearer <"+want+">")
		return "", false
	}
	return cred, true
}

// challenge answers 401 with the WWW-Authenticate challenge RFC 6750
// (section 3) describes; code is its error parameter, if any.
func challenge(w http.ResponseWriter, r *http.Request, realm, code, detail string) {
	c := `Bearer realm="` + realm + `"`
	if code != "" {
		c += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", c)
	writeProblem(w, r, probUnauthorized, detail)
}
