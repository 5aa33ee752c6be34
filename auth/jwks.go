package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Defaults of the JWKS cache.
const (
	// DefaultJWKSRefreshInterval is how often the key set is fetched again:
	// with AUTH_CACHE_TTL, the bound on a key removed from the set.
	DefaultJWKSRefreshInterval = 15 * time.Minute
	// DefaultJWKSUnknownKIDInterval: at most one fetch per interval is
	// caused by tokens naming a kid the cached set lacks.
	DefaultJWKSUnknownKIDInterval = 30 * time.Second
	// jwksFetchTimeout bounds one fetch of the key set.
	jwksFetchTimeout = 5 * time.Second
	// jwksMaxBytes bounds the key set's size: a set has a few keys of a few
	// kilobytes, and the endpoint is not trusted to be small.
	jwksMaxBytes = 1 << 20
)

// jwksAlgorithms are the signature algorithms a key of the set may declare
// (RFC 7518, section 3.1, less HMAC and none: a JWKS is public, so an
// "oct" key in it would be a secret anyone can read).
var jwksAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// CheckJWKSURL refuses a JWKS URL that is not https://, unless its host is
// a loopback address or localhost. The key set is the trust anchor of every
// token: whoever can change it in transit signs in as anyone in any tenant,
// so it is fetched over TLS (with the system's roots); a loopback address
// never leaves the machine (a sidecar, a test's server).
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("must be an absolute https:// URL without credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback(u.Hostname()) {
			return nil
		}
		return errors.New("must be https:// (http:// only for a loopback address)")
	}
	return errors.New("must be an https:// URL")
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jwks is a key set fetched from a URL, cached, and fetched again every
// refresh interval and, at a bounded rate, for a kid it lacks (keyfunc and
// jwkset do the caching and the fetching).
type jwks struct {
	kf     keyfunc.Keyfunc
	cancel context.CancelFunc
}

func newJWKS(cfg JWTConfig) (*jwks, error) {
	if err := CheckJWKSURL(cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("auth: the JWKS URL %s", err)
	}
	refresh := cfg.JWKSRefreshInterval
	if refresh <= 0 {
		refresh = DefaultJWKSRefreshInterval
	}
	unknown := cfg.JWKSUnknownKIDInterval
	if unknown <= 0 {
		unknown = DefaultJWKSUnknownKIDInterval
	}
	client := cfg.JWKSClient
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	// Every fetch, redirects included, keeps to the URL rules and the size bound.
	c := *client
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = limitedBody{base}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return CheckJWKSURL(req.URL.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A request whose kid is unknown waits for the limiter at most this long
	// (and waits not at all when the next fetch is further away): a flood of
	// made-up kids is refused at once instead of queueing.
	wait := min(jwksFetchTimeout, unknown/2)
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:            &c,
		HTTPTimeout:       jwksFetchTimeout,
		RefreshInterval:   refresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknown), 1),
		RateLimitWaitMax:  wait,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				slog.Default().WarnContext(ctx, "JWKS fetch failed; the cached keys stay in use", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	return &jwks{kf: kf, cancel: cancel}, nil
}

// keyFor returns the public key the token's kid names, for the token's alg.
// Stricter than keyfunc's own Keyfunc: a token must name its key (RFC 7515,
// section 4.1.4), and the key must declare the token's algorithm (RFC 7517,
// section 4.4), be meant for signatures (section 4.2) and be of the kind
// and size the algorithm needs; so "none", HMAC and algorithm confusion
// find no key.
func (s *jwks) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("the token names no key (kid)")
	}
	alg := t.Method.Alg()
	jwk, err := s.kf.Storage().KeyRead(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("no key %q in the JWKS (after a refresh, if one was due)", kid)
	}
	m := jwk.Marshal()
	if m.ALG.String() != alg {
		return nil, fmt.Errorf("key %q declares alg %q, the token %q", kid, m.ALG, alg)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("key %q is for %q, not signatures", kid, m.USE)
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if err := keyFits(alg, key); err != nil {
		return nil, fmt.Errorf("key %q: %w", kid, err)
	}
	return key, nil
}

// keyFits checks that key is the kind the algorithm verifies with (RFC 7518
// sections 3.3 to 3.5; RFC 8037 for EdDSA), RSA keys of at least 2048 bits.
func keyFits(alg string, key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' && alg[0] != 'P' {
			break
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits; at least 2048 are needed", k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			break
		}
		return nil
	case ed25519.PublicKey:
		if alg == "EdDSA" {
			return nil
		}
	}
	return fmt.Errorf("a %T cannot verify %s", key, alg)
}

func (s *jwks) close() { s.cancel() }

// limitedBody cuts a response body at jwksMaxBytes (the JSON decoder then
// fails: the set is refused, the cached keys stay).
type limitedBody struct{ base http.RoundTripper }

func (l limitedBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, jwksMaxBytes), resp.Body}
	}
	return resp, err
}
