//go:build !unix

package keyfile

import "portknock/sealed"

// writeUmask0 is Write: there is no umask here.
func writeUmask0(path string, k sealed.Key) error { return Write(path, k) }
