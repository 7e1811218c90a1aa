// Package filetrust decides whether portknockd may believe a file: its
// configuration, its state_dir and journal, one-time sequence files, key
// files and the FIFOs and logs it reads knocks from.
//
// The daemon runs the commands these files name, opens doors on the knocks
// they carry and, from its journal, runs stop commands as itself at the next
// start. Whoever can write one of them commands the daemon. So, like sshd's
// StrictModes and fwknopd, a file is believed only when it is owned by root
// or by the user the daemon runs as, and neither its group nor others may
// write to it; a secret (a key) may not even be read by them.
//
// The file alone is not enough: whoever may write to a directory on the way
// to it can rename the file away and put their own in its place. Every
// directory from / down is therefore judged too: owned by root or the
// daemon's user, and not writable by group or others unless it is sticky
// (as /tmp is, mode 1777), since a sticky directory lets others add names
// but not replace the ones they do not own. A name someone else adds before
// ours exists is caught as well, because it is then owned by them. Symlinks
// are followed and the file they lead to is judged, but every symlink on
// the way must itself be owned by root or the daemon's user: in a sticky
// directory anyone can plant one, and it would choose which of root's files
// the daemon reads.
//
// Only mode bits are read. POSIX ACLs do not escape this: a named user or
// group entry that may write shows in the group write bit (the ACL mask),
// so such a file is refused as group-writable.
//
// The judgement is pure (Judge, on the owner and mode of a Stat) so that
// every rule is tested without root; Check is the thin layer that walks a
// path with lstat.
package filetrust

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// Role is what the daemon does with a file, which decides the rule it is
// judged by and the fix an error proposes.
type Role uint8

const (
	// Config is a file the daemon only reads and an administrator
	// writes: the configuration, a followed log file. A wrong owner is
	// fixed by giving it to root.
	Config Role = iota
	// State is a file or directory the daemon writes as well as reads:
	// state_dir and what it holds, one-time sequence files, FIFOs. A wrong
	// owner is fixed by giving it to the daemon's user.
	State
	// Secret is a key: like State, and not readable by group or others.
	Secret
	// Parent is a directory on the way to a file. Group or others may
	// write to it only if it is sticky.
	Parent
	// Link is a symlink on the way to a file, or the file's own name.
	// Only its owner matters: a symlink's mode means nothing.
	Link
)

// String names the role as messages do.
func (r Role) String() string {
	switch r {
	case Config:
		return "file"
	case State:
		return "state file"
	case Secret:
		return "secret"
	case Parent:
		return "directory"
	case Link:
		return "symlink"
	}
	return "role " + strconv.Itoa(int(r))
}

// Stat is what Judge needs to know of a file: what lstat(2) says of its
// owner, type and permissions.
type Stat struct {
	UID uint32
	// Mode is the file's type and permission bits as io/fs reports
	// them, with fs.ModeSticky for the sticky bit.
	Mode fs.FileMode
}

// Problems is the set of reasons a file is not believed; zero means it is.
type Problems uint8

// The reasons a file is not believed.
const (
	// Owner: owned by neither root nor the daemon's user.
	Owner Problems = 1 << iota
	GroupWrite
	OtherWrite
	// GroupRead and OtherRead concern secrets only.
	GroupRead
	OtherRead

	writes = GroupWrite | OtherWrite
	reads  = GroupRead | OtherRead
)

// Judge reports what is wrong with a file of the given role, owned and
// moded as st says, for a daemon running as uid. Files owned by root are
// always trusted: root can change any file anyway.
//
// A symlink is judged by its owner alone, whatever role it was asked for:
// its target is judged separately.
func Judge(st Stat, role Role, uid uint32) Problems {
	var p Problems
	if st.UID != 0 && st.UID != uid {
		p |= Owner
	}
	if role == Link || st.Mode&fs.ModeSymlink != 0 {
		return p
	}
	perm := st.Mode.Perm()
	if role != Parent || st.Mode&fs.ModeSticky == 0 {
		if perm&0o020 != 0 {
			p |= GroupWrite
		}
		if perm&0o002 != 0 {
			p |= OtherWrite
		}
	}
	if role == Secret {
		if perm&0o040 != 0 {
			p |= GroupRead
		}
		if perm&0o004 != 0 {
			p |= OtherRead
		}
	}
	return p
}

// Error says why a file is not believed, and how to fix it.
type Error struct {
	// Path is the file that was to be used.
	Path string
	// At is what is at fault: Path itself, or a directory or symlink on
	// the way to it.
	At string
	// As is the role At was judged in: Path's own role, Parent or Link.
	As   Role
	Stat Stat
	// Problems is never zero.
	Problems Problems
	// Owner is the name of Stat.UID's user, "" when it has none.
	Owner string
	// UID is the user the daemon runs as, and User its name ("" when it
	// has none).
	UID  uint32
	User string
}

// Error names the file, what is at fault, its owner and mode, why that is
// not trusted and the command that fixes it.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	b.WriteString(": not trusted: ")
	switch {
	case e.As == Link && e.At == e.Path:
		b.WriteString("it is a symlink ")
	case e.As == Link:
		fmt.Fprintf(&b, "symlink %s on the way to it is ", e.At)
	case e.At != e.Path:
		fmt.Fprintf(&b, "directory %s above it is ", e.At)
	}
	fmt.Fprintf(&b, "owned by %s, mode %s: ", describeUser(e.Owner, e.Stat.UID), octal(e.Stat.Mode))
	var why []string
	switch {
	case e.Problems&Owner == 0:
	case e.UID == 0:
		why = append(why, "its owner is not root, whom the daemon runs as")
	default:
		why = append(why, "its owner is neither root nor "+describeUser(e.User, e.UID)+", whom the daemon runs as")
	}
	if w := whom(e.Problems&writes, GroupWrite, OtherWrite); w != "" {
		if e.As == Parent {
			why = append(why, w+" can write to it, and so replace what it holds")
		} else {
			why = append(why, w+" can write to it")
		}
	}
	if r := whom(e.Problems&reads, GroupRead, OtherRead); r != "" {
		why = append(why, r+" can read this secret")
	}
	b.WriteString(strings.Join(why, "; "))
	b.WriteString("; fix: ")
	b.WriteString(e.Fix())
	return b.String()
}

// Fix returns the shell command that makes At trustworthy.
func (e *Error) Fix() string {
	at := shellQuote(e.At)
	var cmds []string
	if e.Problems&Owner != 0 {
		owner := "root:root"
		if (e.As == State || e.As == Secret) && e.UID != 0 {
			// The daemon writes these: root's would be trusted but
			// not writable.
			owner = e.User + ":"
			if e.User == "" {
				owner = strconv.FormatUint(uint64(e.UID), 10)
			}
		}
		if e.As == Link {
			cmds = append(cmds, "chown -h "+owner+" "+at)
		} else {
			cmds = append(cmds, "chown "+owner+" "+at)
		}
	}
	switch {
	case e.As == Secret && e.Problems&(reads|writes) != 0:
		cmds = append(cmds, "chmod 600 "+at)
	case e.Problems&writes != 0:
		cmds = append(cmds, "chmod go-w "+at)
	}
	return strings.Join(cmds, " && ")
}

// whom says who the two bits of p name: "group", "others" or both.
func whom(p, group, other Problems) string {
	switch p {
	case group:
		return "its group"
	case other:
		return "others"
	case group | other:
		return "its group and others"
	}
	return ""
}

func describeUser(name string, uid uint32) string {
	if name == "" {
		return "uid " + strconv.FormatUint(uint64(uid), 10)
	}
	return fmt.Sprintf("%s (uid %d)", name, uid)
}

// octal renders a mode as chmod(1) takes it, with the setuid, setgid and
// sticky bits: "0644", "1777".
func octal(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell, leaving plain paths as they are.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Split returns the problems joined in err (as Check joins them), one
// error each, so that a caller can give each its own context and line.
// A nil err has none.
func Split(err error) []error {
	u, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range u.Unwrap() {
		out = append(out, Split(e)...)
	}
	return out
}

// CheckExisting is CheckAs for a file that may not exist yet: a missing
// file below trusted directories is no problem here, and is left to
// whoever opens it to report.
func CheckExisting(path string, role Role, uid uint32) error {
	err := CheckAs(path, role, uid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
