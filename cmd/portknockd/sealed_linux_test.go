//go:build linux

package main

// Sealed doors through the real kernel: nft rules log every packet to the
// door's 4096 ports to NFLOG, the built portknockd reads them, and the
// built portknock (or examples/sealed-knock.sh with Debian's knock) sends
// the knocks. Each test runs in a namespace of its own; knocks go to
// 127.0.0.1, ::1, extra 127.x addresses on the namespace's loopback and
// 2001:db8::1 on a veth pair made there.
//
// A client with a wrong clock is played two ways, without a test-only flag
// in portknock: examples/sealed-knock.sh with NOW= (a second client, as a
// user with a wrong clock would run it), and a block sealed by the test
// with the sealed package and sent with the plain client.

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"portknock/sealed"
)

const (
	sealedBase  = 40000
	sealedRange = "40000-44095"
	// rejected is the daemon's message for a complete set that opened
	// nothing; the fields say why (reason) and for whom (src, door).
	rejected = "sealed knock rejected"
)

// sealedNftRuleset is nftRuleset's firewall with the sealed door's range
// logged (both protocols, so that a UDP door and stray UDP alike reach the
// daemon) instead of the plain door's ports. The range lies inside Linux's
// ephemeral ports (32768-60999), so the replies to a connection this host
// makes may come back to a port in it: they are accepted first, or the
// test's own connections to the service would be dropped as knocks.
func sealedNftRuleset() string {
	return `table inet knock {
	set allow4 { type ipv4_addr; flags timeout; }
	set allow6 { type ipv6_addr; flags timeout; }
	chain input {
		type filter hook input priority 0; policy accept;
		ct state established,related accept
		tcp dport ` + svcPort + ` ip saddr @allow4 accept
		tcp dport ` + svcPort + ` ip6 saddr @allow6 accept
		tcp dport ` + svcPort + ` reject with tcp reset
		tcp dport ` + sealedRange + ` log group 5 prefix "knock" drop
		udp dport ` + sealedRange + ` log group 5 prefix "knock" drop
	}
}
`
}

// sealedConfig is the daemon's configuration for one sealed door "ssh" on
// sealedBase with keyFile; extra goes into the sealed table (proto, id,
// bind_source, max_skew). The door adds the knocker to allow4 or allow6.
func (r *rig) sealedConfig(keyFile, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[daemon]\nstate_dir = %q\n\n", filepath.Join(r.dir, "state"))
	b.WriteString("[[input]]\ntype = \"nflog\"\ngroups = [5]\nprefix = \"knock\"\n\n")
	fmt.Fprintf(&b, "[[door]]\nname = \"ssh\"\nsealed = { base = %d, key_file = %q", sealedBase, keyFile)
	if extra != "" {
		b.WriteString(", " + extra)
	}
	b.WriteString(" }\nseq_timeout = \"10s\"\n")
	if !strings.Contains(extra, `"udp"`) {
		b.WriteString("tcpflags = \"syn,!ack\"\n")
	}
	fmt.Fprintf(&b, "start_command = %q\n", r.nft+" add element inet knock allow4 { %IP% }")
	fmt.Fprintf(&b, "start_command_6 = %q\n", r.nft+" add element inet knock allow6 { %IP% }")
	return b.String()
}

// keygen makes a key file with portknock keygen, as a user would.
func (r *rig) keygen(name string) string {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	r.ns.Run(r.t, r.client, "keygen", path)
	return path
}

// readKey reads a key file the test made, to seal blocks itself.
func (r *rig) readKey(path string) sealed.Key {
	r.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		r.t.Fatal(err)
	}
	k, err := sealed.ParseKey(data)
	if err != nil {
		r.t.Fatal(err)
	}
	return k
}

// addAddr puts an extra address on the namespace's loopback, so that
// knocks sent to it also come from it.
func (r *rig) addAddr(prefix string) {
	r.t.Helper()
	r.ns.Run(r.t, "ip", "addr", "add", prefix, "dev", "lo")
}

// addVeth6 makes a veth pair inside the namespace with addr (a /64 of
// 2001:db8::/32) on one end: a global IPv6 address that knocks can go to.
func (r *rig) addVeth6(addr string) {
	r.t.Helper()
	r.ns.Run(r.t, "ip", "link", "add", "pk0", "type", "veth", "peer", "name", "pk1")
	r.ns.Run(r.t, "ip", "addr", "add", addr+"/64", "dev", "pk0", "nodad")
	r.ns.Run(r.t, "ip", "link", "set", "pk0", "up")
	r.ns.Run(r.t, "ip", "link", "set", "pk1", "up")
}

var hittingRE = regexp.MustCompile(`(?m)^hitting (?:tcp|udp) \S+:(\d+)$`)

// sealedKnock runs portknock -v with args (--key and the rest) and returns
// the 16 ports it says it knocked on.
func (r *rig) sealedKnock(args ...string) []string {
	r.t.Helper()
	out := r.ns.Run(r.t, r.client, append([]string{"-v"}, args...)...)
	var ports []string
	for _, m := range hittingRE.FindAllStringSubmatch(out, -1) {
		ports = append(ports, m[1])
	}
	if len(ports) != sealed.Knocks {
		r.t.Fatalf("portknock -v %q printed %d knocks, want 16:\n%s", args, len(ports), out)
	}
	return ports
}

// sealPorts seals a block with key as a client at time t would, for src,
// and returns its knocks' ports.
func sealPorts(key sealed.Key, t time.Time, src netip.Addr, id byte) []string {
	var nonce [4]byte
	for i := range nonce {
		nonce[i] = byte(rand.N(256))
	}
	var ports []string
	for _, p := range sealed.Ports(sealedBase, sealed.NewSealer(key).Seal(t, nonce, src, id)) {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	return ports
}

// waitOpened waits for the door to match for src and checks the firewall
// let src in.
func (r *rig) waitOpened(src, set string) {
	r.t.Helper()
	r.waitLog(0, "knock sequence complete", "door=ssh", "src="+src)
	r.waitLog(0, "opened", "door=ssh", "src="+src)
	if !slices.Contains(r.setElements(set), src) {
		r.t.Fatalf("door opened for %s, but nft set %s holds %v", src, set, r.setElements(set))
	}
}

// waitRejected waits for the rejection of an attempt from src for reason,
// with the given other fields, and returns its fields.
func (r *rig) waitRejected(reason, src string, kv ...string) map[string]string {
	r.t.Helper()
	_, f := r.waitLog(0, rejected, append([]string{"reason=" + reason, "src=" + src}, kv...)...)
	return f
}

// notOpened fails the test if the door matched for src.
func (r *rig) notOpened(src string) {
	r.t.Helper()
	if l := r.logged("knock sequence complete", "src="+src); len(l) > 0 {
		r.t.Fatalf("door opened for %s: %v", src, l)
	}
}

// TestSealedDoorOpens opens a sealed door with each client, protocol and
// address family.
func TestSealedDoorOpens(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("../../examples/sealed-knock.sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		commands []string // needed beyond ip and nft
		extra    string   // the door's sealed options
		setup    func(r *rig)
		svc      string // the service address to reach afterwards
		src, set string
		knock    func(r *rig, key string)
	}{
		{
			name: "TCP", svc: svc4, src: "127.0.0.1", set: "allow4",
			knock: func(r *rig, key string) { r.sealedKnock("--key", key, "127.0.0.1", "40000") },
		},
		{
			name: "UDP", extra: `proto = "udp"`, svc: svc4, src: "127.0.0.1", set: "allow4",
			knock: func(r *rig, key string) { r.sealedKnock("-u", "--key", key, "127.0.0.1", "40000") },
		},
		{
			name: "IPv6 loopback", svc: svc6, src: "::1", set: "allow6",
			knock: func(r *rig, key string) { r.sealedKnock("-6", "--key", key, "::1", "40000") },
		},
		{
			name: "IPv6 on a veth", svc: "[2001:db8::1]:" + svcPort, src: "2001:db8::1", set: "allow6",
			setup: func(r *rig) { r.addVeth6("2001:db8::1") },
			knock: func(r *rig, key string) { r.sealedKnock("--key", key, "2001:db8::1", "40000") },
		},
		{
			name: "door id, unbound", extra: "id = 7, bind_source = false", svc: svc4, src: "127.0.0.1", set: "allow4",
			knock: func(r *rig, key string) {
				r.sealedKnock("--id", "7", "--source", "none", "--key", key, "127.0.0.1", "40000")
			},
		},
		{
			name: "sealed-knock.sh", commands: []string{"openssl", "knock"}, svc: svc4, src: "127.0.0.1", set: "allow4",
			knock: func(r *rig, key string) { r.ns.Run(r.t, "sh", script, key, "127.0.0.1", "40000") },
		},
		{
			name: "sealed-knock.sh, IPv6 and UDP", commands: []string{"openssl", "knock"}, extra: `proto = "udp"`, svc: svc6, src: "::1", set: "allow6",
			knock: func(r *rig, key string) { r.ns.Run(r.t, "env", "PROTO=udp", "sh", script, key, "::1", "40000") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tt.commands...)
			key := r.keygen("ssh.key")
			if tt.setup != nil {
				tt.setup(r)
			}
			r.loadNft(sealedNftRuleset())
			r.ns.StartService(t, tt.svc)
			r.startDaemon(r.sealedConfig(key, tt.extra))
			r.assertReachable(tt.svc, false, "before knocking")
			tt.knock(r, key)
			r.waitOpened(tt.src, tt.set)
			r.assertReachable(tt.svc, true, "after the sealed knock")
			if l := r.logged(rejected); len(l) > 0 {
				t.Errorf("a good knock was also rejected: %v", l)
			}
		})
	}
}

// TestSealedDoorReplay sends the knocks of a block that opened the door
// again, as anyone who saw them could: from the same address, after the
// daemon was killed and started again, and from another address.
func TestSealedDoorReplay(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	key := r.keygen("ssh.key")
	r.addAddr("127.0.0.2/32")
	r.loadNft(sealedNftRuleset())
	cfg := r.sealedConfig(key, "")
	r.startDaemon(cfg)
	ports := r.sealedKnock("--key", key, "127.0.0.1", "40000")
	r.waitOpened("127.0.0.1", "allow4")

	replay := func(host string) { r.knock(r.client, append([]string{host}, ports...)...) }
	replay("127.0.0.1")
	r.waitRejected("replay", "127.0.0.1", "door=ssh")

	// The replay cache is durable: after a kill -9, which leaves no time
	// to save anything, a new daemon on the same state_dir still knows
	// the block.
	if err := r.d.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.d.WaitExit(t, waitTimeout)
	r.startDaemon(cfg)
	replay("127.0.0.1")
	r.waitRejected("replay", "127.0.0.1", "door=ssh")

	// From another address the block fails the source check, which
	// comes before the replay check.
	replay("127.0.0.2")
	r.waitRejected("source", "127.0.0.2", "door=ssh")
	r.notOpened("127.0.0.2")
	r.notOpened("127.0.0.1")

	// Each run of the client is a new block: the door opens again.
	r.sealedKnock("--key", key, "127.0.0.1", "40000")
	r.waitOpened("127.0.0.1", "allow4")
	if n := len(r.logged("knock sequence complete")); n != 1 {
		t.Errorf("the restarted daemon matched %d times, want once", n)
	}
}

// TestSealedDoorShuffled sends a block's knocks in a random order with
// some of them repeated: order and retransmits do not matter.
func TestSealedDoorShuffled(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	key := r.keygen("ssh.key")
	r.loadNft(sealedNftRuleset())
	r.startDaemon(r.sealedConfig(key, ""))
	ports := sealPorts(r.readKey(key), time.Now(), netip.MustParseAddr("127.0.0.1"), 0)
	knocks := slices.Clone(ports)
	for range 8 {
		knocks = append(knocks, ports[rand.N(len(ports))])
	}
	rand.Shuffle(len(knocks), func(i, j int) { knocks[i], knocks[j] = knocks[j], knocks[i] })
	r.knock(r.client, append([]string{"127.0.0.1"}, knocks...)...)
	r.waitOpened("127.0.0.1", "allow4")
}

// TestSealedDoorRefused sends blocks that must not open the door, each in
// a namespace of its own. Every case then knocks correctly from the same
// address and sees the door open, so a broken rig cannot pass for a
// refusal, and a rejected set does not stand in the way of a retry.
func TestSealedDoorRefused(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("../../examples/sealed-knock.sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		commands []string
		// knock sends the bad knocks from 127.0.0.1.
		knock  func(r *rig, key string)
		reason string
		check  func(t *testing.T, f map[string]string)
	}{
		{
			name:   "another key",
			knock:  func(r *rig, _ string) { r.sealedKnock("--key", r.keygen("other.key"), "127.0.0.1", "40000") },
			reason: "key",
		},
		{
			name:     "client clock 2 minutes behind (sealed-knock.sh)",
			commands: []string{"openssl", "knock"},
			knock: func(r *rig, key string) {
				now := strconv.FormatInt(time.Now().Unix()-120, 10)
				r.ns.Run(r.t, "env", "NOW="+now, "sh", script, key, "127.0.0.1", "40000")
			},
			reason: "skew",
			check:  offsetNear(-120),
		},
		{
			name: "client clock 2 minutes ahead",
			knock: func(r *rig, key string) {
				ports := sealPorts(r.readKey(key), time.Now().Add(2*time.Minute), netip.MustParseAddr("127.0.0.1"), 0)
				r.knock(r.client, append([]string{"127.0.0.1"}, ports...)...)
			},
			reason: "skew",
			check:  offsetNear(120),
		},
		{
			name:   "door id no door has",
			knock:  func(r *rig, key string) { r.sealedKnock("--id", "7", "--key", key, "127.0.0.1", "40000") },
			reason: "door",
		},
		{
			name:   "unbound block, binding door",
			knock:  func(r *rig, key string) { r.sealedKnock("--source", "none", "--key", key, "127.0.0.1", "40000") },
			reason: "source",
		},
		{
			name:   "block bound to another address",
			knock:  func(r *rig, key string) { r.sealedKnock("--source", "127.0.0.9", "--key", key, "127.0.0.1", "40000") },
			reason: "source",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tt.commands...)
			key := r.keygen("ssh.key")
			r.loadNft(sealedNftRuleset())
			r.ns.StartService(t, svc4)
			r.startDaemon(r.sealedConfig(key, ""))
			tt.knock(r, key)
			f := r.waitRejected(tt.reason, "127.0.0.1")
			if tt.check != nil {
				tt.check(t, f)
			}
			r.notOpened("127.0.0.1")
			r.assertSet("allow4")
			r.assertReachable(svc4, false, "after the refused knock")
			r.sealedKnock("--key", key, "127.0.0.1", "40000")
			r.waitOpened("127.0.0.1", "allow4")
			r.assertReachable(svc4, true, "after a good knock")
		})
	}
}

// offsetNear checks a skew rejection's offset: want seconds, give or take
// the time the test itself took.
func offsetNear(want int) func(t *testing.T, f map[string]string) {
	return func(t *testing.T, f map[string]string) {
		t.Helper()
		got, err := strconv.Atoi(f["offset"])
		if err != nil || got < want-10 || got > want+10 {
			t.Errorf("skew rejection offset=%q, want about %d: %v", f["offset"], want, f)
		}
	}
}

// TestSealedDoorSweep knocks on every port of the door's range, rising and
// falling: it makes complete sets of knocks, none of which may open.
func TestSealedDoorSweep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		down bool
	}{{"rising", false}, {"falling", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			key := r.keygen("ssh.key")
			r.addAddr("127.0.0.2/32")
			r.loadNft(sealedNftRuleset())
			r.startDaemon(r.sealedConfig(key, ""))
			sweep := make([]string, 0, sealed.Span+1)
			sweep = append(sweep, "127.0.0.1")
			for i := range sealed.Span {
				p := sealedBase + i
				if tc.down {
					p = sealedBase + sealed.Span - 1 - i
				}
				sweep = append(sweep, strconv.Itoa(p))
			}
			r.knock(r.client, sweep...)
			r.waitRejected("key", "127.0.0.1")
			// One NFLOG socket delivers in order and one goroutine
			// matches: once a knock sent after the sweep has opened the
			// door for 127.0.0.2, every knock of the sweep was judged.
			r.sealedKnock("--key", key, "127.0.0.2", "40000")
			r.waitOpened("127.0.0.2", "allow4")
			r.notOpened("127.0.0.1")
			r.assertSet("allow4", "127.0.0.2")
			// The source's set is full of the sweep's bytes; a good
			// block overwrites them.
			r.sealedKnock("--key", key, "127.0.0.1", "40000")
			r.waitOpened("127.0.0.1", "allow4")
		})
	}
}
