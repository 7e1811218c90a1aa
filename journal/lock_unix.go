//go:build unix

package journal

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive lock on the state directory itself, held until
// the returned file is closed (or the process dies, when the kernel drops
// it). A second daemon on the same directory would run the first one's
// closes and lose its records at the next rewrite, so it must not start.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state_dir %s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("state_dir %s: locking: %w", dir, err)
	}
	return f, nil
}
