// Package buildinfo tells which build of portknock is running, from what
// the Go toolchain records in the binary, so that no release step has to
// stamp a version by hand; a packaged build may still name its version.
package buildinfo

import "runtime/debug"

// stamped is the version a packaged build names with
// -ldflags "-X portknock/internal/buildinfo.stamped=VERSION" (see
// packaging/build-deb.sh), so that the binary says which package it came
// from; empty in any other build. The linker sets it before main runs and
// nothing changes it after.
var stamped string

// Version returns "NAME VERSION [REVISION]": the version a packaged build
// was stamped with, else the module version ("(devel)" for a build from a
// checkout), and the first 12 digits of the commit when the build recorded
// it.
func Version(name string) string {
	return version(name, stamped)
}

func version(name, stamp string) string {
	v := "(devel)"
	bi, ok := debug.ReadBuildInfo()
	if ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	if stamp != "" {
		v = stamp
	}
	if ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return name + " " + v
}
