//go:build !unix

package filetrust

// Check trusts every path where files have no Unix owner and mode to judge.
func Check(path string, role Role) error { return nil }

// CheckAs trusts every path, as Check does here.
func CheckAs(path string, role Role, uid uint32) error { return nil }
