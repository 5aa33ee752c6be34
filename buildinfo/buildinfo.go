// Package buildinfo says which build of rowfence is running, from what the
// Go toolchain recorded in the binary (runtime/debug.ReadBuildInfo): the
// module version, the VCS revision and commit time, and the Go version.
// `rowfence version`, /readyz and the rowfence_build_info metric all read it
// here, so they cannot disagree.
//
// The toolchain records the revision only when it builds inside a Git work
// tree with VCS stamping on (`go build -buildvcs=auto`, the default; `make
// build` turns it back on, the Makefile's tests run with it off). A binary
// built otherwise (a source archive, `go test`, `go run`) has none, and
// Unknown stands in for each missing value.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Unknown stands in for a value the binary does not record.
const Unknown = "unknown"

// Info is one binary's build. No field is empty: a missing value is Unknown.
type Info struct {
	// Version is the main module's version as the go command stamped it: a
	// tag (v1.2.0), a pseudo-version (v0.0.0-20261130140000-3c5bc6a1b2c3,
	// "+dirty" when the work tree had changes), or "(devel)" when the go
	// command knew no version (Go's own term).
	Version string
	// Revision is the VCS commit (vcs.revision), Time its commit time in
	// RFC 3339 (vcs.time), Modified whether the work tree had uncommitted
	// changes (vcs.modified).
	Revision, Time string
	Modified       bool
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string
}

// Get is the running binary's Info, read once.
var Get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return parse(bi)
})

// parse reads bi, which may be nil (a binary built without module support).
func parse(bi *debug.BuildInfo) Info {
	info := Info{Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: runtime.Version()}
	if bi == nil {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				info.Revision = s.Value
			}
		case "vcs.time":
			if s.Value != "" {
				info.Time = s.Value
			}
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}
