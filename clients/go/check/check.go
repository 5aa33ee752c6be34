// Package check is what the generated-client programs share: the server
// they talk to, named by their flags, and how a broken expectation ends the
// run (exit status 1, the reason on stderr). The test that starts the
// server runs them (clients/clients_test.go).
package check

import (
	"flag"
	"fmt"
	"os"
)

// Env is one run's server and credential.
type Env struct {
	URL     string // -url, the server's base URL
	Tenant  string // -tenant, the tenant's slug (X-Tenant-ID)
	Key     string // -key, an admin API key of that tenant
	OtherID string // -other, a product of another tenant
}

// Load reads Env from the command line, ending the run when a flag is
// missing.
func Load() Env {
	var e Env
	flag.StringVar(&e.URL, "url", "", "the server's base URL")
	flag.StringVar(&e.Tenant, "tenant", "", "the tenant's slug")
	flag.StringVar(&e.Key, "key", "", "an admin API key of the tenant")
	flag.StringVar(&e.OtherID, "other", "", "the id of another tenant's product")
	flag.Parse()
	That(e.URL != "" && e.Tenant != "" && e.Key != "" && e.OtherID != "", "give -url, -tenant, -key and -other")
	return e
}

// That ends the run with the message unless ok.
func That(ok bool, format string, args ...any) {
	if !ok {
		fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
		os.Exit(1)
	}
}

// NoError ends the run when err is not nil.
func NoError(err error, what string) {
	That(err == nil, "%s: %v", what, err)
}

// Step reports progress, so that a failure shows how far the flow got.
func Step(format string, args ...any) {
	fmt.Printf("ok  "+format+"\n", args...)
}
