package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStampedBuild(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8",
		Main: debug.Module{Path: "github.com/rowfence/rowfence", Version: "v0.0.0-20261130140000-3c5bc6a1b2c3+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "3c5bc6a1b2c3d4e5f60718293a4b5c6d7e8f9012"},
			{Key: "vcs.time", Value: "2026-11-30T14:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	require.Equal(t, Info{Version: "v0.0.0-20261130140000-3c5bc6a1b2c3+dirty",
		Revision: "3c5bc6a1b2c3d4e5f60718293a4b5c6d7e8f9012", Time: "2026-11-30T14:00:00Z", Modified: true,
		GoVersion: "go1.26.8"}, parse(bi))
}

// A build without VCS stamping (-buildvcs=false, a source archive, go test)
// says Unknown instead of an empty string.
func TestParseUnstampedBuild(t *testing.T) {
	require.Equal(t, Info{Version: "(devel)", Revision: Unknown, Time: Unknown, GoVersion: "go1.26.8"},
		parse(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}))
	require.Equal(t, Info{Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: runtime.Version()},
		parse(nil))
	require.Equal(t, Info{Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: runtime.Version()},
		parse(&debug.BuildInfo{}))
}

func TestGetHasNoEmptyField(t *testing.T) {
	i := Get()
	for name, v := range map[string]string{"Version": i.Version, "Revision": i.Revision, "Time": i.Time, "GoVersion": i.GoVersion} {
		require.NotEmpty(t, v, name)
	}
}
