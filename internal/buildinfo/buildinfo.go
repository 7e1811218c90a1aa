// Package buildinfo tells which build of portknock is running, from what
// the Go toolchain records in the binary, so that no release step has to
// stamp a version by hand.
package buildinfo

import "runtime/debug"

// Version returns "NAME VERSION [REVISION]": the module version ("(devel)"
// for a build from a checkout) and the first 12 digits of the commit when
// the build recorded it.
func Version(name string) string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return name + " " + v
}
