package httpapi

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rowfence/rowfence/auth"
)

// ParseTrustedProxies reads TRUSTED_PROXIES: comma-separated CIDR prefixes
// (10.0.0.0/8, fd00::/8) or single addresses, of the proxies whose
// X-Forwarded-For this server believes. "" means none.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, errors.New("not a CIDR prefix or an IP address: " + strconv.Quote(f))
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (s *server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request came from: the connection's peer,
// or, when that peer is a trusted proxy, the nearest X-Forwarded-For hop
// that is not one (read from the right, as each proxy appends the address
// it was called from; what the client wrote itself is further left and
// never reached past an untrusted hop). The zero Addr when unknown.
// client is clientAddr(r), worked out once per request (requestInfo).
func (s *server) client(r *http.Request) netip.Addr {
	info := infoFrom(r)
	if !info.clientSet {
		info.client, info.clientSet = s.clientAddr(r), true
	}
	return info.client
}

func (s *server) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !s.trustedProxy(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			return addr // a trusted proxy wrote nonsense: blame the last trusted hop
		}
		if !s.trustedProxy(hop) {
			return hop
		}
		addr = hop
	}
	return addr
}

func parseHop(h string) (netip.Addr, bool) {
	h = strings.TrimSpace(h)
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// Kinds of credential, for the failed-credential metric.
const (
	credentialAPIKey      = "api_key"
	credentialToken       = "token"
	credentialPlatformKey = "platform_key"
)

func credentialKind(cred string) string {
	if auth.LooksLikeAPIKey(cred) {
		return credentialAPIKey
	}
	return credentialToken
}

// credentialCheck is a check of cred under the failed-credential throttle
// (leak vector 13), in two steps around the check itself:
//
//	c := s.credentialCheck(r, cred)
//	_, err := s.auth.AuthenticateIf(ctx, cred, c.lookup)
//	if s.checkedCredential(w, r, kind, &c, err) { return }
//
// The check verifies the credential from the cache, and asks c.lookup, only
// when the cache cannot answer, whether it may ask the database
// (auth.Authenticator.AuthenticateIf): a cached credential costs no look at
// the client address or the throttle. On a miss, a client address over its
// budget of failures gets 429 auth-throttled with Retry-After, answered by
// checkedCredential (true: handled), unless cred was verified within
// ratelimit.VouchFor (so a shared address does not lock out clients with
// good credentials once the cache forgets them). Failures (auth.ErrInvalid)
// count against the address. A value rather than closures, so that a
// request's check allocates nothing.
//
// A credential is vouched for when the database verified it, not on every
// cached success: a credential in use is looked up again at least every
// AUTH_CACHE_TTL, which renews its vouching long before VouchFor ends, and a
// SHA-256 and a cache write per request bought nothing more.
type credentialCheck struct {
	s                *server
	r                *http.Request
	cred             string
	asked, throttled bool
	wait             time.Duration
}

func (s *server) credentialCheck(r *http.Request, cred string) credentialCheck {
	return credentialCheck{s: s, r: r, cred: cred}
}

// lookup is asked on a cache miss whether the database may be asked.
func (c *credentialCheck) lookup() bool {
	f := c.s.authFailures
	if c.wait, c.throttled = f.Throttled(c.s.client(c.r)); c.throttled && !f.Vouched(c.cred) {
		return false
	}
	c.asked = true
	return true
}

// checkedCredential ends check c, whose result was err: it answers a
// throttled miss itself (handled) and counts failures and successes.
func (s *server) checkedCredential(w http.ResponseWriter, r *http.Request, kind string, c *credentialCheck, err error) (handled bool) {
	if c.throttled && !c.asked && errors.Is(err, auth.ErrNotCached) {
		s.metrics.AuthThrottled()
		infoFrom(r).authErr = "throttled: too many failed credentials from this client address"
		w.Header().Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(c.wait))))
		writeProblem(w, r, probAuthThrottled, "too many failed credentials from this address; retry after the Retry-After seconds")
		return true
	}
	switch {
	case err == nil && c.asked:
		s.authFailures.Vouch(c.cred)
	case errors.Is(err, auth.ErrInvalid):
		s.authFailures.Failed(s.client(r))
		s.authFailures.Unvouch(c.cred)
		s.metrics.CredentialFailed(kind)
	}
	return false
}
