//go:build linux

package main

// The sealed client through real sockets, without a daemon: firewall rules
// in the test's own network namespace drop the knocks on 40000-44095 and
// record each one's source, protocol and port in a set, and the test
// decrypts what arrived with the door's key. Traffic goes only to addresses
// on the namespace's loopback and on a veth pair the test makes.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/internal/keyfile"
	"portknock/sealed"
	"portknock/sequence"
)

// sealedRuleset records every packet to the ranges of base 40000 and 61440
// in seen4/seen6 and drops it; the counters say how many packets came,
// duplicates included.
const sealedRuleset = `table inet pkseal {
	set seen4 { type ipv4_addr . inet_proto . inet_service; flags dynamic; }
	set seen6 { type ipv6_addr . inet_proto . inet_service; flags dynamic; }
	chain input {
		type filter hook input priority 0; policy accept;
		meta nfproto ipv4 meta l4proto { tcp, udp } th dport { 40000-44095, 61440-65535 } add @seen4 { ip saddr . meta l4proto . th dport } counter drop
		meta nfproto ipv6 meta l4proto { tcp, udp } th dport { 40000-44095, 61440-65535 } add @seen6 { ip6 saddr . meta l4proto . th dport } counter drop
	}
}
`

// seenKnock is one element of the sets: a packet that reached the range.
type seenKnock struct {
	src   netip.Addr
	proto sequence.Proto
	port  uint16
}

// nsRun runs a command inside ns and fails t if it fails.
func nsRun(t *testing.T, ns string, stdin string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := inNetns(t, ctx, ns, "", argv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %q: %v\n%s", ns, argv, err, out)
	}
	return string(out)
}

// seenKnocks lists what the sets recorded, and the packets counted.
func seenKnocks(t *testing.T, ns string) ([]seenKnock, int) {
	t.Helper()
	var got []seenKnock
	for _, set := range []string{"seen4", "seen6"} {
		var doc struct {
			Nftables []struct {
				Set *struct {
					Elem []struct {
						Concat []json.RawMessage `json:"concat"`
					} `json:"elem"`
				} `json:"set"`
			} `json:"nftables"`
		}
		out := nsRun(t, ns, "", "nft", "-j", "list", "set", "inet", "pkseal", set)
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("nft -j list set %s: %v\n%s", set, err, out)
		}
		for _, o := range doc.Nftables {
			if o.Set == nil {
				continue
			}
			for _, e := range o.Set.Elem {
				var addr, proto string
				var port uint16
				if len(e.Concat) != 3 || json.Unmarshal(e.Concat[0], &addr) != nil || json.Unmarshal(e.Concat[1], &proto) != nil || json.Unmarshal(e.Concat[2], &port) != nil {
					t.Fatalf("unexpected set element in %s: %s", set, out)
				}
				p, err := sequence.ParseProto(proto)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, seenKnock{netip.MustParseAddr(addr), p, port})
			}
		}
	}
	packets := 0
	rules := nsRun(t, ns, "", "nft", "list", "chain", "inet", "pkseal", "input")
	for _, m := range regexp.MustCompile(`counter packets (\d+)`).FindAllStringSubmatch(rules, -1) {
		n, _ := strconv.Atoi(m[1])
		packets += n
	}
	return got, packets
}

// hitRE reads the -v lines, which are the same as a plain knock's.
var hitRE = regexp.MustCompile(`(?m)^hitting (tcp|udp) (\S+)$`)

func TestSealedKnocksInNetns(t *testing.T) {
	ns := newNetns(t)
	if _, err := exec.LookPath("nft"); err != nil {
		skipOrFatal(t, "nft (nftables) not found: %v", err)
	}
	// 127.0.0.2 as an address of its own, so that a knock to it comes from
	// it; 2001:db8::1 on a veth pair (both ends here) for a global IPv6
	// address. Knocks to either stay on the namespace's loopback.
	nsRun(t, ns, "", "ip", "addr", "add", "127.0.0.2/32", "dev", "lo")
	nsRun(t, ns, "", "ip", "link", "add", "pk0", "type", "veth", "peer", "name", "pk1")
	nsRun(t, ns, "", "ip", "addr", "add", "2001:db8::1/64", "dev", "pk0", "nodad")
	nsRun(t, ns, "", "ip", "link", "set", "pk0", "up")
	nsRun(t, ns, "", "ip", "link", "set", "pk1", "up")

	dir := t.TempDir()
	key, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "door.key")
	if err := keyfile.Write(keyFile, key); err != nil {
		t.Fatal(err)
	}
	opener := sealed.NewOpener(key)

	tests := []struct {
		name    string
		args    []string // after --key FILE
		from    string   // the packets' source address
		tagFor  string   // the address the block is bound to; "" unbound
		proto   sequence.Proto
		id      byte
		base    uint16
		verbose bool
	}{
		{name: "IPv4, -v", args: []string{"-v", "127.0.0.1", "40000"}, from: "127.0.0.1", tagFor: "127.0.0.1", proto: sequence.TCP, base: 40000, verbose: true},
		{name: "source toward 127.0.0.2", args: []string{"127.0.0.2", "40000"}, from: "127.0.0.2", tagFor: "127.0.0.2", proto: sequence.TCP, base: 40000},
		{name: "UDP, id, delay", args: []string{"-u", "--id", "42", "-d", "5", "127.0.0.1", "40000"}, from: "127.0.0.1", tagFor: "127.0.0.1", proto: sequence.UDP, id: 42, base: 40000},
		{name: "IPv6 loopback", args: []string{"-v", "::1", "40000"}, from: "::1", tagFor: "::1", proto: sequence.TCP, base: 40000, verbose: true},
		{name: "IPv6 on the veth, UDP", args: []string{"-u", "2001:db8::1", "40000"}, from: "2001:db8::1", tagFor: "2001:db8::1", proto: sequence.UDP, base: 40000},
		{name: "name with -6", args: []string{"-6", "pk-target", "40000"}, from: "::1", tagFor: "::1", proto: sequence.TCP, base: 40000},
		{name: "name with -4", args: []string{"-4", "pk-target", "40000"}, from: "127.0.0.1", tagFor: "127.0.0.1", proto: sequence.TCP, base: 40000},
		{name: "--source", args: []string{"--source", "203.0.113.7", "127.0.0.1", "40000"}, from: "127.0.0.1", tagFor: "203.0.113.7", proto: sequence.TCP, base: 40000},
		{name: "--source none", args: []string{"--source", "none", "::1", "40000"}, from: "::1", proto: sequence.TCP, base: 40000},
		{name: "highest base", args: []string{"127.0.0.1", "61440"}, from: "127.0.0.1", tagFor: "127.0.0.1", proto: sequence.TCP, base: 61440},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nsRun(t, ns, sealedRuleset, "nft", "-f", "-")
			defer nsRun(t, ns, "", "nft", "delete", "table", "inet", "pkseal")
			before := time.Now()
			r := knockIn(t, ns, "client", append([]string{"--key", keyFile}, tt.args...)...)
			after := time.Now()
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("portknock: exit status %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			seen, packets := seenKnocks(t, ns)
			if packets != sealed.Knocks || len(seen) != sealed.Knocks {
				t.Fatalf("%d packets, %d distinct knocks reached the range; want 16 and 16: %v", packets, len(seen), seen)
			}
			var c [sealed.BlockSize]byte
			var mask uint32
			for _, k := range seen {
				if k.src != netip.MustParseAddr(tt.from) || k.proto != tt.proto {
					t.Fatalf("knock %+v; want every knock from %s with %s", k, tt.from, tt.proto)
				}
				i, b, ok := sealed.Position(tt.base, k.port)
				if !ok {
					t.Fatalf("knock on port %d outside the range", k.port)
				}
				c[i] = b
				mask |= 1 << i
			}
			if mask != 1<<sealed.Knocks-1 {
				t.Fatalf("positions %016b; want all 16 once", mask)
			}
			if tt.verbose {
				var printed []seenKnock
				for _, m := range hitRE.FindAllStringSubmatch(r.stdout, -1) {
					ap := netip.MustParseAddrPort(m[2])
					p, _ := sequence.ParseProto(m[1])
					printed = append(printed, seenKnock{ap.Addr(), p, ap.Port()})
				}
				want := slices.Clone(printed)
				slices.SortFunc(want, func(a, b seenKnock) int { return int(a.port) - int(b.port) })
				if !slices.Equal(printed, want) {
					t.Errorf("-v printed the knocks out of index order: %v", printed)
				}
				got := slices.Clone(seen)
				slices.SortFunc(got, func(a, b seenKnock) int { return int(a.port) - int(b.port) })
				for i := range want {
					want[i].src = netip.MustParseAddr(tt.from) // printed: the destination
				}
				if !slices.Equal(got, want) {
					t.Errorf("-v printed %v; the firewall saw %v", printed, got)
				}
				if !strings.HasPrefix(r.stdout, fmt.Sprintf("sealed block for door id %d: source %s (", tt.id, tt.tagFor)) {
					t.Errorf("-v output does not start with the block line:\n%s", r.stdout)
				}
			} else if r.stdout != "" {
				t.Errorf("stdout %q without -v; want nothing", r.stdout)
			}
			// The block opens with the key for the address it was bound
			// to, carries the door id and the time it was sent.
			bound := tt.tagFor != ""
			src := netip.MustParseAddr(tt.from)
			if bound {
				src = netip.MustParseAddr(tt.tagFor)
			}
			b, err := opener.Open(c, src, before, sealed.Policy{BindSource: bound, MaxSkew: time.Hour})
			if err != nil {
				t.Fatalf("the knocks do not open for %s: %v", src, err)
			}
			if b.ID != tt.id || b.Bound() != bound {
				t.Errorf("block %+v; want id %d, bound %v", b, tt.id, bound)
			}
			if bt := int64(b.Time); bt < before.Unix() || bt > after.Unix() {
				t.Errorf("block time %d outside the run, %d..%d", bt, before.Unix(), after.Unix())
			}
		})
	}

	t.Run("key readable by others sends nothing", func(t *testing.T) {
		nsRun(t, ns, sealedRuleset, "nft", "-f", "-")
		defer nsRun(t, ns, "", "nft", "delete", "table", "inet", "pkseal")
		open := filepath.Join(dir, "open.key")
		text, _ := key.MarshalText()
		if err := os.WriteFile(open, text, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(open, 0o644); err != nil {
			t.Fatal(err)
		}
		r := knockIn(t, ns, "client", "--key", open, "127.0.0.1", "40000")
		if want := "key file " + open + ": mode 0644: its group or others can read the key"; r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit status %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
		}
		if seen, packets := seenKnocks(t, ns); packets != 0 {
			t.Errorf("%d packets sent with a refused key: %v", packets, seen)
		}
	})
}
