package httpapi

import "net/http"

// Header names in their canonical form (textproto.CanonicalMIMEHeaderKey),
// for the headers every request reads or every answer carries. http.Header's
// Get, Set and Add canonicalize the name on each call, and a name that is
// not canonical already (X-Request-ID, ETag, RateLimit) costs an allocation
// each time; indexing the map with the canonical name does not. The wire
// form is the same: net/http writes a header under its map key, which Set
// would have canonicalized to exactly these.
var (
	hdrRequestID    = http.CanonicalHeaderKey(RequestIDHeader) // X-Request-Id
	hdrTenant       = http.CanonicalHeaderKey(TenantHeader)    // X-Tenant-Id
	hdrETag         = http.CanonicalHeaderKey("ETag")          // Etag
	hdrCacheControl = http.CanonicalHeaderKey("Cache-Control")
	hdrVary         = http.CanonicalHeaderKey("Vary")
	hdrIfNoneMatch  = http.CanonicalHeaderKey("If-None-Match")
	// Ratelimit-Policy and Ratelimit (draft-ietf-httpapi-ratelimit-headers;
	// field names are case-insensitive, RFC 9110, section 5.1).
	hdrRateLimitPolicy = http.CanonicalHeaderKey("RateLimit-Policy")
	hdrRateLimit       = http.CanonicalHeaderKey("RateLimit")
)

// Header values every tenant answer carries, shared: a header's value slice
// is only ever replaced or appended to (Set, Add, and net/http), never
// written in place, and appending to a full slice copies it.
var (
	noStore         = []string{"no-store"}
	contentTypeJSON = []string{"application/json"}
	nosniff         = []string{"nosniff"}
	// Vary of a tenant answer: by credential, and in header and token
	// modes by the tenant header.
	varyAuthorization       = []string{"Authorization"}
	varyAuthorizationTenant = []string{"Authorization", TenantHeader}
)

// addVary adds values to h's Vary, sharing values when it is the only one.
func addVary(h http.Header, values []string) {
	if old := h[hdrVary]; len(old) > 0 {
		h[hdrVary] = append(old[:len(old):len(old)], values...)
		return
	}
	h[hdrVary] = values[:len(values):len(values)]
}
