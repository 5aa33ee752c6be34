package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
)

// smallBuffers makes the server's sockets hold little unread data, as on a
// real network: a client's write then waits for the server to read.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(32 << 10)
	}
	return c, err
}

// A client that writes its whole request before it reads the answer (curl
// and most HTTP libraries do) gets the server's early answer, a 413 above
// all, instead of a reset connection: the server reads and discards a
// bounded amount of the body before it answers. A raw TCP client, so
// nothing in between reads the answer early.
func TestEarlyAnswerIsReadNotReset(t *testing.T) {
	t.Parallel()
	b := setupWith(t, func(b *testBundle, _ *httpapi.Config) {
		b.listener = func(l net.Listener) net.Listener { return smallBuffers{l} }
	})
	addr := strings.TrimPrefix(b.url, "http://")
	big := `{"name":"a","description":"` + strings.Repeat("x", httpapi.MaxBodyBytes+256<<10) + `","price":1}`
	cases := []struct {
		name    string
		headers string
		chunked bool
		status  int
	}{
		{"Content-Length over the limit", "Authorization: Bearer " + b.keys["acme"] + "\r\n", false, 413},
		{"chunked over the limit", "Authorization: Bearer " + b.keys["acme"] + "\r\n", true, 413},
		{"with Idempotency-Key", "Authorization: Bearer " + b.keys["acme"] + "\r\nIdempotency-Key: k1\r\n", false, 413},
		{"no credential", "", false, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_ = conn.(*net.TCPConn).SetWriteBuffer(32 << 10)
			require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
			head := "POST /v1/products HTTP/1.1\r\nHost: " + addr + "\r\nX-Tenant-ID: acme\r\nContent-Type: application/json\r\n" + c.headers
			w := bufio.NewWriter(conn)
			if c.chunked {
				fmt.Fprintf(w, "%sTransfer-Encoding: chunked\r\n\r\n", head)
				for rest := big; rest != ""; {
					n := min(len(rest), 64<<10)
					fmt.Fprintf(w, "%x\r\n%s\r\n", n, rest[:n])
					rest = rest[n:]
				}
				fmt.Fprint(w, "0\r\n\r\n")
			} else {
				fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n%s", head, len(big), big)
			}
			require.NoError(t, w.Flush(), "%s: the whole request could not be sent", c.name)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "%s: no answer", c.name)
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err, c.name)
			require.Equal(t, c.status, res.StatusCode, "%s: %s", c.name, body)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), c.name)
			conn.Close()
		})
	}
}
