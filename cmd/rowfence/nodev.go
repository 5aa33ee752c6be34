//go:build !dev

package main

// devCmd in the serving build: the dev command, with the PostgreSQL starter
// and the demo seed's public keys, is compiled only with -tags dev (dev.go),
// so this binary cannot write demo credentials anywhere (docs/SECURITY.md,
// "Demo credentials and dev tooling"). Its flags are accepted, so that the
// answer is this one whatever the command line.
type devCmd struct {
	Data         string `help:"(dev build only)"`
	SeedExisting bool   `name:"seed-public-keys-into-existing-database" help:"(dev build only)"`
}

func (devCmd) Run(*runEnv) error {
	return usageError{"dev: built without dev tooling; use make run (go run -tags dev ./cmd/rowfence dev)"}
}
