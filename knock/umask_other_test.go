//go:build !unix

package knock

import "portknock/sealed"

// writeKeyFileUmask0 is WriteKeyFile: there is no umask here.
func writeKeyFileUmask0(path string, k sealed.Key) error { return WriteKeyFile(path, k) }
