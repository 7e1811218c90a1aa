package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/sealed"
	"portknock/sequence"
)

// sealedDoorTOML is a sealed door on base with key_file k.key.
func sealedDoorTOML(name string, base int, extra string) string {
	return "\n[[door]]\nname = \"" + name + "\"\nsealed = { base = " + strconv.Itoa(base) + ", key_file = \"k.key\"" + extra + " }\ncommand = \"true\"\n"
}

func TestSealedValid(t *testing.T) {
	src := `
[[door]]
name = "open"
sealed = { base = 40000, key_file = "keys/ssh.key" }
nft_set = "inet fw knock4"
nft_set_6 = "inet fw knock6"
cmd_timeout = "1h"

[[door]]
name = "close"
seq_timeout = 25
start_command = "close %IP%"

[door.sealed]
base = 40000
key_file = "keys/ssh.key"
id = 1
max_skew = "30s"
bind_source = false

[[door]]
name = "dns"
sealed = { base = 40000, proto = "UDP", key_file = "/etc/pk/dns.key", id = 255, max_skew = 600 }
command = "true"

[[door]]
name = "plain"
sequence = ["39999", "44096", "40000/udp"]
command = "true"
`
	c, err := Parse("/etc/pk/t.toml", []byte(src))
	if err == nil {
		t.Fatalf("40000/udp lies in dns's range, yet it parsed: %+v", c)
	}
	checkProblems(t, problemList(t, err), []string{
		`/etc/pk/t.toml:23: sealed: door "dns" shares base 40000 with door "open" (line 4) but not its key_file, proto`,
	})
	// On its own base, the UDP door is fine, and the plain door too.
	src = strings.Replace(src, "base = 40000, proto", "base = 44000, proto", 1)
	src = strings.Replace(src, `"40000/udp"`, `"43999/udp"`, 1)
	c, err = Parse("/etc/pk/t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, c)
	want := []Sealed{
		{Base: 40000, Proto: sequence.TCP, ID: 0, KeyFile: "/etc/pk/keys/ssh.key", MaxSkew: time.Minute, BindSource: true, Line: 4},
		{Base: 40000, Proto: sequence.TCP, ID: 1, KeyFile: "/etc/pk/keys/ssh.key", MaxSkew: 30 * time.Second, BindSource: false, Line: 16},
		{Base: 44000, Proto: sequence.UDP, ID: 255, KeyFile: "/etc/pk/dns.key", MaxSkew: 10 * time.Minute, BindSource: true, Line: 23},
	}
	for i, w := range want {
		if got := c.Doors[i].Sealed; got == nil || *got != w {
			t.Errorf("door %s: sealed %+v, want %+v", c.Doors[i].Name, got, w)
		}
	}
	if c.Doors[3].Sealed != nil {
		t.Error("a plain door is sealed")
	}
	if got := c.Warnings; len(got) != 1 || !strings.HasPrefix(got[0], `/etc/pk/t.toml:19: sealed.bind_source: door "close" accepts blocks bound to no address`) {
		t.Errorf("warnings %q; want one about close's bind_source", got)
	}
	ranges := c.SealedRanges()
	if len(ranges) != 2 || ranges[0].String() != "40000-44095/tcp" || !slices.Equal(ranges[0].Doors, []string{"open", "close"}) ||
		ranges[1].String() != "44000-48095/udp" || !slices.Equal(ranges[1].Doors, []string{"dns"}) {
		t.Errorf("SealedRanges = %+v", ranges)
	}
	md := matcherDoor(&c.Doors[1])
	if md.Sealed == nil || *md.Sealed != (sequence.SealedDoor{Base: 40000, Proto: sequence.TCP, ID: 1, MaxSkew: 30 * time.Second}) ||
		md.Timeout != 25*time.Second || len(md.Sequence) != 0 {
		t.Errorf("matcher door = %+v (sealed %+v)", md, md.Sealed)
	}
}

func TestSealedErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "sealed and a sequence",
			src:  "[[door]]\nname = \"a\"\nsealed = { base = 40000, key_file = \"k\" }\nsequence = [\"1\"]\ncommand = \"x\"\n",
			want: []string{`t.toml:4: sequence: door "a" is sealed (line 3): a sealed door has no sequence`},
		},
		{
			name: "sealed and one_time_sequences",
			src:  "[[door]]\nname = \"a\"\none_time_sequences = \"f\"\nsealed = { base = 40000, key_file = \"k\" }\ncommand = \"x\"\n",
			want: []string{`t.toml:3: one_time_sequences: door "a" is sealed (line 4): a sealed door has no one_time_sequences`},
		},
		{
			name: "not a table",
			src:  "[[door]]\nname = \"a\"\nsealed = 40000\ncommand = \"x\"\n",
			want: []string{`t.toml:3: sealed: want a table such as { base = 40000, key_file = "door.key" }, got integer 40000`},
		},
		{
			name: "missing base and key_file",
			src:  "[[door]]\nname = \"a\"\nsealed = { id = 1 }\ncommand = \"x\"\n",
			want: []string{
				`t.toml:3: sealed: missing base: the first of the door's 4096 ports`,
				`t.toml:3: sealed: missing key_file: the door's key, made by portknock keygen FILE`,
			},
		},
		{
			name: "bad values",
			src: `[[door]]
name = "a"
command = "x"
[door.sealed]
base = 61441
key_file = ""
proto = "icmp"
id = 256
max_skew = "500ms"
bind_source = "yes"
kee_file = "k"
`,
			want: []string{
				`t.toml:5: sealed.base: 61441 out of range: the door owns base..base+4095, so base must be 1-61440`,
				`t.toml:6: sealed.key_file: must not be empty`,
				`t.toml:7: sealed.proto: unknown protocol "icmp" (want tcp or udp)`,
				`t.toml:8: sealed.id: 256 out of range 0-255`,
				`t.toml:9: sealed.max_skew: 500ms out of range 1s-10m0s`,
				`t.toml:10: sealed.bind_source: want true or false, got string "yes"`,
				`t.toml:11: sealed.kee_file: unknown key in a sealed table (did you mean "key_file"?)`,
			},
		},
		{
			name: "more bad values",
			src:  "[[door]]\nname = \"a\"\ncommand = \"x\"\nsealed = { base = 0, key_file = 5, id = -1, max_skew = \"11m\" }\n",
			want: []string{
				`t.toml:4: sealed.base: 0 out of range`,
				`t.toml:4: sealed.id: -1 out of range 0-255`,
				`t.toml:4: sealed.key_file: want a string, got integer 5`,
				`t.toml:4: sealed.max_skew: 11m0s out of range 1s-10m0s`,
			},
		},
		{
			name: "a base too large for an int on 32 bits",
			src:  "[[door]]\nname = \"a\"\ncommand = \"x\"\nsealed = { base = 4294967296, key_file = \"k\" }\n",
			want: []string{`t.toml:4: sealed.base: 4294967296 out of range`},
		},
		{
			name: "doors sharing a base differ",
			src: sealedDoorTOML("a", 40000, "") +
				sealedDoorTOML("b", 40000, `, id = 1, proto = "udp"`) +
				sealedDoorTOML("c", 40000, `, id = 2`) + "seq_timeout = 5\ntcpflags = \"syn\"\ntarget = \"192.0.2.1\"\n" +
				"\n[[door]]\nname = \"d\"\nsealed = { base = 40000, key_file = \"other.key\", id = 3 }\ncommand = \"true\"\n" +
				sealedDoorTOML("e", 40000, `, id = 1`),
			want: []string{
				`t.toml:9: sealed: door "b" shares base 40000 with door "a" (line 4) but not its proto; doors on one base share key_file, proto, seq_timeout, tcpflags and target`,
				`t.toml:14: sealed: door "c" shares base 40000 with door "a" (line 4) but not its seq_timeout, tcpflags, target;`,
				`t.toml:22: sealed: door "d" shares base 40000 with door "a" (line 4) but not its key_file;`,
				`t.toml:27: sealed.id: door "e" has id 1 on base 40000, as door "b" (line 9) has; doors sharing a base need different ids`,
			},
		},
		{
			name: "the same key file, spelled differently, is the same",
			src:  sealedDoorTOML("a", 40000, "") + strings.Replace(sealedDoorTOML("b", 40000, ", id = 1"), `"k.key"`, `"./k.key"`, 1) + sealedDoorTOML("c", 40000, ""),
			want: []string{`t.toml:14: sealed.id: door "c" has id 0 on base 40000, as door "a" (line 4) has`},
		},
		{
			name: "overlapping ranges",
			src: sealedDoorTOML("a", 40000, "") + sealedDoorTOML("b", 44095, "") + sealedDoorTOML("c", 35905, "") +
				sealedDoorTOML("d", 44096, "") + sealedDoorTOML("e", 40000-4096, "") + sealedDoorTOML("u", 42000, `, proto = "udp"`),
			want: []string{
				`t.toml:9: sealed: range 44095-48190/tcp overlaps door "a"'s sealed range 40000-44095/tcp (line 4); sealed ranges may not overlap`,
				`t.toml:14: sealed: range 35905-40000/tcp overlaps door "a"'s sealed range 40000-44095/tcp (line 4)`,
				`t.toml:19: sealed: range 44096-48191/tcp overlaps door "b"'s sealed range 44095-48190/tcp (line 9)`,
				`t.toml:24: sealed: range 35904-39999/tcp overlaps door "c"'s sealed range 35905-40000/tcp (line 14)`,
			},
		},
		{
			name: "a plain door's knock in a sealed range",
			src: "[[door]]\nname = \"p\"\nsequence = [\"39999\", \"40000/udp\", \"44095\"]\ncommand = \"true\"\n" +
				sealedDoorTOML("a", 40000, ""),
			want: []string{`t.toml:8: sealed: range 40000-44095/tcp holds knock 44095/tcp of door "p" (line 3); a sealed range's ports are its own`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseAs("t.toml", []byte(tt.src), FormatTOML)
			if err == nil {
				t.Fatalf("no error; got %+v", c)
			}
			checkProblems(t, problemList(t, err), tt.want)
		})
	}
}

// writeKey writes a key file with mode.
func writeKey(t *testing.T, path string, mode fs.FileMode) sealed.Key {
	t.Helper()
	k, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := k.MarshalText()
	// A new file: one left read-only by an earlier case would refuse a
	// user other than root.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealedLoadKeys(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pk.toml")
	src := sealedDoorTOML("open", 40000, "") + sealedDoorTOML("close", 40000, ", id = 1") +
		strings.Replace(sealedDoorTOML("dns", 50000, `, proto = "udp"`), "k.key", "dns.key", 1)
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	key := writeKey(t, filepath.Join(dir, "k.key"), 0o600)
	dnsKey := writeKey(t, filepath.Join(dir, "dns.key"), 0o400)
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Doors[0].Sealed.Key != key || c.Doors[1].Sealed.Key != key || c.Doors[2].Sealed.Key != dnsKey {
		t.Error("keys not read from the files relative to the configuration")
	}
	// A config that loads builds a matcher.
	var md []sequence.Door
	for i := range c.Doors {
		md = append(md, matcherDoor(&c.Doors[i]))
	}
	if _, err := sequence.New(md, sequence.Options{Replay: nopReplay{}}); err != nil {
		t.Errorf("matcher: %v", err)
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T)
		want  []string
	}{
		{"group can read", func(t *testing.T) { writeKey(t, filepath.Join(dir, "k.key"), 0o640) }, []string{
			cfgPath + `:4: sealed.key_file: door "open": key file ` + filepath.Join(dir, "k.key") + `: mode 0640: its group or others can read the key, which must stay secret; fix: chmod 600 `,
		}},
		{"others can read", func(t *testing.T) { writeKey(t, filepath.Join(dir, "k.key"), 0o604) }, []string{
			cfgPath + `:4: sealed.key_file: door "open": key file ` + filepath.Join(dir, "k.key") + `: mode 0604`,
		}},
		{"missing", func(t *testing.T) { os.Remove(filepath.Join(dir, "k.key")) }, []string{
			cfgPath + `:4: sealed.key_file: door "open": key file: open ` + filepath.Join(dir, "k.key") + `: no such file or directory`,
		}},
		{"not a key", func(t *testing.T) { os.WriteFile(filepath.Join(dir, "k.key"), []byte("# key\nhunter2\n"), 0o600) }, []string{
			cfgPath + `:4: sealed.key_file: door "open": key file ` + filepath.Join(dir, "k.key") + `: sealed key: line 2: `,
		}},
		{"a directory", func(t *testing.T) {
			os.Remove(filepath.Join(dir, "k.key"))
			os.Mkdir(filepath.Join(dir, "k.key"), 0o700)
		}, []string{
			cfgPath + `:4: sealed.key_file: door "open": key file ` + filepath.Join(dir, "k.key") + `: not a regular file`,
		}},
		{"both bad", func(t *testing.T) {
			os.RemoveAll(filepath.Join(dir, "k.key"))
			writeKey(t, filepath.Join(dir, "dns.key"), 0o644)
		}, []string{
			cfgPath + `:4: sealed.key_file: door "open": key file: open `,
			cfgPath + `:14: sealed.key_file: door "dns": key file ` + filepath.Join(dir, "dns.key") + `: mode 0644`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeKey(t, filepath.Join(dir, "dns.key"), 0o600)
			os.RemoveAll(filepath.Join(dir, "k.key"))
			writeKey(t, filepath.Join(dir, "k.key"), 0o600)
			tc.setup(t)
			c, err := Load(cfgPath)
			if c != nil || err == nil {
				t.Fatalf("Load = %v, %v; want an error", c, err)
			}
			checkProblems(t, problemList(t, err), tc.want)
		})
	}
}

// TestSealedDoorIsForgeProof: an input with spoofable senders is warned
// about for every door but a sealed one that binds its blocks.
func TestSealedDoorIsForgeProof(t *testing.T) {
	src := `
[[input]]
type = "syslog"
listen = "192.0.2.1:514"
accept_spoofable = true
` + sealedDoorTOML("bound", 40000, "") + sealedDoorTOML("unbound", 50000, ", bind_source = false")
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var spoof []string
	for _, w := range c.Warnings {
		if strings.Contains(w, "accept_spoofable") {
			spoof = append(spoof, w)
		}
	}
	if len(spoof) != 1 || !strings.Contains(spoof[0], `door "unbound"`) {
		t.Errorf("spoofable warnings %q; want one, for the unbound door", spoof)
	}
}

func TestSealedMatcherDoorTarget(t *testing.T) {
	c, err := Parse("t.toml", []byte(sealedDoorTOML("a", 40000, "")+"target = \"192.0.2.1\"\ntcpflags = \"syn\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	md := matcherDoor(&c.Doors[0])
	if md.Target != netip.MustParseAddr("192.0.2.1") || md.Flags.Set != sequence.SYN {
		t.Errorf("matcher door = %+v", md)
	}
}

// TestSealedKeyTrust: a key file is believed only when root or the
// daemon's user owns it, and no one else may write to it or to a
// directory on the way; each problem is reported at its key_file's line.
func TestSealedKeyTrust(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "pk.toml")
	src := strings.ReplaceAll(sealedDoorTOML("open", 40000, "")+sealedDoorTOML("close", 40000, ", id = 1"), "k.key", "keys/k.key")
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(keys, "k.key")
	writeKey(t, key, 0o600)
	if _, err := Load(cfgPath); err != nil {
		t.Fatal(err)
	}
	// A directory others may write to: they could put their own key there.
	if err := os.Chmod(keys, 0o777); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath)
	if c != nil {
		t.Fatal("Load believed a key in a world-writable directory")
	}
	checkProblems(t, problemList(t, err), []string{
		cfgPath + `:4: sealed.key_file: door "open": ` + key + `: not trusted: directory ` + keys + ` above it is owned by`,
	})
	if err := os.Chmod(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	if c, err = ReadFile(cfgPath); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	if err := os.Chown(key, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err = CheckKeys(c, 0)
	checkProblems(t, problemList(t, err), []string{
		cfgPath + `:4: sealed.key_file: door "open": ` + key + `: not trusted: owned by`,
	})
	if err == nil || !strings.Contains(err.Error(), "fix: chown root:root "+key) {
		t.Errorf("CheckKeys: %v", err)
	}
	if _, err := Load(cfgPath); err == nil {
		t.Error("Load believed a key of another user")
	}
	if err := CheckKeys(c, 65534); err != nil {
		t.Errorf("nobody's key judged for a daemon running as nobody: %v", err)
	}
}
