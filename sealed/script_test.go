package sealed

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/internal/netnstest"
)

// scriptPath is the independent client in POSIX sh.
const scriptPath = "../examples/sealed-knock.sh"

// scriptShell is a shell to run the script with and the directory holding
// the only commands the script may use: the script must need nothing else.
type scriptShell struct {
	name string
	sh   string // the shell's path inside bin
	bin  string
}

// scriptShells returns dash (Debian's /bin/sh, else /bin/sh) with the
// system's tools, and busybox sh with busybox's own tools when busybox is
// installed. It skips the test without openssl, or fails it when
// PORTKNOCK_INTEGRATION=1 says the run must not skip.
func scriptShells(t *testing.T) []scriptShell {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		msg := "openssl(1) is not installed (Debian: apt-get install openssl); examples/sealed-knock.sh needs it"
		if netnstest.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tools := []string{"awk", "od", "tr", "ls"}
	link := func(dir, name, target string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}

	var shells []scriptShell
	sh, err := exec.LookPath("dash")
	name := "dash"
	if err != nil {
		sh, name = "/bin/sh", "sh"
	}
	dir := t.TempDir()
	link(dir, "sh", sh)
	link(dir, "openssl", openssl)
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s not found: the script needs it and POSIX systems have it", tool)
		}
		link(dir, tool, p)
	}
	shells = append(shells, scriptShell{name, filepath.Join(dir, "sh"), dir})

	if bb, err := exec.LookPath("busybox"); err == nil {
		dir := t.TempDir()
		link(dir, "openssl", openssl)
		for _, tool := range append(tools, "sh") {
			link(dir, tool, bb)
		}
		shells = append(shells, scriptShell{"busybox", filepath.Join(dir, "sh"), dir})
	} else {
		t.Log("busybox not installed: the script is run with " + name + " only")
	}
	return shells
}

// runScript runs the script in dry-run mode and returns its ports.
func runScript(t *testing.T, sh scriptShell, keyFile string, env []string, args ...string) ([Knocks]uint16, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh.sh, append([]string{scriptPath, keyFile}, args...)...)
	cmd.Env = append([]string{"PATH=" + sh.bin, "DRY_RUN=1"}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return [Knocks]uint16{}, fmt.Errorf("%s %s: %v: %s", sh.name, strings.Join(args, " "), err, stderr.String())
	}
	var ports [Knocks]uint16
	lines := strings.Fields(string(out))
	if len(lines) != Knocks {
		return ports, fmt.Errorf("%s printed %d ports, want %d: %q", sh.name, len(lines), Knocks, out)
	}
	for i, l := range lines {
		p, err := strconv.ParseUint(l, 10, 16)
		if err != nil {
			return ports, fmt.Errorf("%s printed %q: %v", sh.name, out, err)
		}
		ports[i] = uint16(p)
	}
	return ports, nil
}

func writeKeyFile(t *testing.T, k Key, mode os.FileMode) string {
	t.Helper()
	text, err := k.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "door.key")
	if err := os.WriteFile(p, text, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

// TestScriptVectors runs examples/sealed-knock.sh, which implements the
// format with openssl(1) alone, on the test vectors.
func TestScriptVectors(t *testing.T) {
	shells := scriptShells(t)
	keyFile := writeKeyFile(t, vectorKey(), 0o600)
	for _, sh := range shells {
		for _, v := range vectors {
			t.Run(sh.name+"/"+v.name, func(t *testing.T) {
				source := v.source
				if source == "" {
					source = "none"
				}
				env := []string{"NOW=" + strconv.FormatInt(v.time, 10), "NONCE=" + v.nonce, "ID=" + strconv.Itoa(int(v.id))}
				got, err := runScript(t, sh, keyFile, env, "192.0.2.100", strconv.Itoa(int(v.base)), source)
				if err != nil {
					t.Fatal(err)
				}
				if got != v.ports {
					t.Fatalf("script ports %v, want %v", got, v.ports)
				}
			})
		}
	}
}

// TestScriptRandom compares the script with Sealer on random keys, times,
// nonces, ids, bases and sources, the sources spelled in the ways people
// write them.
func TestScriptRandom(t *testing.T) {
	shells := scriptShells(t)
	r := rand.New(rand.NewPCG(7, 11))
	for n := range 16 {
		var k Key
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		keyFile := writeKeyFile(t, k, 0o400)
		now := int64(r.Uint32()) + int64(r.IntN(2))<<32 // past 2106 too
		nonce := [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		id := byte(r.Uint32())
		base := uint16(1 + r.IntN(MaxBase))

		var b16 [16]byte
		for i := range b16 {
			b16[i] = byte(r.Uint32())
		}
		v6 := netip.AddrFrom16(b16)
		v4 := netip.AddrFrom4([4]byte(b16[:4]))
		sources := []string{
			v4.String(),
			"::ffff:" + v4.String(),
			"::FFFF:" + strings.ToUpper(netip.AddrFrom16(v4.As16()).StringExpanded()[30:]),
			v6.String(),
			v6.StringExpanded(),
			strings.ToUpper(v6.String()) + "%eth0",
			"2001:db8::" + strconv.FormatUint(uint64(r.Uint32()&0xffff), 16),
			"none",
		}
		sh := shells[n/8%len(shells)] // each spelling through each shell
		src := sources[n%len(sources)]
		t.Run(fmt.Sprintf("%s/%d/%s", sh.name, n, src), func(t *testing.T) {
			var addr netip.Addr
			if src != "none" {
				addr = netip.MustParseAddr(src)
			}
			want := Ports(base, NewSealer(k).Seal(time.Unix(now, 0), nonce, addr, id))
			env := []string{"NOW=" + strconv.FormatInt(now, 10), fmt.Sprintf("NONCE=%X", nonce), fmt.Sprintf("ID=%d", id)}
			got, err := runScript(t, sh, keyFile, env, "2001:db8::100", strconv.Itoa(int(base)), src)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("key %s time %d nonce %x id %d base %d source %s: script ports %v, Go ports %v",
					base64.StdEncoding.EncodeToString(k[:]), now, nonce, id, base, src, got, want)
			}
		})
	}
}

// TestScriptRefuses checks that the script stops, with a message and
// status 1 or 2, where the daemon would not accept what it would send.
func TestScriptRefuses(t *testing.T) {
	sh := scriptShells(t)[0]
	good := writeKeyFile(t, vectorKey(), 0o600)
	open := writeKeyFile(t, vectorKey(), 0o644)
	dir := t.TempDir()
	writeRaw := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	twoKeys := writeRaw("two.key", vectorKeyFile+"\n"+vectorKeyFile+"\n")
	shortKey := writeRaw("short.key", base64.StdEncoding.EncodeToString(make([]byte, 31))+"\n")
	zeroKey := writeRaw("zero.key", base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n")

	for _, tt := range []struct {
		name    string
		key     string
		env     []string
		args    []string
		wantErr string
	}{
		{"key readable by others", open, nil, []string{"::1", "20000", "none"}, "readable by group or others"},
		{"two keys", twoKeys, nil, []string{"::1", "20000", "none"}, "want one key line, found 2"},
		{"short key", shortKey, nil, []string{"::1", "20000", "none"}, "not 32 bytes"},
		{"zero key", zeroKey, nil, []string{"::1", "20000", "none"}, "all zero"},
		{"base 0", good, nil, []string{"::1", "0", "none"}, "BASE must be 1..61440"},
		{"base too high", good, nil, []string{"::1", "61441", "none"}, "out of range"},
		{"bad source", good, nil, []string{"::1", "20000", "192.0.2.256"}, "not an address"},
		{"two double colons", good, nil, []string{"::1", "20000", "1::2::3"}, "not an address"},
		{"leading zero octet", good, nil, []string{"::1", "20000", "192.0.2.01"}, "not an address"},
		{"bad id", good, []string{"ID=256"}, []string{"::1", "20000", "none"}, "ID 256 is out of range"},
		{"bad nonce", good, []string{"NONCE=0123456"}, []string{"::1", "20000", "none"}, "NONCE must be 8 hex digits"},
		{"bad proto", good, []string{"PROTO=icmp"}, []string{"::1", "20000", "none"}, "PROTO must be tcp or udp"},
		{"usage", good, nil, []string{"::1"}, "usage:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runScript(t, sh, tt.key, append([]string{"NOW=1767225600"}, tt.env...), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}
