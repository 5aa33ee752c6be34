package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files in a temporary directory; pool trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rowfence test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, pool
}

// With TLS_CERT_FILE and TLS_KEY_FILE, serve answers HTTPS on ADDR (HTTP/2
// offered), refuses TLS 1.1 and answers plain HTTP with 400 (issue 17,
// item 1).
func TestServeTLS(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	certFile, keyFile, pool := selfSigned(t)
	addr := freeAddr(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL, "APP_DATABASE_PASSWORD": tdb.AppPassword,
		"ADDR": addr, "LOG_FORMAT": "text", "TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"rowfence", "serve"}, envOf(env), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	var res *http.Response
	require.Eventually(t, func() bool {
		select {
		case err := <-errc:
			t.Fatalf("serve exited: %v\n%s", err, logs)
		default:
		}
		var err error
		res, err = client.Get("https://" + addr + "/healthz")
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "https://%s/healthz\n%s", addr, logs)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.JSONEq(t, `{"status":"ok"}`, string(body))
	require.GreaterOrEqual(t, res.TLS.Version, uint16(tls.VersionTLS12))
	require.Equal(t, 2, res.ProtoMajor, "HTTP/2 over TLS")
	// serve's log lines are batched (logwriter.go).
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "tls=true") }, 10*time.Second, 20*time.Millisecond, "%s", logs)

	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	_, err = old.Get("https://" + addr + "/healthz")
	require.ErrorContains(t, err, "protocol version", "TLS 1.1 is refused")

	plain, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	plain.Body.Close()
	require.Equal(t, 400, plain.StatusCode, "plain HTTP to the HTTPS port")
}

// Half a pair, or files that are not one, stop serve before it starts: a
// usage error (exit status 2) naming both variables.
func TestServeTLSNeedsBothFiles(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := selfSigned(t)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TLS_CERT_FILE": certFile}, "TLS_CERT_FILE and TLS_KEY_FILE go together"},
		{map[string]string{"TLS_KEY_FILE": keyFile}, "TLS_CERT_FILE and TLS_KEY_FILE go together"},
		{map[string]string{"TLS_CERT_FILE": keyFile, "TLS_KEY_FILE": certFile},
			"TLS_CERT_FILE and TLS_KEY_FILE must be a readable PEM certificate chain and its private key"},
		{map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": certFile + ".missing"},
			"TLS_CERT_FILE and TLS_KEY_FILE must be a readable PEM certificate chain and its private key"},
	} {
		_, err := runCmd(t, tc.env, "serve")
		require.ErrorContains(t, err, tc.want, tc.env)
		require.Equal(t, 2, exitCode(err), tc.env)
	}
}
