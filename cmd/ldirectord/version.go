package main

import "runtime/debug"

// buildVersion is this program's own version, a Debian version made from `git describe` by
// scripts/version.sh; the Makefile and scripts/build-deb.sh set it at link time with
// -ldflags "-X main.buildVersion=...".
var buildVersion string

// programVersion is buildVersion or, for a plain `go build`, "devel" and the git revision Go recorded.
func programVersion() string {
	if buildVersion != "" {
		return buildVersion
	}
	v := "devel"
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " (git " + rev
			if modified == "true" {
				v += ", modified"
			}
			v += ")"
		}
	}
	return v
}
