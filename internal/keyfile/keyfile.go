// Package keyfile reads and writes sealed-door key files, for the client
// and the daemon alike: one line of base64 (see sealed.ParseKey), mode
// 0600, never overwritten.
package keyfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"portknock/sealed"
)

// maxKeyFile bounds what Read reads: a key file is one short line and
// a few comments, and naming a big file by mistake should say so rather
// than read it all.
const maxKeyFile = 64 << 10

// Read reads a sealed door's key file. It refuses anything but a regular
// file, and a file that its group or others can read: a key that others
// could read is no longer secret, and saying so now is better than using
// it. No error repeats what the file holds.
func Read(path string) (sealed.Key, error) {
	// Non-blocking, so that a FIFO named by mistake is refused below
	// instead of holding the daemon's start until something writes to it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return sealed.Key{}, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	// The mode of the file opened, not of the name: a symbolic link's
	// target is what gets read.
	fi, err := f.Stat()
	if err != nil {
		return sealed.Key{}, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return sealed.Key{}, fmt.Errorf("key file %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if err := checkKeyMode(path, fi.Mode()); err != nil {
		return sealed.Key{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return sealed.Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return sealed.Key{}, fmt.Errorf("key file %s: larger than %d KiB, not a key file", path, maxKeyFile>>10)
	}
	k, err := sealed.ParseKey(data)
	if err != nil {
		return sealed.Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// checkKeyMode refuses a key file mode that lets group or others read it.
// Windows has no such bits (Go makes them up from the read-only flag), so
// the check would refuse every file there; its ACLs are the user's to set.
func checkKeyMode(path string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" || mode.Perm()&0o044 == 0 {
		return nil
	}
	return fmt.Errorf("key file %s: mode %04o: its group or others can read the key, which must stay secret; fix: chmod 600 %s", path, mode.Perm(), path)
}

// Write writes k to a new key file at path, readable and writable by its
// owner only. It never replaces an existing file, not even an empty one or
// a symbolic link: a key overwritten by mistake locks every client out.
// The file is synced before Write returns, so that a key the user has been
// told about survives a crash.
func Write(path string, k sealed.Key) error {
	text, err := k.MarshalText()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; a key file is never overwritten (to replace a key, remove the old file first, then give the new key to the daemon and every client)", path)
	}
	if err != nil {
		return fmt.Errorf("creating key file: %w", err)
	}
	_, err = f.Write(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Half a key file is worse than none: the next keygen would
		// refuse to replace it.
		os.Remove(path)
		return fmt.Errorf("writing key file: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a new directory entry durable where the system allows it.
// It is best effort: the key's bytes are already synced, and a file system
// that cannot sync a directory has nothing better to offer.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
