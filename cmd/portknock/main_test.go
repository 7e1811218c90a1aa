package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"portknock/internal/keyfile"
	"portknock/knock"
	"portknock/sealed"
	"portknock/sequence"
)

type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := r[network+" "+host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// recorder stands for the network and the clock: it notes knocks and
// waits as one log, so their interleaving is checked too.
type recorder struct {
	log    []string
	failAt int
}

func (r *recorder) Send(_ context.Context, dst netip.AddrPort, proto sequence.Proto) error {
	r.log = append(r.log, fmt.Sprintf("%s %s", proto, dst))
	if len(r.log) == r.failAt {
		return syscall.ENETUNREACH
	}
	return nil
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.log = append(r.log, "wait "+d.String())
	return nil
}

func TestRun(t *testing.T) {
	res := fakeResolver{
		"ip host.example":  {netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("192.0.2.7")},
		"ip4 host.example": {netip.MustParseAddr("192.0.2.7")},
		"ip6 host.example": {netip.MustParseAddr("2001:db8::7")},
	}
	tests := []struct {
		name       string
		args       string
		failAt     int
		wantCode   int
		wantSent   string // the recorder's log, joined with "; "
		wantStdout string // substring
		wantStderr string // substring; "" means stderr must be empty
	}{
		{name: "tcp by default", args: "192.0.2.1 7000 8000 9000", wantSent: "tcp 192.0.2.1:7000; tcp 192.0.2.1:8000; tcp 192.0.2.1:9000"},
		{name: "mixed protocols", args: "192.0.2.1 7000:udp 8000/udp 9000:tcp", wantSent: "udp 192.0.2.1:7000; udp 192.0.2.1:8000; tcp 192.0.2.1:9000"},
		{name: "-u", args: "-u 192.0.2.1 7000 8000:tcp", wantSent: "udp 192.0.2.1:7000; tcp 192.0.2.1:8000"},
		{name: "--udp", args: "--udp 192.0.2.1 7000", wantSent: "udp 192.0.2.1:7000"},
		{name: "-d waits between knocks", args: "-d 100 192.0.2.1 1 2 3", wantSent: "tcp 192.0.2.1:1; wait 100ms; tcp 192.0.2.1:2; wait 100ms; tcp 192.0.2.1:3"},
		{name: "--delay=", args: "--delay=5 192.0.2.1 1 2", wantSent: "tcp 192.0.2.1:1; wait 5ms; tcp 192.0.2.1:2"},
		{name: "-d0 does not wait", args: "-d0 192.0.2.1 1 2", wantSent: "tcp 192.0.2.1:1; tcp 192.0.2.1:2"},
		{name: "name takes the first answer", args: "host.example 1 2:udp", wantSent: "tcp [2001:db8::7]:1; udp [2001:db8::7]:2"},
		{name: "-4", args: "-4 host.example 1 2:udp", wantSent: "tcp 192.0.2.7:1; udp 192.0.2.7:2"},
		{name: "--ipv6", args: "--ipv6 host.example 1", wantSent: "tcp [2001:db8::7]:1"},
		{name: "flags after the host", args: "192.0.2.1 1 -u 2", wantSent: "udp 192.0.2.1:1; udp 192.0.2.1:2"},
		{
			name: "-v prints each knock", args: "-v -u 192.0.2.1 7000 8000:tcp",
			wantSent:   "udp 192.0.2.1:7000; tcp 192.0.2.1:8000",
			wantStdout: "hitting udp 192.0.2.1:7000\nhitting tcp 192.0.2.1:8000\n",
		},
		{name: "-h", args: "-h", wantStdout: "Usage: portknock [options] host port[:proto] ..."},
		{name: "--help lists the options", args: "--help 192.0.2.1 1", wantStdout: "-6, --ipv6"},
		{name: "-V", args: "-V", wantStdout: "portknock "},
		{name: "no arguments", args: "", wantCode: 2, wantStderr: "portknock: missing host and knocks"},
		{name: "host without knocks", args: "192.0.2.1", wantCode: 2, wantStderr: `no knocks given for host "192.0.2.1"`},
		{name: "unknown flag", args: "-x 192.0.2.1 1", wantCode: 2, wantStderr: "unknown shorthand flag: 'x'"},
		{name: "delay not a number", args: "-d soon 192.0.2.1 1", wantCode: 2, wantStderr: `invalid argument "soon"`},
		{name: "negative delay", args: "-d -5 192.0.2.1 1", wantCode: 2, wantStderr: "negative"},
		{name: "port 0", args: "192.0.2.1 7000 0", wantCode: 2, wantStderr: `bad knock "0": port must be 1-65535`},
		{name: "port too big", args: "192.0.2.1 65536", wantCode: 2, wantStderr: "port must be 1-65535"},
		{name: "bad protocol", args: "192.0.2.1 7000:icmp", wantCode: 2, wantStderr: "unknown protocol"},
		{name: "-4 and -6", args: "-4 -6 host.example 1", wantCode: 2, wantStderr: "-4 and -6 cannot be used together"},
		{name: "-6 with an IPv4 literal", args: "-6 192.0.2.1 1", wantCode: 2, wantStderr: "192.0.2.1 is not an IPv6 address"},
		{name: "unresolvable host", args: "nx.example 1", wantCode: 1, wantStderr: "portknock: cannot resolve nx.example: no such host"},
		{
			name: "send failure stops and says which knock", args: "192.0.2.1 1 2:udp 3", failAt: 2, wantCode: 1,
			wantSent:   "tcp 192.0.2.1:1; udp 192.0.2.1:2",
			wantStderr: "portknock: knock 2 of 3 (udp 192.0.2.1:2): network is unreachable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{failAt: tt.failAt}
			r := knock.Runner{Resolver: res, Sender: rec, Sleep: rec.sleep}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), strings.Fields(tt.args), &stdout, &stderr, r)
			if code != tt.wantCode {
				t.Errorf("exit status %d; want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if got := strings.Join(rec.log, "; "); got != tt.wantSent {
				t.Errorf("sent %q; want %q", got, tt.wantSent)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q; want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if tt.wantStderr == "" && stderr.Len() > 0 {
				t.Errorf("stderr %q; want it empty", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q; want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode == 2 && !strings.Contains(stderr.String(), "Usage: portknock") {
				t.Errorf("usage error without a usage line: %q", stderr.String())
			}
		})
	}
}

type fakeRouter map[netip.Addr]netip.Addr

func (r fakeRouter) LocalAddr(_ context.Context, dst netip.AddrPort) (netip.Addr, error) {
	if a, ok := r[dst.Addr()]; ok {
		return a, nil
	}
	return netip.Addr{}, syscall.ENETUNREACH
}

// writeKey writes k as a key file with the given mode into dir.
func writeKey(t *testing.T, dir, name string, k sealed.Key, mode os.FileMode) string {
	t.Helper()
	text, _ := k.MarshalText()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunSealed runs sealed knocks from the command line with the clock
// and nonce injected, and checks that the ports sent are those of the block
// Sealer.Seal makes for the expected source, door and protocol.
func TestRunSealed(t *testing.T) {
	dir := t.TempDir()
	key, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeKey(t, dir, "door.key", key, 0o600)
	openKey := writeKey(t, dir, "open.key", key, 0o640)
	badKey := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(badKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := fakeResolver{
		"ip host.example":  {netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("192.0.2.7")},
		"ip4 host.example": {netip.MustParseAddr("192.0.2.7")},
	}
	router := fakeRouter{
		netip.MustParseAddr("192.0.2.7"):   netip.MustParseAddr("192.0.2.50"),
		netip.MustParseAddr("2001:db8::7"): netip.MustParseAddr("2001:db8::50"),
		netip.MustParseAddr("8.8.8.8"):     netip.MustParseAddr("10.1.2.3"),
	}
	now := time.Unix(1767225600, 0)
	nonce := [4]byte{0xde, 0xad, 0xbe, 0xef}
	tests := []struct {
		name       string
		args       string // KEY stands for the key file
		wantDst    string // the address every knock goes to
		wantSrc    string // the block's source; "" unbound
		wantID     byte
		wantProto  sequence.Proto
		wantWaits  int
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "defaults", args: "--key KEY 192.0.2.7 40000", wantDst: "192.0.2.7", wantSrc: "192.0.2.50", wantProto: sequence.TCP},
		{name: "--key=", args: "--key=KEY 192.0.2.7 40000", wantDst: "192.0.2.7", wantSrc: "192.0.2.50", wantProto: sequence.TCP},
		{name: "name resolved once, source toward that address", args: "--key KEY host.example 1", wantDst: "2001:db8::7", wantSrc: "2001:db8::50", wantProto: sequence.TCP},
		{name: "-4", args: "-4 --key KEY host.example 1", wantDst: "192.0.2.7", wantSrc: "192.0.2.50", wantProto: sequence.TCP},
		{name: "-u, --id, -d", args: "-u --id 9 -d 30 --key KEY 192.0.2.7 61440", wantDst: "192.0.2.7", wantSrc: "192.0.2.50", wantID: 9, wantProto: sequence.UDP, wantWaits: 15},
		{name: "--source", args: "--source 203.0.113.9 --key KEY 192.0.2.7 40000", wantDst: "192.0.2.7", wantSrc: "203.0.113.9", wantProto: sequence.TCP},
		{name: "--source none", args: "--source=none --key KEY 192.0.2.7 40000", wantDst: "192.0.2.7", wantProto: sequence.TCP},
		{
			name: "-v", args: "-v --key KEY 192.0.2.7 40000", wantDst: "192.0.2.7", wantSrc: "192.0.2.50", wantProto: sequence.TCP,
			wantStdout: "sealed block for door id 0: source 192.0.2.50 (this machine's address toward 192.0.2.7), time 1767225600 (2026-01-01T00:00:00Z), nonce deadbeef\nhitting tcp 192.0.2.7:",
		},
		{
			name: "NAT note", args: "--key KEY 8.8.8.8 40000", wantDst: "8.8.8.8", wantSrc: "10.1.2.3", wantProto: sequence.TCP,
			wantStderr: "portknock: note: this machine's address 10.1.2.3 is private and 8.8.8.8 is not",
		},
		{name: "no route", args: "--key KEY 198.51.100.1 40000", wantCode: 1, wantStderr: "portknock: cannot tell this machine's address toward 198.51.100.1: network is unreachable; give it with --source"},
		{name: "key readable by group", args: "--key " + openKey + " 192.0.2.7 40000", wantCode: 1, wantStderr: "portknock: key file " + openKey + ": mode 0640: its group or others can read the key, which must stay secret; fix: chmod 600 " + openKey},
		{name: "not a key", args: "--key " + badKey + " 192.0.2.7 40000", wantCode: 1, wantStderr: "portknock: key file " + badKey + ": sealed key: line 1"},
		{name: "missing key", args: "--key " + dir + "/nope 192.0.2.7 40000", wantCode: 1, wantStderr: "no such file"},
		{name: "usage before key", args: "--key " + dir + "/nope 192.0.2.7 40000:udp", wantCode: 2, wantStderr: "chosen with -u"},
		{name: "no base", args: "--key KEY 192.0.2.7", wantCode: 2, wantStderr: `no BASE given for host "192.0.2.7"`},
		{name: "base too high", args: "--key KEY 192.0.2.7 65000", wantCode: 2, wantStderr: `bad BASE "65000": want the door's base port, 1-61440`},
		{name: "bad id", args: "--id 300 --key KEY 192.0.2.7 40000", wantCode: 2, wantStderr: `bad --id "300"`},
		{name: "bad source", args: "--source me --key KEY 192.0.2.7 40000", wantCode: 2, wantStderr: `bad --source "me"`},
		{name: "--source without --key", args: "--source none 192.0.2.7 40000", wantCode: 2, wantStderr: "need --key"},
		{name: "--key without a value", args: "192.0.2.7 40000 --key", wantCode: 2, wantStderr: "flag needs an argument: --key"},
		{name: "--key empty", args: "--key= 192.0.2.7 40000", wantCode: 2, wantStderr: "--key needs a key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			r := knock.Runner{
				Resolver: res, Sender: rec, Sleep: rec.sleep, Router: router,
				Now: func() time.Time { return now }, Rand: bytes.NewReader(nonce[:]),
			}
			var stdout, stderr bytes.Buffer
			args := strings.Fields(strings.ReplaceAll(tt.args, "KEY", keyFile))
			code := run(context.Background(), args, &stdout, &stderr, r)
			if code != tt.wantCode {
				t.Fatalf("exit status %d; want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || tt.wantStderr == "" && stderr.Len() > 0 {
				t.Errorf("stderr %q; want %q", stderr.String(), tt.wantStderr)
			}
			if !strings.HasPrefix(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q; want it to start with %q", stdout.String(), tt.wantStdout)
			}
			if tt.wantCode != 0 {
				if len(rec.log) > 0 {
					t.Errorf("sent %q despite the error", rec.log)
				}
				return
			}
			base, _ := strconv.Atoi(args[len(args)-1])
			var src netip.Addr
			if tt.wantSrc != "" {
				src = netip.MustParseAddr(tt.wantSrc)
			}
			var want []string
			for i, p := range sealed.Ports(uint16(base), sealed.NewSealer(key).Seal(now, nonce, src, tt.wantID)) {
				if i > 0 && tt.wantWaits > 0 {
					want = append(want, "wait 30ms")
				}
				want = append(want, fmt.Sprintf("%s %s", tt.wantProto, netip.AddrPortFrom(netip.MustParseAddr(tt.wantDst), p)))
			}
			if got := strings.Join(rec.log, "; "); got != strings.Join(want, "; ") {
				t.Errorf("sent %s\nwant %s", got, strings.Join(want, "; "))
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh.key")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keygen", path}, &stdout, &stderr, knock.Runner{}); code != 0 {
		t.Fatalf("keygen: exit status %d: %s", code, stderr.String())
	}
	for _, want := range []string{"wrote a new sealed-door key to " + path + " (mode 0600)", "key_file = \"" + path + "\"", "with mode 0600"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("keygen said %q; want it to contain %q", stdout.String(), want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o600 != 0 {
		t.Errorf("key file mode %v; want at most 0600", fi.Mode())
	}
	first, err := keyfile.Read(path)
	if err != nil {
		t.Fatalf("the new key file does not read back: %v", err)
	}
	before, _ := os.ReadFile(path)

	// A second keygen on the same file refuses and leaves it alone.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"keygen", path}, &stdout, &stderr, knock.Runner{}); code != 1 {
		t.Errorf("keygen on an existing file: exit status %d; want 1", code)
	}
	if want := "portknock: keygen: " + path + " already exists; a key file is never overwritten"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q; want %q", stderr.String(), want)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("keygen changed an existing key file")
	}
	if k, _ := keyfile.Read(path); k != first {
		t.Error("the key changed")
	}

	// Two new keys differ.
	other := filepath.Join(dir, "other.key")
	if code := run(context.Background(), []string{"keygen", other}, io.Discard, io.Discard, knock.Runner{}); code != 0 {
		t.Fatalf("keygen %s: exit status %d", other, code)
	}
	if k, _ := keyfile.Read(other); k == first {
		t.Error("two keygens made the same key")
	}
}

func TestKeygenUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no file", args: []string{"keygen"}, wantCode: 2, wantStderr: "keygen takes one argument"},
		{name: "two files", args: []string{"keygen", filepath.Join(dir, "a"), filepath.Join(dir, "b")}, wantCode: 2, wantStderr: "keygen takes one argument"},
		{name: "unknown flag", args: []string{"keygen", "-x", filepath.Join(dir, "a")}, wantCode: 2, wantStderr: "keygen: unknown shorthand flag"},
		{name: "help", args: []string{"keygen", "--help"}, wantStdout: "Usage: portknock keygen FILE"},
		{name: "missing directory", args: []string{"keygen", filepath.Join(dir, "no", "a")}, wantCode: 1, wantStderr: "portknock: keygen: creating key file: open " + filepath.Join(dir, "no", "a")},
		// Not the first word: a host named keygen.
		{name: "host named keygen", args: []string{"--", "keygen", "x"}, wantCode: 2, wantStderr: `bad knock "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr, knock.Runner{})
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit status %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if tt.wantCode == 2 && !strings.Contains(stderr.String(), "portknock keygen FILE") {
				t.Errorf("usage error without the usage lines: %q", stderr.String())
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("failed keygens left files: %v", entries)
	}
}

// TestHelpCoversSealed keeps --help complete for the sealed mode.
func TestHelpCoversSealed(t *testing.T) {
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, io.Discard, knock.Runner{}); code != 0 {
		t.Fatal(code)
	}
	for _, want := range []string{"portknock keygen FILE", "--key FILE", "--id N", "--source ADDR|none", "host BASE", "BASE..BASE+4095", "NAT", "bind_source = false", "mode 0600"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
