//go:build !unix

package textlog

import "os"

// pollable returns in as it is: without Unix descriptors there is no way to
// make stdin's reads interruptible.
func pollable(in *os.File) (*os.File, func(), error) { return in, func() {}, nil }
