// Package statefile writes the daemon's state files (the close journal, the
// replay cache) so that a crash leaves either the old file or the new one,
// never a torn mix: both rewrite themselves the same way.
package statefile

import "os"

// Replace writes data to a new file in dir, syncs it and renames it over
// path. On failure the temporary file is removed and path is untouched.
// The rename is durable only once the caller has synced dir (SyncDir),
// which callers handle differently, so it is left to them.
func Replace(dir, path, pattern string, data []byte) error {
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// SyncDir makes the directory's entries (a new or renamed file) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
