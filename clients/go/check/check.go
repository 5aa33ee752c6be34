// Package check is what the generated-client programs share: the server
// they talk to, named by the environment, and how a broken expectation ends
// the run (exit status 1, the reason on stderr). The test that starts the
// server runs them (clients/clients_test.go).
package check

import (
	"fmt"
	"os"
)

// Env is one run's server and credential.
type Env struct {
	URL     string // ROWFENCE_URL, the server's base URL
	Tenant  string // ROWFENCE_TENANT, the tenant's slug (X-Tenant-ID)
	Key     string // ROWFENCE_KEY, an admin API key of that tenant
	OtherID string // ROWFENCE_OTHER_ID, a product of another tenant
}

// Load reads Env, ending the run when a variable is missing.
func Load() Env {
	e := Env{URL: os.Getenv("ROWFENCE_URL"), Tenant: os.Getenv("ROWFENCE_TENANT"),
		Key: os.Getenv("ROWFENCE_KEY"), OtherID: os.Getenv("ROWFENCE_OTHER_ID")}
	That(e.URL != "" && e.Tenant != "" && e.Key != "" && e.OtherID != "",
		"set ROWFENCE_URL, ROWFENCE_TENANT, ROWFENCE_KEY and ROWFENCE_OTHER_ID")
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
