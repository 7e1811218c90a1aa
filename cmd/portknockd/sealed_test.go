package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"portknock/replay"
	"portknock/sealed"
)

// sealedExample copies examples/sealed.toml to a directory of the test's,
// with its key file there, and returns the copy's path.
func sealedExample(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "sealed.toml"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := k.MarshalText()
	key := filepath.Join(dir, "ssh.key")
	if err := os.WriteFile(key, text, 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(string(data), "/etc/portknockd/ssh.key", key)
	// No nftables sets: check would look them up in the kernel.
	src = strings.Replace(src, `nft_set     = "inet portknock knock4"`, `start_command = "true"`, 1)
	src = strings.Replace(src, `nft_set_6   = "inet portknock knock6"`, ``, 1)
	src = strings.Replace(src, `state_dir = "/var/lib/portknockd"`, `state_dir = "`+filepath.Join(dir, "state")+`"`, 1)
	path := filepath.Join(dir, "portknockd.toml")
	if err := os.WriteFile(path, []byte(src+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineOf returns the number of the line off lines after the first one
// holding s in the file at path.
func lineOf(t *testing.T, path, s string, off int) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			return strconv.Itoa(i + 1 + off)
		}
	}
	t.Fatalf("%s lacks %q", path, s)
	return ""
}

func TestCheckSealedExample(t *testing.T) {
	path := sealedExample(t, `
[[door]]
name = "roaming"
sealed = { base = 50000, proto = "udp", key_file = "ssh.key", bind_source = false, max_skew = "15s" }
start_command = "true"

[[door]]
name = "plain"
sequence = ["7000", "9000/udp", "8000"]
start_command = "true"
`)
	code, out, errOut := runArgs(t, "", "check", "-c", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dir := filepath.Dir(path)
	for _, w := range []string{
		`door ssh\n  sealed +40000-44095/tcp, id 0, key ` + regexp.QuoteMeta(filepath.Join(dir, "ssh.key")) + `\n  max_skew +1m0s\n  bind_source +true`,
		`door ssh-close\n  sealed +40000-44095/tcp, id 1`,
		`door roaming\n  sealed +50000-54095/udp, id 0, .*\n  max_skew +15s\n  bind_source +false: unbound blocks accepted from anywhere`,
		`knock space \(log these, drop them\): 7000/tcp 8000/tcp 9000/udp 40000-44095/tcp \(sealed\) 50000-54095/udp \(sealed\)\n`,
		`replay cache: 0 used block\(s\) kept\n`,
	} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("check output lacks %s:\n%s", w, out)
		}
	}
	if !strings.Contains(errOut, `warning: `+path+`:`+lineOf(t, path, `name = "roaming"`, 1)+`: sealed.bind_source: door "roaming" accepts blocks bound to no address`) {
		t.Errorf("no warning for the unbound door:\n%s", errOut)
	}
}

func TestCheckSealedKeyReadable(t *testing.T) {
	path := sealedExample(t, "")
	key := filepath.Join(filepath.Dir(path), "ssh.key")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runArgs(t, "", "check", "-c", path)
	if code != 1 || !strings.Contains(errOut, path+":"+lineOf(t, path, `name = "ssh"`, 1)+": sealed.key_file: door \"ssh\": key file "+key+": mode 0644: its group or others can read the key, which must stay secret; fix: chmod 600 "+key) {
		t.Errorf("exit %d, %s; want the key refused at its line", code, errOut)
	}
}

func TestCheckSealedDamagedCache(t *testing.T) {
	path := sealedExample(t, "")
	state := filepath.Join(filepath.Dir(path), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, replay.FileName), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runArgs(t, "", "check", "-c", path)
	if !strings.Contains(out, "replay cache: 0 used block(s) kept, 1 damaged line(s): the daemon refuses every sealed knock for 20m0s after it reads them") {
		t.Errorf("check output:\n%s", out)
	}
}
