package main

import (
	"runtime/debug"
	"strings"
)

// version is the release this source is, stamped over at release time with
// -ldflags "-X main.version=vX.Y.Z". A `go install …@vX.Y.Z` build reports
// the module version instead, which is the same string for a tagged release.
var version = "v0.5.0-dev"

// versionString is what -V prints, on stderr as ssh does: the version, the
// commit it was built from (with "+dirty" when the tree had changes), and the
// x/crypto that does the SSH protocol.
func versionString() string {
	v := version
	var commit, crypto string
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" && !strings.HasPrefix(mv, "v0.0.0-") {
			v = mv
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "golang.org/x/crypto" {
				crypto = d.Version
			}
		}
	}
	out := "rssh " + v
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if dirty {
			commit += "+dirty"
		}
		out += " (commit " + commit + ")"
	}
	if crypto != "" {
		out += ", golang.org/x/crypto " + crypto
	}
	return out
}
