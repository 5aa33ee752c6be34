package main

import (
	"fmt"

	"github.com/rowfence/rowfence/buildinfo"
)

type versionCmd struct{}

// Run prints which build this is (buildinfo.Get), one "key: value" line
// each; a value the binary does not record is "unknown".
func (versionCmd) Run(r *runEnv) error {
	i := buildinfo.Get()
	fmt.Fprintf(r.stdout, "rowfence %s\nrevision: %s\ntime: %s\nmodified: %t\ngo: %s\n",
		i.Version, i.Revision, i.Time, i.Modified, i.GoVersion)
	return nil
}
