//go:build !dev

package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/rowfence/rowfence/config"
)

// runDev in the serving build: the dev command, with the PostgreSQL starter
// and the demo seed's public keys, is compiled only with -tags dev (dev.go),
// so this binary cannot write demo credentials anywhere (docs/SECURITY.md,
// "Demo credentials and dev tooling").
func runDev(context.Context, []string, config.Config, io.Writer, *slog.Logger) error {
	return usageError{"dev: built without dev tooling; use make run (go run -tags dev ./cmd/rowfence dev)"}
}
