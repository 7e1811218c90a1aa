package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"portknock/internal/netnstest"
)

// skipOrFail skips t, or fails it when the run must not skip
// (PORTKNOCK_INTEGRATION=1).
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if netnstest.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// run runs a command and returns its standard output, failing t with both
// outputs when it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// unitBody returns a unit file from its [Unit] line on: what systemd reads,
// without the header comment.
func unitBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("\n[Unit]\n"))
	if i < 0 {
		t.Fatalf("%s: no [Unit] section", path)
	}
	return string(b[i+1:])
}

// TestUnitIsTheExample keeps the packaged unit the example unit with the
// package's path, so that hardening added to one reaches the other.
func TestUnitIsTheExample(t *testing.T) {
	example := unitBody(t, filepath.Join("..", "examples", "portknockd.service"))
	packaged := unitBody(t, "portknockd.service")
	want := strings.ReplaceAll(example, "/usr/local/bin/portknockd", "/usr/sbin/portknockd")
	if packaged != want {
		t.Errorf("packaging/portknockd.service differs from examples/portknockd.service beyond the binary's path:\n--- packaged\n%s\n--- want\n%s", packaged, want)
	}
	for _, line := range []string{
		"ExecStart=/usr/sbin/portknockd -c /etc/portknockd.toml",
		"User=portknockd",
		"StateDirectory=portknockd",
		"AmbientCapabilities=CAP_NET_ADMIN",
	} {
		if !strings.Contains(packaged, "\n"+line+"\n") {
			t.Errorf("packaged unit lacks %q", line)
		}
	}
}

// TestDefaultConfig runs portknockd check on the configuration the package
// ships: it must pass, and open nothing (no set, no stop command, a start
// command that only echoes). The one warning it may give is that its door
// has no close: true, and the reminder an admin needs when replacing the
// echo with a command that opens something.
func TestDefaultConfig(t *testing.T) {
	bin := t.TempDir()
	run(t, nil, "go", "build", "-o", bin+string(filepath.Separator), "portknock/cmd/portknockd")
	// A copy the test's user owns, mode 0644, as the package installs it:
	// a checkout made with umask 002 would be refused, and rightly.
	data, err := os.ReadFile("portknockd.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "portknockd.toml")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "portknockd"), "check", "-c", cfg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("portknockd check of the shipped configuration: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, `warning: door "example" has no close`) {
			t.Errorf("portknockd check warns about the shipped configuration: %s", line)
		}
	}
	out := stdout.String()
	for _, want := range []string{
		"1 door(s), 1 input(s)",
		"input nflog:5 prefix \"knock\"",
		"start_command  exec: /bin/echo ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	for _, dangerous := range []string{"nft_set", "stop_command", "sh -c"} {
		if strings.Contains(out, dangerous) {
			t.Errorf("the shipped door has %s; it should open nothing:\n%s", dangerous, out)
		}
	}
}

// wantFiles are paths the package must hold, with their modes as
// dpkg -c prints them.
var wantFiles = map[string]string{
	"./usr/sbin/portknockd":                              "-rwxr-xr-x",
	"./usr/bin/portknock":                                "-rwxr-xr-x",
	"./etc/portknockd.toml":                              "-rw-r--r--",
	"./usr/lib/systemd/system/portknockd.service":        "-rw-r--r--",
	"./usr/lib/sysusers.d/portknockd.conf":               "-rw-r--r--",
	"./usr/share/man/man8/portknockd.8.gz":               "-rw-r--r--",
	"./usr/share/man/man1/portknock.1.gz":                "-rw-r--r--",
	"./usr/share/man/man5/portknockd.toml.5.gz":          "-rw-r--r--",
	"./usr/share/doc/portknock/README.md":                "-rw-r--r--",
	"./usr/share/doc/portknock/sealed.md":                "-rw-r--r--",
	"./usr/share/doc/portknock/examples/nflog.toml":      "-rw-r--r--",
	"./usr/share/doc/portknock/examples/rc.d/portknockd": "-rwxr-xr-x",
}

// TestDebInstall builds the amd64 packages with build-deb.sh, checks what
// the .deb (and, where rpm is installed, the .rpm) holds, installs the .deb
// into a scratch root with dpkg --root, its maintainer scripts run there,
// and runs the installed portknockd check on the installed configuration.
func TestDebInstall(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("builds and installs the amd64 .deb: needs linux/amd64")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "installing a .deb into a scratch root needs root")
	}
	for _, c := range []string{"dpkg", "dpkg-deb", "bash"} {
		if _, err := exec.LookPath(c); err != nil {
			skipOrFail(t, c+" is not on PATH")
		}
	}
	out := t.TempDir()
	const version = "1.2.3~test"
	log := run(t, []string{"ARCHS=amd64", "VERSION=" + version}, "bash", "build-deb.sh", out)
	t.Logf("build-deb.sh:\n%s", log)
	debs, _ := filepath.Glob(filepath.Join(out, "portknock_*_amd64.deb"))
	rpms, _ := filepath.Glob(filepath.Join(out, "portknock-*.x86_64.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("build-deb.sh made .debs %v and .rpms %v; want one of each", debs, rpms)
	}
	deb := debs[0]

	t.Run("contents", func(t *testing.T) {
		listing := run(t, nil, "dpkg-deb", "-c", deb)
		modes := make(map[string]string)
		for line := range strings.Lines(listing) {
			f := strings.Fields(line)
			if len(f) >= 6 {
				modes[f[len(f)-1]] = f[0]
				if f[1] != "root/root" {
					t.Errorf("%s is owned by %s, want root/root", f[len(f)-1], f[1])
				}
			}
		}
		for path, mode := range wantFiles {
			if got, ok := modes[path]; !ok {
				t.Errorf("package lacks %s", path)
			} else if got != mode {
				t.Errorf("%s has mode %s, want %s", path, got, mode)
			}
		}
		for path, mode := range modes {
			if strings.HasPrefix(mode, "-") && (mode[5] == 'w' || mode[8] == 'w') {
				t.Errorf("%s is writable by group or others: %s", path, mode)
			}
		}
		if got := strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", deb, "Version")); got != version+"-1" {
			t.Errorf("Version = %q, want %q", got, version+"-1")
		}
		ctrl := t.TempDir()
		run(t, nil, "dpkg-deb", "-e", deb, ctrl)
		conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
		if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/portknockd.toml" {
			t.Errorf("conffiles = %q (%v), want /etc/portknockd.toml", conffiles, err)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			if fi, err := os.Stat(filepath.Join(ctrl, s)); err != nil || fi.Mode()&0o111 == 0 {
				t.Errorf("maintainer script %s: %v", s, err)
			}
		}
	})

	t.Run("rpm", func(t *testing.T) {
		if _, err := exec.LookPath("rpm"); err != nil {
			skipOrFail(t, "rpm is not on PATH (Debian package rpm): the .rpm's contents were not checked")
		}
		files := run(t, nil, "rpm", "-qp", "--list", rpms[0])
		for path := range wantFiles {
			if !strings.Contains(files, strings.TrimPrefix(path, ".")+"\n") {
				t.Errorf(".rpm lacks %s", path)
			}
		}
		if got := strings.TrimSpace(run(t, nil, "rpm", "-qp", "--configfiles", rpms[0])); got != "/etc/portknockd.toml" {
			t.Errorf(".rpm config files = %q, want /etc/portknockd.toml", got)
		}
		if scripts := run(t, nil, "rpm", "-qp", "--scripts", rpms[0]); !strings.Contains(scripts, "systemd-sysusers") {
			t.Errorf(".rpm scripts do not create the user:\n%s", scripts)
		}
	})

	// A scratch root for dpkg: its database, and nothing else. The
	// maintainer scripts run on this system's shell (chrootless), with
	// DPKG_ROOT naming the root they must work in.
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return run(t, nil, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}
	dpkg("-i", deb)
	if status := dpkg("-s", "portknock"); !strings.Contains(status, "Status: install ok installed") {
		t.Fatalf("dpkg -s after install:\n%s", status)
	}

	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatalf("postinst made no user in the scratch root: %v", err)
	}
	m := regexp.MustCompile(`(?m)^portknockd:x:(\d+):\d+:[^:]*:/var/lib/portknockd:/usr/sbin/nologin$`).FindSubmatch(passwd)
	if m == nil {
		t.Fatalf("no system user portknockd in the scratch root's /etc/passwd:\n%s", passwd)
	}
	uid := string(m[1])

	daemon := filepath.Join(root, "usr", "sbin", "portknockd")
	cfg := filepath.Join(root, "etc", "portknockd.toml")
	if got := run(t, nil, daemon, "--version"); !strings.HasPrefix(got, "portknockd "+version) {
		t.Errorf("installed portknockd --version = %q, want the package's version %s", got, version)
	}
	if got := run(t, nil, filepath.Join(root, "usr", "bin", "portknock"), "--version"); !strings.HasPrefix(got, "portknock "+version) {
		t.Errorf("installed portknock --version = %q", got)
	}
	// As root, and as the package's user would see the files.
	for _, args := range [][]string{{"check", "-c", cfg}, {"check", "--user", uid, "-c", cfg}} {
		if got := run(t, nil, daemon, args...); !strings.Contains(got, "door example") {
			t.Errorf("portknockd %s:\n%s", strings.Join(args, " "), got)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		page := filepath.Join(root, "usr", "share", "man", "man8", "portknockd.8.gz")
		if got := run(t, []string{"MANWIDTH=80", "MAN_DISABLE_SECCOMP=1"}, "man", "-l", page); !strings.Contains(got, "port-knocking daemon") {
			t.Errorf("man -l %s:\n%s", page, got)
		}
	}

	dpkg("--purge", "portknock")
	for _, gone := range []string{"etc/portknockd.toml", "usr/sbin/portknockd", "usr/share/man/man8/portknockd.8.gz"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("after purge, %s is still there (%v)", gone, err)
		}
	}
}

// procdStubs stand in for OpenWrt's rc.common and procd functions: each
// prints its call, so that a test reads what the init script asked procd
// to run.
const procdStubs = `
procd_open_instance() { echo open; }
procd_set_param() { echo "param $*"; }
procd_close_instance() { echo close; }
procd_send_signal() { echo "signal $*"; }
logger() { echo "logger $*"; }
`

// TestOpenWrtInit runs examples/openwrt/portknockd.init's start and reload
// with procd's functions stubbed, under dash and under busybox's ash (the
// shell of OpenWrt) where installed, with the real portknockd checking a
// real configuration: the instance it asks for, the user and capabilities,
// the state directory it makes, and a refused configuration starting
// nothing.
func TestOpenWrtInit(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "the init script's state directory is chowned to the daemon's user: needs root")
	}
	init, err := filepath.Abs(filepath.Join("..", "examples", "openwrt", "portknockd.init"))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	run(t, nil, "go", "build", "-o", bin+string(filepath.Separator), "portknock/cmd/portknockd")
	prog := filepath.Join(bin, "portknockd")
	data, err := os.ReadFile("portknockd.toml")
	if err != nil {
		t.Fatal(err)
	}
	shells := [][]string{{"sh"}}
	if _, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, []string{"busybox", "sh"})
	}
	for _, shell := range shells {
		for _, tt := range []struct {
			name, user string
			cfgMode    os.FileMode
		}{
			{"own user", "nobody", 0o644},
			{"root", "no-such-user", 0o644},
			{"untrusted configuration", "nobody", 0o666},
		} {
			t.Run(strings.Join(shell, " ")+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				cfg := filepath.Join(dir, "portknockd.toml")
				if err := os.WriteFile(cfg, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(cfg, tt.cfgMode); err != nil {
					t.Fatal(err)
				}
				caps := filepath.Join(dir, "caps.json")
				if err := os.WriteFile(caps, []byte("{}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				state := filepath.Join(dir, "state")
				script := procdStubs + `. "$INIT"
PROG=$PK_PROG CONF=$PK_CONF STATE_DIR=$PK_STATE CAPABILITIES=$PK_CAPS DAEMON_USER=$PK_USER
start_service || echo "start failed"
reload_service || echo "reload failed"
`
				cmd := exec.Command(shell[0], append(shell[1:], "-c", script)...)
				cmd.Env = append(os.Environ(), "INIT="+init, "PK_PROG="+prog, "PK_CONF="+cfg, "PK_STATE="+state, "PK_CAPS="+caps, "PK_USER="+tt.user)
				outb, err := cmd.CombinedOutput()
				out := string(outb)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if tt.cfgMode&0o022 != 0 {
					for _, want := range []string{"not trusted", "start failed", "reload failed"} {
						if !strings.Contains(out, want) {
							t.Errorf("with a configuration others can write, output lacks %q:\n%s", want, out)
						}
					}
					if slices.Contains(strings.Split(out, "\n"), "open") || strings.Contains(out, "signal ") {
						t.Errorf("a refused configuration still started or signalled:\n%s", out)
					}
					return
				}
				want := []string{
					"param command " + prog + " -c " + cfg + " -s " + state,
					"param term_timeout 60",
					"signal portknockd * HUP",
				}
				user := "root"
				if tt.user == "nobody" {
					user = "nobody"
					want = append(want, "param user nobody", "param capabilities "+caps)
				} else {
					want = append(want, "logger -t portknockd no user no-such-user: running as root")
				}
				for _, w := range want {
					if !strings.Contains(out, w+"\n") {
						t.Errorf("output lacks %q:\n%s", w, out)
					}
				}
				if tt.user != "nobody" && strings.Contains(out, "param user") {
					t.Errorf("runs as a user that does not exist:\n%s", out)
				}
				fi, err := os.Stat(state)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o700 {
					t.Errorf("state directory mode %v, want 0700", fi.Mode().Perm())
				}
				owner := run(t, nil, "stat", "-c", "%U", state)
				if strings.TrimSpace(owner) != user {
					t.Errorf("state directory owned by %s, want %s", strings.TrimSpace(owner), user)
				}
			})
		}
	}
}
