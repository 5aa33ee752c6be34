//go:build dev

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/pgtest"
)

// shellWords splits a banner line as a POSIX shell would, for the little
// the banner uses: '…', "…" with $NAME expanded from vars, and spaces.
func shellWords(t *testing.T, line string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; {
		case ch == ' ':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			require.GreaterOrEqual(t, end, 0, "unclosed ' in %s", line)
			cur.WriteString(line[i+1 : i+1+end])
			i, inWord = i+1+end, true
		case ch == '"':
			end := strings.IndexByte(line[i+1:], '"')
			require.GreaterOrEqual(t, end, 0, `unclosed " in %s`, line)
			cur.WriteString(os.Expand(line[i+1:i+1+end], func(k string) string { return vars[k] }))
			i, inWord = i+1+end, true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// curlRequest turns the banner's curl words into the request they send.
func curlRequest(t *testing.T, words []string) *http.Request {
	t.Helper()
	require.Equal(t, "curl", words[0])
	method, target, body := "GET", "", ""
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		switch words[i] {
		case "-s":
		case "-X":
			i++
			method = words[i]
		case "-H":
			i++
			k, v, ok := strings.Cut(words[i], ": ")
			require.True(t, ok, words[i])
			header.Add(k, v)
		case "-d":
			i++
			body = words[i]
		default:
			require.Empty(t, target, "one URL: %v", words)
			target = words[i]
		}
	}
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	return req
}

// Issue 17: make run's banner works as printed in every TENANT_MODE (the
// example requests name their tenant as the mode says and answer as their
// comments say), and prints the connection strings that audit (the
// migrating role) and leakcheck --create --db (the serving role) need,
// which run as printed.
func TestDevBannerFollowsTenantMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []httpapi.TenantMode{httpapi.ModeHeader, httpapi.ModeSubdomain, httpapi.ModePath, httpapi.ModeToken} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			tdb := pgtest.New(t)
			require.NoError(t, seedDemo(context.Background(), tdb.AdminURL))
			const baseDomain = "rowfence.test"
			base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "PLATFORM_DATABASE_URL": tdb.PlatformURL,
				"TENANT_MODE": string(mode), "BASE_DOMAIN": baseDomain}, "serve")
			var banner bytes.Buffer
			printBanner(&banner, config.Config{Addr: strings.TrimPrefix(base, "http://"), TenantMode: mode, BaseDomain: baseDomain,
				DatabaseURL: tdb.AdminURL}, false, tdb.AppPassword)
			t.Log("\n" + banner.String())

			vars := map[string]string{}
			assign := regexp.MustCompile(`^\s*(?:export )?([A-Z_]+)=(.*)$`)
			statusNote := regexp.MustCompile(`^\s*(\d{3})\b`)
			curls, commands := 0, 0
			for _, line := range strings.Split(banner.String(), "\n") {
				cmd, comment, _ := strings.Cut(line, "#")
				cmd = strings.TrimSpace(cmd)
				switch {
				case cmd == "":
				case assign.MatchString(cmd):
					m := assign.FindStringSubmatch(cmd)
					vars[m[1]] = shellWords(t, m[2], vars)[0]
				case strings.HasPrefix(cmd, "curl "):
					curls++
					res, err := http.DefaultClient.Do(curlRequest(t, shellWords(t, cmd, vars)))
					require.NoError(t, err, cmd)
					raw, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if m := statusNote.FindStringSubmatch(comment); m != nil {
						require.Equal(t, m[1], res.Status[:3], "%s\n%s", cmd, raw)
					} else {
						require.Less(t, res.StatusCode, 300, "%s\n%s", cmd, raw)
					}
				case strings.HasPrefix(cmd, "go run ./cmd/rowfence "):
					commands++
					words := shellWords(t, strings.TrimPrefix(cmd, "go run ./cmd/rowfence "), vars)
					out, err := runCmd(t, map[string]string{"DATABASE_URL": vars["DATABASE_URL"]}, words...)
					require.NoError(t, err, "%s\n%s", cmd, out)
					if words[0] == "leakcheck" {
						require.Contains(t, out, ", 0 leak(s)")
						require.NotContains(t, out, "(no --db)")
						require.Contains(t, out, "pass  sql:", "--db reached the SQL vectors as the serving role")
					}
				}
			}
			require.GreaterOrEqual(t, curls, 5)
			require.Equal(t, 2, commands, "audit and leakcheck")
			u, err := url.Parse(vars["DATABASE_URL"])
			require.NoError(t, err)
			require.Equal(t, tdb.AdminURL, u.String(), "audit and leakcheck --create: the migrating role")
		})
	}
}
