package filetrust

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	const us, them = 998, 1000
	dir := fs.ModeDir
	for _, tc := range []struct {
		name string
		st   Stat
		role Role
		uid  uint32
		want Problems
	}{
		{"root's config", Stat{0, 0o644}, Config, us, 0},
		{"root's config, daemon is root", Stat{0, 0o600}, Config, 0, 0},
		{"our config", Stat{us, 0o600}, Config, us, 0},
		{"another user's config", Stat{them, 0o644}, Config, us, Owner},
		{"our file, root daemon", Stat{us, 0o644}, Config, 0, Owner},
		{"group-writable", Stat{0, 0o664}, Config, us, GroupWrite},
		{"world-writable", Stat{0, 0o646}, Config, us, OtherWrite},
		{"0666 of another user", Stat{them, 0o666}, Config, us, Owner | GroupWrite | OtherWrite},
		{"group-readable config is fine", Stat{0, 0o640}, Config, us, 0},
		{"executable bits do not matter", Stat{0, 0o755}, Config, us, 0},
		{"setuid bits do not matter", Stat{0, 0o755 | fs.ModeSetuid | fs.ModeSetgid}, Config, us, 0},

		{"state_dir 0700 of ours", Stat{us, dir | 0o700}, State, us, 0},
		{"state_dir 0755 of root", Stat{0, dir | 0o755}, State, us, 0},
		{"state_dir of another user", Stat{them, dir | 0o700}, State, us, Owner},
		{"state_dir 0770", Stat{us, dir | 0o770}, State, us, GroupWrite},
		// Sticky lets others add files to state_dir: not good enough
		// for the directory the daemon reads everything from.
		{"sticky state_dir 1777", Stat{0, dir | fs.ModeSticky | 0o777}, State, us, GroupWrite | OtherWrite},
		{"FIFO of ours", Stat{us, fs.ModeNamedPipe | 0o600}, State, us, 0},
		{"FIFO anyone can write", Stat{us, fs.ModeNamedPipe | 0o622}, State, us, GroupWrite | OtherWrite},

		{"key 0600", Stat{us, 0o600}, Secret, us, 0},
		{"key 0400 of root", Stat{0, 0o400}, Secret, us, 0},
		{"key 0640", Stat{us, 0o640}, Secret, us, GroupRead},
		{"key 0604", Stat{us, 0o604}, Secret, us, OtherRead},
		{"key 0666 of another user", Stat{them, 0o666}, Secret, us, Owner | GroupWrite | OtherWrite | GroupRead | OtherRead},

		{"parent 0755 of root", Stat{0, dir | 0o755}, Parent, us, 0},
		{"parent of ours", Stat{us, dir | 0o700}, Parent, us, 0},
		{"/tmp: sticky 1777 of root", Stat{0, dir | fs.ModeSticky | 0o777}, Parent, us, 0},
		{"parent 0777", Stat{0, dir | 0o777}, Parent, us, GroupWrite | OtherWrite},
		{"parent 0775", Stat{0, dir | 0o775}, Parent, us, GroupWrite},
		{"parent of another user", Stat{them, dir | 0o755}, Parent, us, Owner},
		// A sticky directory someone else owns is theirs to rename in.
		{"sticky parent of another user", Stat{them, dir | fs.ModeSticky | 0o777}, Parent, us, Owner},
		{"readable parent is fine", Stat{0, dir | 0o755}, Parent, 0, 0},

		{"root's symlink", Stat{0, fs.ModeSymlink | 0o777}, Link, us, 0},
		{"our symlink", Stat{us, fs.ModeSymlink | 0o777}, Link, us, 0},
		{"another user's symlink", Stat{them, fs.ModeSymlink | 0o777}, Link, us, Owner},
		// A symlink's mode means nothing, whatever it was asked as.
		{"symlink judged as config", Stat{0, fs.ModeSymlink | 0o777}, Config, us, 0},
		{"symlink judged as secret", Stat{them, fs.ModeSymlink | 0o777}, Secret, us, Owner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Judge(tc.st, tc.role, tc.uid); got != tc.want {
				t.Errorf("Judge(%+v, %v, %d) = %05b, want %05b", tc.st, tc.role, tc.uid, got, tc.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  Error
		want []string // in this order
		fix  string
	}{
		{
			name: "config of nobody, 0666",
			err: Error{Path: "/etc/portknockd.toml", At: "/etc/portknockd.toml", As: Config,
				Stat: Stat{65534, 0o666}, Problems: Owner | GroupWrite | OtherWrite, Owner: "nobody", UID: 0, User: "root"},
			want: []string{"/etc/portknockd.toml: not trusted: owned by nobody (uid 65534), mode 0666: ",
				"its owner is not root, whom the daemon runs as",
				"its group and others can write to it"},
			fix: "chown root:root /etc/portknockd.toml && chmod go-w /etc/portknockd.toml",
		},
		{
			name: "state_dir of another user, daemon unprivileged",
			err: Error{Path: "/var/lib/portknockd", At: "/var/lib/portknockd", As: State,
				Stat: Stat{1000, fs.ModeDir | 0o700}, Problems: Owner, Owner: "alice", UID: 998, User: "portknockd"},
			want: []string{"/var/lib/portknockd: not trusted: owned by alice (uid 1000), mode 0700: ",
				"neither root nor portknockd (uid 998)"},
			fix: "chown portknockd: /var/lib/portknockd",
		},
		{
			name: "state file of a user without a name, daemon without one",
			err: Error{Path: "/s/closes.journal", At: "/s/closes.journal", As: State,
				Stat: Stat{4242, 0o600}, Problems: Owner, UID: 4343},
			want: []string{"owned by uid 4242, mode 0600", "neither root nor uid 4343"},
			fix:  "chown 4343 /s/closes.journal",
		},
		{
			name: "state file, root daemon",
			err: Error{Path: "/s/closes.journal", At: "/s/closes.journal", As: State,
				Stat: Stat{65534, 0o620}, Problems: Owner | GroupWrite, Owner: "nobody", UID: 0, User: "root"},
			want: []string{"its group can write to it"},
			fix:  "chown root:root /s/closes.journal && chmod go-w /s/closes.journal",
		},
		{
			name: "parent directory writable by all",
			err: Error{Path: "/srv/pk/portknockd.toml", At: "/srv/pk", As: Parent,
				Stat: Stat{0, fs.ModeDir | 0o777}, Problems: GroupWrite | OtherWrite, Owner: "root", UID: 0, User: "root"},
			want: []string{"/srv/pk/portknockd.toml: not trusted: directory /srv/pk above it is owned by root (uid 0), mode 0777: ",
				"its group and others can write to it, and so replace what it holds"},
			fix: "chmod go-w /srv/pk",
		},
		{
			name: "parent directory of another user, unprivileged daemon",
			err: Error{Path: "/srv/pk/state", At: "/srv/pk", As: Parent,
				Stat: Stat{1000, fs.ModeDir | 0o755}, Problems: Owner, Owner: "alice", UID: 998, User: "portknockd"},
			want: []string{"directory /srv/pk above it is owned by alice (uid 1000)"},
			// Directories above are root's, even when the daemon is not.
			fix: "chown root:root /srv/pk",
		},
		{
			name: "planted symlink",
			err: Error{Path: "/tmp/pk/x.toml", At: "/tmp/pk", As: Link,
				Stat: Stat{1000, fs.ModeSymlink | 0o777}, Problems: Owner, Owner: "mallory", UID: 0, User: "root"},
			want: []string{"symlink /tmp/pk on the way to it is owned by mallory (uid 1000), mode 0777: "},
			fix:  "chown -h root:root /tmp/pk",
		},
		{
			name: "the file itself a planted symlink",
			err: Error{Path: "/tmp/x.toml", At: "/tmp/x.toml", As: Link,
				Stat: Stat{1000, fs.ModeSymlink | 0o777}, Problems: Owner, Owner: "mallory", UID: 0, User: "root"},
			want: []string{"/tmp/x.toml: not trusted: it is a symlink owned by mallory"},
			fix:  "chown -h root:root /tmp/x.toml",
		},
		{
			name: "readable key",
			err: Error{Path: "/etc/portknockd/door.key", At: "/etc/portknockd/door.key", As: Secret,
				Stat: Stat{998, 0o644}, Problems: GroupRead | OtherRead, Owner: "portknockd", UID: 998, User: "portknockd"},
			want: []string{"mode 0644: its group and others can read this secret"},
			fix:  "chmod 600 /etc/portknockd/door.key",
		},
		{
			name: "sticky mode shown",
			err: Error{Path: "/tmp/s", At: "/tmp/s", As: State,
				Stat: Stat{0, fs.ModeDir | fs.ModeSticky | 0o777}, Problems: GroupWrite | OtherWrite, Owner: "root", UID: 0, User: "root"},
			want: []string{"mode 1777"},
			fix:  "chmod go-w /tmp/s",
		},
		{
			name: "path quoted for the shell",
			err: Error{Path: "/etc/my conf's.toml", At: "/etc/my conf's.toml", As: Config,
				Stat: Stat{0, 0o666}, Problems: GroupWrite | OtherWrite, Owner: "root", UID: 0, User: "root"},
			fix: `chmod go-w '/etc/my conf'\''s.toml'`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Fix(); got != tc.fix {
				t.Errorf("Fix() = %q, want %q", got, tc.fix)
			}
			msg := tc.err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("message lacks %q (in order):\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasSuffix(msg, "; fix: "+tc.fix) {
				t.Errorf("message does not end in the fix %q:\n%s", tc.fix, msg)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/portknockd.toml": "/etc/portknockd.toml",
		"/a b":                 "'/a b'",
		"/x;rm -rf /":          "'/x;rm -rf /'",
		"it's":                 `'it'\''s'`,
		"":                     "''",
		"$HOME":                "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	a, b, c := &Error{Path: "a"}, &Error{Path: "b"}, &Error{Path: "c"}
	got := Split(errors.Join(a, errors.Join(b, nil, c)))
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Errorf("Split of nested joins = %v", got)
	}
	if got := Split(a); len(got) != 1 || got[0] != a {
		t.Errorf("Split of one error = %v", got)
	}
	if got := Split(nil); got != nil {
		t.Errorf("Split(nil) = %v", got)
	}
}
