//go:build dev

// Package seed holds the demo data of `make run` (`rowfence dev`): the acme
// and globex tenants, their users and products, and API keys and a platform
// admin key whose secrets the README publishes.
//
// Only the dev build compiles it (go build -tags dev): the binary that
// `make build` makes cannot write these public credentials anywhere, and
// cmd/rowfence's TestServingCodeLinksNoTestOrDevMachinery fails if any
// package of that build imports it (docs/SECURITY.md, "Demo credentials and
// dev tooling").
package seed

import _ "embed"

// Demo is demo.sql: idempotent, run in one transaction as the migrating role.
//
//go:embed demo.sql
var Demo string
