//go:build unix

package keyfile

import (
	"syscall"

	"portknock/sealed"
)

// writeUmask0 is Write under the most permissive umask, which
// must not widen the file's mode. The umask is the process's, so no other
// test of this package runs in parallel with the one that calls it.
func writeUmask0(path string, k sealed.Key) error {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	return Write(path, k)
}
