// Package buildinfo says which build a binary is: the version the linker
// set, the Go version, and the VCS revision Go recorded in the binary.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info describes a build.
type Info struct {
	Version   string // set by the linker (-X main.version=...); "dev" by default
	GoVersion string // runtime.Version()
	Revision  string // vcs.revision; "" when the build did not record it
	Modified  bool   // vcs.modified: built from a tree with uncommitted changes
}

// Read returns the running binary's Info, with version as its Version.
func Read(version string) Info {
	i := Info{Version: version, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i = fromSettings(i, bi.Settings)
	}
	return i
}

func fromSettings(i Info, settings []debug.BuildSetting) Info {
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the -version line after the binary's name:
// "v1.2.0 (go1.26.0, revision 0123abcd)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	b.WriteString(" (")
	b.WriteString(i.GoVersion)
	if i.Revision != "" {
		b.WriteString(", revision ")
		b.WriteString(i.Revision)
		if i.Modified {
			b.WriteString(", modified")
		}
	}
	b.WriteString(")")
	return b.String()
}
