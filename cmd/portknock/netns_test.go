//go:build linux

package main

// The real-socket tests. They send packets only inside a network namespace
// they create and delete themselves, to 127.0.0.1 and ::1 on its loopback:
// both the client and the listener that watches what arrives run under
// "ip netns exec", as this same test binary started in another role.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"portknock/sequence"
)

const (
	// roleEnv makes the test binary act as a helper process instead of
	// running tests: "client" is portknock itself, "listener" watches the
	// namespace's loopback.
	roleEnv = "PORTKNOCK_TEST_ROLE"
	// integrationEnv set to 1 turns "cannot run here" into a failure, for
	// machines where these tests are expected to run.
	integrationEnv = "PORTKNOCK_INTEGRATION"

	// sentinelPayload marks the listener's own UDP datagram; knocks carry
	// at most one byte, so it cannot be mistaken for one.
	sentinelPayload = "sentinel"

	// guard bounds every wait on a helper, so a broken helper fails the
	// test instead of hanging it. Nothing waits for it to pass.
	guard = 20 * time.Second
)

func TestMain(m *testing.M) {
	switch role := os.Getenv(roleEnv); role {
	case "":
		os.Exit(m.Run())
	case "client":
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, systemRunner()))
	case "listener":
		if err := listen(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "listener:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", roleEnv, role)
		os.Exit(2)
	}
}

// observation is one line of the listener's report.
type observation struct {
	// Kind is "ready" (Ports set), "udp" (a datagram, Payload set) or
	// "tcp" (a TCP segment seen on a raw socket, Flags set).
	Kind    string            `json:"kind"`
	Dst     string            `json:"dst,omitempty"`
	Payload []byte            `json:"payload,omitempty"`
	Flags   sequence.TCPFlags `json:"flags,omitempty"`
	Ports   map[string]uint16 `json:"ports,omitempty"`
}

// The listener's ports, the same number on 127.0.0.1 and ::1 so that one
// knock list fits a host name of either family.
const (
	portUDP      = "udp"      // a UDP socket that reports each datagram
	portOpen     = "open"     // a TCP listener that accepts and closes
	portClosed   = "closed"   // nothing listens: the knock draws a RST
	portSentinel = "sentinel" // the listener's own end-of-batch marker
)

var loopbacks = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}

// listen is the listener role. It binds its ports on both loopbacks,
// watches every TCP segment to them on raw sockets (the kernel copies each
// incoming segment there, so a SYN is seen whether or not the port is
// open), prints one JSON line per datagram or segment, and sends its
// sentinels each time a "sentinel" line arrives on stdin.
func listen(stdin io.Reader, stdout io.Writer) error {
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	emit := func(o observation) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(o); err != nil {
			fmt.Fprintln(os.Stderr, "listener: write:", err)
			os.Exit(1)
		}
	}

	udpConns, err := bindPair(func(a netip.AddrPort) (io.Closer, error) {
		return net.ListenUDP(network("udp", a), net.UDPAddrFromAddrPort(a))
	})
	if err != nil {
		return err
	}
	ports := map[string]uint16{portUDP: localPort(udpConns[0])}
	for name, keep := range map[string]bool{portOpen: true, portSentinel: true, portClosed: false} {
		ls, err := bindPair(func(a netip.AddrPort) (io.Closer, error) {
			return net.ListenTCP(network("tcp", a), net.TCPAddrFromAddrPort(a))
		})
		if err != nil {
			return err
		}
		ports[name] = localPort(ls[0])
		for _, l := range ls {
			if !keep {
				l.Close() // nothing else binds in a fresh namespace
				continue
			}
			go acceptAndClose(l.(*net.TCPListener))
		}
	}
	watched := map[uint16]bool{ports[portOpen]: true, ports[portClosed]: true, ports[portSentinel]: true}
	for i, lo := range loopbacks {
		raw, err := net.ListenIP(network("ip", netip.AddrPortFrom(lo, 0))+":tcp", &net.IPAddr{IP: lo.AsSlice()})
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		go readSegments(raw, lo, watched, emit)
		go readDatagrams(udpConns[i].(*net.UDPConn), lo, emit)
	}
	emit(observation{Kind: "ready", Ports: ports})

	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		if sc.Text() != "sentinel" {
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		for _, lo := range loopbacks {
			if err := sendSentinels(lo, ports); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

func network(base string, a netip.AddrPort) string {
	if a.Addr().Is4() {
		return base + "4"
	}
	return base + "6"
}

func localPort(c io.Closer) uint16 {
	switch c := c.(type) {
	case *net.UDPConn:
		return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	case *net.TCPListener:
		return c.Addr().(*net.TCPAddr).AddrPort().Port()
	}
	panic(fmt.Sprintf("localPort(%T)", c))
}

// bindPair binds a kernel-chosen port on 127.0.0.1 and the same port on
// ::1, trying again in the unlikely case that the port is taken on ::1.
func bindPair(bind func(netip.AddrPort) (io.Closer, error)) ([]io.Closer, error) {
	var err error
	for range 20 {
		var c4, c6 io.Closer
		if c4, err = bind(netip.AddrPortFrom(loopbacks[0], 0)); err != nil {
			return nil, err
		}
		if c6, err = bind(netip.AddrPortFrom(loopbacks[1], localPort(c4))); err == nil {
			return []io.Closer{c4, c6}, nil
		}
		c4.Close()
	}
	return nil, fmt.Errorf("no port free on both loopbacks: %w", err)
}

func acceptAndClose(l *net.TCPListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func readDatagrams(c *net.UDPConn, lo netip.Addr, emit func(observation)) {
	dst := netip.AddrPortFrom(lo, localPort(c)).String()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		emit(observation{Kind: "udp", Dst: dst, Payload: slices.Clone(buf[:n])})
	}
}

// readSegments reports the TCP segments to the watched ports. The raw
// socket is bound to lo, so every segment it gets was sent to lo; the
// IPv4 header is already stripped by the net package, and IPv6 raw
// sockets never include theirs.
func readSegments(raw *net.IPConn, lo netip.Addr, watched map[uint16]bool, emit func(observation)) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := raw.ReadFromIP(buf)
		if err != nil {
			return
		}
		if n < 20 {
			continue
		}
		dport := binary.BigEndian.Uint16(buf[2:4])
		if !watched[dport] {
			continue
		}
		emit(observation{Kind: "tcp", Dst: netip.AddrPortFrom(lo, dport).String(), Flags: sequence.TCPFlags(buf[13])})
	}
}

// sendSentinels sends a datagram to the UDP port and connects to the
// sentinel port. Each lands in the same socket queue (the UDP socket, the
// raw socket) behind anything a knock sent earlier.
func sendSentinels(lo netip.Addr, ports map[string]uint16) error {
	u := netip.AddrPortFrom(lo, ports[portUDP])
	uc, err := net.DialUDP(network("udp", u), nil, net.UDPAddrFromAddrPort(u))
	if err != nil {
		return err
	}
	_, err = uc.Write([]byte(sentinelPayload))
	uc.Close()
	if err != nil {
		return err
	}
	s := netip.AddrPortFrom(lo, ports[portSentinel])
	tc, err := net.DialTCP(network("tcp", s), nil, net.TCPAddrFromAddrPort(s))
	if err != nil {
		return err
	}
	return tc.Close()
}

// skipOrFatal skips a test that cannot run here, unless integrationEnv
// says it must.
func skipOrFatal(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(integrationEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, integrationEnv)
	}
	t.Skipf("%s; set %s=1 to make this a failure", msg, integrationEnv)
}

// newNetns creates a network namespace with only its loopback up, and
// files for its /etc: hosts names "pk-target" on both loopbacks, and
// resolv.conf points at the namespace's own loopback, so that no lookup
// made inside can leave it. Everything is removed when the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFatal(t, "not root: creating a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFatal(t, "ip (iproute2) not found: %v", err)
	}
	var b [4]byte
	rand.Read(b[:])
	ns := "pk-client-" + hex.EncodeToString(b[:])

	etc := filepath.Join("/etc/netns", ns)
	if _, err := os.Stat("/etc/netns"); errors.Is(err, os.ErrNotExist) {
		// Remove only what this test created, and only once empty.
		t.Cleanup(func() { os.Remove("/etc/netns") })
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		skipOrFatal(t, "cannot prepare %s: %v", etc, err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(etc); err != nil {
			t.Errorf("removing %s: %v", etc, err)
		}
	})
	files := map[string]string{
		"hosts":       "127.0.0.1 localhost pk-target\n::1 localhost pk-target\n",
		"resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		skipOrFatal(t, "cannot create network namespace %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("deleting network namespace %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing up lo in %s: %v: %s", ns, err, out)
	}
	return ns
}

// inNetns returns a command that runs argv inside ns. An empty role runs
// argv[0] from PATH; otherwise argv are the arguments of this test binary
// in that role.
func inNetns(t *testing.T, ctx context.Context, ns, role string, argv ...string) *exec.Cmd {
	t.Helper()
	prefix := []string{"netns", "exec", ns}
	if role != "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		prefix = append(prefix, exe)
	}
	cmd := exec.CommandContext(ctx, "ip", append(prefix, argv...)...)
	// A race-enabled helper would otherwise idle a second at every clean
	// exit, waiting for reports from goroutines it does not have.
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	return cmd
}

type listener struct {
	stdin io.WriteCloser
	obs   chan observation
	ports map[string]uint16
}

func startListener(t *testing.T, ns string) *listener {
	t.Helper()
	cmd := inNetns(t, context.Background(), ns, "listener")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &listener{stdin: stdin, obs: make(chan observation, 256)}
	go func() {
		defer close(l.obs)
		dec := json.NewDecoder(stdout)
		for {
			var o observation
			if err := dec.Decode(&o); err != nil {
				return
			}
			l.obs <- o
		}
	}()
	t.Cleanup(func() {
		// EOF on stdin ends the listener; drain its output before Wait
		// closes the pipe.
		stdin.Close()
		for range l.obs {
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("listener: %v\n%s", err, stderr.String())
		}
	})
	ready := l.next(t)
	if ready.Kind != "ready" || len(ready.Ports) != 4 {
		t.Fatalf("listener's first line %+v; want the ready line", ready)
	}
	l.ports = ready.Ports
	return l
}

func (l *listener) next(t *testing.T) observation {
	t.Helper()
	select {
	case o, ok := <-l.obs:
		if !ok {
			t.Fatal("the listener quit")
		}
		return o
	case <-time.After(guard):
		t.Fatalf("no word from the listener in %v", guard)
	}
	panic("unreachable")
}

// isSYN tells a connection attempt from the rest of a handshake.
func isSYN(f sequence.TCPFlags) bool { return f&sequence.SYN != 0 && f&sequence.ACK == 0 }

// batch is what the listener saw between two collect calls: the UDP
// datagrams and the SYNs, each in the order its socket received them.
type batch struct {
	UDP []string // "127.0.0.1:P 00": destination and payload in hex
	SYN []string // "[::1]:P syn": destination and flags
}

// collect asks the listener for its sentinels and returns what it saw
// before them, and at least as many datagrams and SYNs as want has. The
// sentinels queue behind the client's packets on the same sockets, and the
// client has exited by now, so anything seen twice is caught here, not in
// a later batch. The counts cover a packet the kernel delivers after a
// sentinel from another CPU despite that.
func (l *listener) collect(t *testing.T, want batch) batch {
	t.Helper()
	if _, err := io.WriteString(l.stdin, "sentinel\n"); err != nil {
		t.Fatalf("asking the listener for sentinels: %v", err)
	}
	pending := map[string]bool{}
	for _, lo := range loopbacks {
		pending["udp "+netip.AddrPortFrom(lo, l.ports[portUDP]).String()] = true
		pending["tcp "+netip.AddrPortFrom(lo, l.ports[portSentinel]).String()] = true
	}
	var b batch
	for len(pending) > 0 || len(b.UDP) < len(want.UDP) || len(b.SYN) < len(want.SYN) {
		o := l.next(t)
		switch {
		case o.Kind == "udp" && string(o.Payload) == sentinelPayload:
			delete(pending, "udp "+o.Dst)
		case o.Kind == "udp":
			b.UDP = append(b.UDP, o.Dst+" "+hex.EncodeToString(o.Payload))
		case o.Kind == "tcp" && strings.HasSuffix(o.Dst, fmt.Sprintf(":%d", l.ports[portSentinel])):
			if isSYN(o.Flags) {
				delete(pending, "tcp "+o.Dst)
			}
		case o.Kind == "tcp" && isSYN(o.Flags):
			b.SYN = append(b.SYN, o.Dst+" "+o.Flags.String())
		}
	}
	return b
}

type result struct {
	code           int
	stdout, stderr string
}

// knockIn runs a client inside ns: this binary as portknock when role is
// "client", or the program argv[0] when role is empty.
func knockIn(t *testing.T, ns, role string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := inNetns(t, ctx, ns, role, argv...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %q in %s: %v\n%s", argv, ns, err, r.stderr)
	}
	return r
}

func TestKnocksInNetns(t *testing.T) {
	ns := newNetns(t)
	l := startListener(t, ns)
	p := func(name string) string { return fmt.Sprint(l.ports[name]) }
	dst := func(lo, name string) string {
		return netip.AddrPortFrom(netip.MustParseAddr(lo), l.ports[name]).String()
	}
	udpKnock := func(lo string) string { return dst(lo, portUDP) + " 00" }
	syn := func(lo, name string) string { return dst(lo, name) + " syn" }

	tests := []struct {
		name       string
		args       []string
		wantStdout string
		want       batch
	}{
		{
			name:       "IPv4",
			args:       []string{"-v", "127.0.0.1", p(portUDP) + "/udp", p(portOpen), p(portClosed) + ":tcp", p(portUDP) + ":udp", p(portOpen) + "/tcp"},
			wantStdout: fmt.Sprintf("hitting udp %[1]s\nhitting tcp %[2]s\nhitting tcp %[3]s\nhitting udp %[1]s\nhitting tcp %[2]s\n", dst("127.0.0.1", portUDP), dst("127.0.0.1", portOpen), dst("127.0.0.1", portClosed)),
			want: batch{
				UDP: []string{udpKnock("127.0.0.1"), udpKnock("127.0.0.1")},
				SYN: []string{syn("127.0.0.1", portOpen), syn("127.0.0.1", portClosed), syn("127.0.0.1", portOpen)},
			},
		},
		{
			name:       "IPv6",
			args:       []string{"-v", "::1", p(portUDP) + "/udp", p(portOpen), p(portClosed) + ":tcp", p(portUDP) + ":udp", p(portOpen) + "/tcp"},
			wantStdout: fmt.Sprintf("hitting udp %[1]s\nhitting tcp %[2]s\nhitting tcp %[3]s\nhitting udp %[1]s\nhitting tcp %[2]s\n", dst("::1", portUDP), dst("::1", portOpen), dst("::1", portClosed)),
			want: batch{
				UDP: []string{udpKnock("::1"), udpKnock("::1")},
				SYN: []string{syn("::1", portOpen), syn("::1", portClosed), syn("::1", portOpen)},
			},
		},
		{
			name: "-u and -d",
			args: []string{"-u", "-d", "20", "127.0.0.1", p(portUDP), p(portClosed) + "/tcp", p(portUDP)},
			want: batch{
				UDP: []string{udpKnock("127.0.0.1"), udpKnock("127.0.0.1")},
				SYN: []string{syn("127.0.0.1", portClosed)},
			},
		},
		{
			name: "name with -4",
			args: []string{"-4", "pk-target", p(portUDP) + "/udp", p(portOpen)},
			want: batch{UDP: []string{udpKnock("127.0.0.1")}, SYN: []string{syn("127.0.0.1", portOpen)}},
		},
		{
			name: "name with -6",
			args: []string{"--ipv6", "pk-target", p(portUDP) + "/udp", p(portOpen)},
			want: batch{UDP: []string{udpKnock("::1")}, SYN: []string{syn("::1", portOpen)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := knockIn(t, ns, "client", tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("portknock %q: exit status %d, stderr %q; want 0 and nothing", tt.args, r.code, r.stderr)
			}
			if r.stdout != tt.wantStdout {
				t.Errorf("stdout %q; want %q", r.stdout, tt.wantStdout)
			}
			if got := l.collect(t, tt.want); !equalBatch(got, tt.want) {
				t.Errorf("the listener saw %+v; want %+v", got, tt.want)
			}
		})
	}

	// Without -4 or -6 a name with both families gets whichever address
	// the resolver prefers, but every knock goes to that one.
	t.Run("name resolved once", func(t *testing.T) {
		const n = 6
		args := []string{"pk-target"}
		for range n / 2 {
			args = append(args, p(portUDP)+"/udp", p(portClosed))
		}
		r := knockIn(t, ns, "client", args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("portknock %q: exit status %d, stderr %q", args, r.code, r.stderr)
		}
		got := l.collect(t, batch{UDP: make([]string, n/2), SYN: make([]string, n/2)})
		var want batch
		for _, lo := range loopbacks {
			if len(got.UDP) > 0 && strings.HasPrefix(got.UDP[0], dst(lo.String(), portUDP)) {
				for range n / 2 {
					want.UDP = append(want.UDP, udpKnock(lo.String()))
					want.SYN = append(want.SYN, syn(lo.String(), portClosed))
				}
			}
		}
		if !equalBatch(got, want) {
			t.Errorf("the listener saw %+v; want all %d knocks to one address", got, n)
		}
	})

	// The case knocking is for: the server's firewall drops the knock. The
	// client must neither wait for an answer that never comes nor send the
	// SYN again; the rule's counter says how many packets hit it, and a
	// client stuck in a blocking connect would run into the guard.
	t.Run("firewall drops the knocks", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("nft not found")
		}
		port := p(portClosed)
		ruleset := fmt.Sprintf(`table inet pkclient {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport %[1]s counter drop
		udp dport %[1]s counter drop
	}
}
`, port)
		cmd := inNetns(t, context.Background(), ns, "", "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(ruleset)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("loading the drop rules: %v: %s", err, out)
		}
		defer func() {
			if out, err := inNetns(t, context.Background(), ns, "", "nft", "delete", "table", "inet", "pkclient").CombinedOutput(); err != nil {
				t.Errorf("removing the drop rules: %v: %s", err, out)
			}
		}()
		for _, host := range []string{"127.0.0.1", "::1"} {
			args := []string{host, port, port + "/udp", port + ":tcp"}
			if r := knockIn(t, ns, "client", args...); r.code != 0 || r.stderr != "" {
				t.Fatalf("portknock %q: exit status %d, stderr %q", args, r.code, r.stderr)
			}
		}
		out, err := inNetns(t, context.Background(), ns, "", "nft", "list", "table", "inet", "pkclient").CombinedOutput()
		if err != nil {
			t.Fatalf("reading the counters: %v: %s", err, out)
		}
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`(tcp|udp) dport \d+ counter packets (\d+)`).FindAllStringSubmatch(string(out), -1) {
			got[m[1]] = m[2]
		}
		if want := map[string]string{"tcp": "4", "udp": "2"}; !maps.Equal(got, want) {
			t.Errorf("packets dropped %v; want %v (two TCP and one UDP knock per family)\n%s", got, want, out)
		}
		if b := l.collect(t, batch{}); len(b.UDP)+len(b.SYN) > 0 {
			t.Errorf("dropped knocks reached the listener: %+v", b)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name       string
			args       []string
			wantCode   int
			wantStderr string
		}{
			// The namespace has no route beyond its loopback, so the
			// kernel refuses these before any packet exists.
			{"no route, TCP", []string{"192.0.2.1", "7000"}, 1, "portknock: knock 1 of 1 (tcp 192.0.2.1:7000): connect: network is unreachable"},
			{"no route, UDP", []string{"-u", "192.0.2.1", "7000"}, 1, "portknock: knock 1 of 1 (udp 192.0.2.1:7000): connect: network is unreachable"},
			{"no route, IPv6 TCP", []string{"2001:db8::1", "7000"}, 1, "connect: network is unreachable"},
			{"no route, IPv6 UDP", []string{"2001:db8::1", "7000/udp"}, 1, "connect: network is unreachable"},
			// The namespace's resolv.conf names its own loopback, where
			// nothing answers.
			{"unresolvable", []string{"nx.invalid", "7000"}, 1, "portknock: cannot resolve nx.invalid"},
			{"bad port", []string{"127.0.0.1", "0"}, 2, "port must be 1-65535"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := knockIn(t, ns, "client", tt.args...)
				if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantStderr) {
					t.Errorf("portknock %q: exit status %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.wantCode, tt.wantStderr)
				}
			})
		}
		if got := l.collect(t, batch{}); len(got.UDP)+len(got.SYN) > 0 {
			t.Errorf("failed knocks reached the listener: %+v", got)
		}
	})

	// Debian's knock is the client users have; to the server's firewall
	// both must look the same: same datagram payload, same SYN flags.
	t.Run("same as knock", func(t *testing.T) {
		if _, err := exec.LookPath("knock"); err != nil {
			t.Skip("knock (Debian package knockd) is not installed")
		}
		for _, tc := range []struct{ name, host, family string }{{"IPv4", "127.0.0.1", "-4"}, {"IPv6", "::1", "-6"}} {
			t.Run(tc.name, func(t *testing.T) {
				// knock 0.8 takes only the PORT:PROTO form.
				args := []string{tc.family, tc.host, p(portUDP) + ":udp", p(portOpen), p(portClosed) + ":tcp"}
				ours := knockIn(t, ns, "client", args...)
				if ours.code != 0 {
					t.Fatalf("portknock %q: exit status %d: %s", args, ours.code, ours.stderr)
				}
				want := batch{UDP: make([]string, 1), SYN: make([]string, 2)}
				ourBatch := l.collect(t, want)
				theirs := knockIn(t, ns, "", append([]string{"knock"}, args...)...)
				if theirs.code != 0 {
					t.Fatalf("knock %q: exit status %d: %s", args, theirs.code, theirs.stderr)
				}
				theirBatch := l.collect(t, want)
				if !equalBatch(ourBatch, theirBatch) {
					t.Errorf("portknock's knocks %+v; knock's %+v", ourBatch, theirBatch)
				}
				if len(ourBatch.UDP) != 1 || len(ourBatch.SYN) != 2 || ourBatch.UDP[0] != udpKnock(tc.host) {
					t.Errorf("portknock's knocks %+v; want one datagram and two SYNs", ourBatch)
				}
			})
		}
	})
}

func equalBatch(a, b batch) bool { return slices.Equal(a.UDP, b.UDP) && slices.Equal(a.SYN, b.SYN) }
