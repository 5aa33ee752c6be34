package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/rowfence/rowfence/buildinfo"
)

// runVersion prints which build this is (buildinfo.Get), one "key: value"
// line each; a value the binary does not record is "unknown".
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: rowfence version\n\nPrints the module version, the VCS revision and commit time, and the Go version the binary was built with.\n")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	i := buildinfo.Get()
	fmt.Fprintf(stdout, "rowfence %s\nrevision: %s\ntime: %s\nmodified: %t\ngo: %s\n",
		i.Version, i.Revision, i.Time, i.Modified, i.GoVersion)
	return nil
}
