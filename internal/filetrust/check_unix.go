//go:build unix

package filetrust

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxLinks bounds the symlinks followed for one path, as the kernel's ELOOP
// does.
const maxLinks = 40

// Check judges path for a daemon running as this process's effective user:
// every directory and symlink from / down to it, then the file it leads to
// in the given role (see the package documentation). It returns nil when
// all are trusted, and otherwise every *Error found on the way, joined.
//
// A missing file is not judged: Check then returns an error wrapping
// fs.ErrNotExist (and only if every directory above what is missing was
// trusted), so that a caller that will create the file may go on. Any other
// failure to look (a directory that cannot be searched) is returned as it
// is.
//
// Opening the path afterwards resolves it again, but that cannot reach
// another file: every name on the way lies in a directory that only root
// and the daemon's user may change.
func Check(path string, role Role) error {
	return CheckAs(path, role, uint32(os.Geteuid()))
}

// CheckAs is Check for a daemon running as uid, so that portknockd check,
// run by root, can judge files as the daemon's user will.
func CheckAs(path string, role Role, uid uint32) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	w := walker{path: abs, role: role, uid: uid}
	return w.walk()
}

// walker resolves a path one name at a time, as the kernel does, judging
// each directory and symlink it passes.
type walker struct {
	path string
	role Role
	uid  uint32
	errs []error
}

func (w *walker) judge(at string, st Stat, as Role) {
	if p := Judge(st, as, w.uid); p != 0 {
		w.errs = append(w.errs, &Error{
			Path: w.path, At: at, As: as, Stat: st, Problems: p,
			Owner: userName(st.UID), UID: w.uid, User: userName(w.uid),
		})
	}
}

// fail returns what was found not trusted, if anything, rather than err:
// a missing file below an untrusted directory is the lesser news.
func (w *walker) fail(err error) error {
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	return err
}

func (w *walker) walk() error {
	root, err := lstat("/")
	if err != nil {
		return err
	}
	rest := split(w.path)
	if len(rest) == 0 {
		w.judge("/", root, w.role)
		return w.fail(nil)
	}
	w.judge("/", root, Parent)
	cur, links := "/", 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		p := filepath.Join(cur, name)
		st, err := lstat(p)
		if err != nil {
			return w.fail(err)
		}
		if st.Mode&fs.ModeSymlink != 0 {
			w.judge(p, st, Link)
			if links++; links > maxLinks {
				return w.fail(&fs.PathError{Op: "open", Path: w.path, Err: syscall.ELOOP})
			}
			target, err := os.Readlink(p)
			if err != nil {
				return w.fail(err)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(split(target), rest...)
			continue
		}
		if len(rest) == 0 {
			w.judge(p, st, w.role)
			return w.fail(nil)
		}
		if !st.Mode.IsDir() {
			return w.fail(&fs.PathError{Op: "lstat", Path: p, Err: syscall.ENOTDIR})
		}
		w.judge(p, st, Parent)
		cur = p
	}
	// The path ended in "..", ".", or a symlink to a directory already
	// passed: that directory is the file, in its own role.
	st, err := lstat(cur)
	if err != nil {
		return w.fail(err)
	}
	w.judge(cur, st, w.role)
	return w.fail(nil)
}

// split returns the names in a path, without empty ones.
func split(path string) []string {
	var names []string
	for n := range strings.SplitSeq(path, "/") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

func lstat(path string) (Stat, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return Stat{}, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Stat{}, &fs.PathError{Op: "lstat", Path: path, Err: errors.New("no owner reported")}
	}
	return Stat{UID: sys.Uid, Mode: fi.Mode()}, nil
}

// userName returns uid's user name, or "" when it has none.
func userName(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return ""
	}
	return u.Username
}
