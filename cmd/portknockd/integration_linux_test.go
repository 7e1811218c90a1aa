//go:build linux

package main

// Integration tests of the NFLOG path through the real kernel: firewall
// rules in a private network namespace log knock packets to an NFLOG
// group, the built portknockd reads them, and its door commands change the
// firewall so that a real TCP service becomes reachable and then
// unreachable again. Every test makes its own namespace and sends traffic
// only to loopback addresses inside it.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"portknock/internal/netnstest"
)

func TestMain(m *testing.M) {
	netnstest.HelperMain()
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// bins holds the daemon and client, built once per test run: the tests
// run the real binaries, as an administrator would, not the code in
// process.
var bins struct {
	once   sync.Once
	dir    string
	daemon string
	client string
	err    error
}

// Waits for things that happen within milliseconds are still given
// seconds, so that a loaded machine slows the suite down rather than
// failing it.
const (
	waitTimeout = 10 * time.Second
	// dialTimeout is how long a connection to the service may take
	// before the firewall is taken to drop it. On loopback an accepted
	// connection completes in well under a millisecond; a closed door
	// rejects at once. A connection that must succeed gets waitTimeout:
	// the service answering is a process a busy machine may not run
	// for a while.
	dialTimeout = 500 * time.Millisecond
)

// Ports of the test ruleset: the service the door guards and the knock
// sequence.
const (
	svcPort  = "2222"
	svc4     = "127.0.0.1:" + svcPort
	svc6     = "[::1]:" + svcPort
	knockSeq = `["7000", "8000", "9000/udp"]`
)

func buildBinaries(t *testing.T) (daemon, client string) {
	t.Helper()
	bins.once.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			bins.err = fmt.Errorf("building the binaries needs the go command: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "pkit-bin-")
		if err != nil {
			bins.err = err
			return
		}
		bins.dir = dir
		// Readable by everyone, so the unprivileged daemon can run them.
		if err := os.Chmod(dir, 0o755); err != nil {
			bins.err = err
			return
		}
		out, err := exec.Command(goCmd, "build", "-o", dir+"/", "portknock/cmd/portknockd", "portknock/cmd/portknock").CombinedOutput()
		if err != nil {
			bins.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		bins.daemon, bins.client = filepath.Join(dir, "portknockd"), filepath.Join(dir, "portknock")
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.daemon, bins.client
}

// rig is one test's namespace, firewall and daemon.
type rig struct {
	t      *testing.T
	ns     *netnstest.NS
	dir    string // world-readable directory for configuration and state
	daemon string
	client string
	nft    string
	env    []string        // added to the daemon's environment
	d      *netnstest.Proc // the running daemon, once started
}

// newRig checks the test's requirements and makes its namespace.
func newRig(t *testing.T, commands ...string) *rig {
	t.Helper()
	netnstest.Require(t, append([]string{"ip", "nft"}, commands...)...)
	daemon, client := buildBinaries(t)
	nft, _ := exec.LookPath("nft")
	dir, err := os.MkdirTemp("", "pkit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The state directory is root's, as a daemon running as root wants
	// it; a test running the daemon as another user gives it to them
	// (see ownState).
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, ns: netnstest.New(t), dir: dir, daemon: daemon, client: client, nft: nft}
}

// ownState gives the state directory to uid, the user the daemon will run
// as: a daemon believes only a state_dir that is root's or its own, and
// needs to write there.
func (r *rig) ownState(uid int) {
	r.t.Helper()
	if err := os.Chown(filepath.Join(r.dir, "state"), uid, uid); err != nil {
		r.t.Fatal(err)
	}
}

// nftRuleset is the firewall of the nft tests: the service is reachable
// only from addresses in allow4/allow6 and rejected otherwise, and the
// knock ports are logged to NFLOG group 5 and dropped. extra rules go at
// the end of the input chain.
func nftRuleset(extra ...string) string {
	return `table inet knock {
	set allow4 { type ipv4_addr; flags timeout; }
	set allow6 { type ipv6_addr; flags timeout; }
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport ` + svcPort + ` ip saddr @allow4 accept
		tcp dport ` + svcPort + ` ip6 saddr @allow6 accept
		tcp dport ` + svcPort + ` reject with tcp reset
		tcp dport { 7000, 8000 } log group 5 prefix "knock" drop
		udp dport 9000 log group 5 prefix "knock" drop
		` + strings.Join(extra, "\n\t\t") + `
	}
}
`
}

// loadNft installs a ruleset inside the namespace.
func (r *rig) loadNft(ruleset string) {
	r.t.Helper()
	path := filepath.Join(r.dir, "ruleset.nft")
	if err := os.WriteFile(path, []byte(ruleset), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.ns.Run(r.t, r.nft, "-f", path)
}

// nftDoor is the TOML door of the nft tests. start and stop are shell
// commands run with %IP% substituted; v6 ones go to the *_6 keys when set.
type nftDoor struct {
	seqTimeout    string
	cmdTimeout    string
	start, stop   string
	start6, stop6 string
	group         int
}

// config returns the daemon's TOML configuration for door d.
func (r *rig) config(d nftDoor) string {
	if d.seqTimeout == "" {
		d.seqTimeout = "5s"
	}
	if d.group == 0 {
		d.group = 5
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[daemon]\nstate_dir = %q\n\n", filepath.Join(r.dir, "state"))
	fmt.Fprintf(&b, "[[input]]\ntype = \"nflog\"\ngroups = [%d]\nprefix = \"knock\"\n\n", d.group)
	fmt.Fprintf(&b, "[[door]]\nname = \"ssh\"\nsequence = %s\nseq_timeout = %q\ntcpflags = \"syn,!ack\"\n", knockSeq, d.seqTimeout)
	fmt.Fprintf(&b, "start_command = %q\n", d.start)
	if d.stop != "" {
		fmt.Fprintf(&b, "stop_command = %q\ncmd_timeout = %q\n", d.stop, d.cmdTimeout)
	}
	if d.start6 != "" {
		fmt.Fprintf(&b, "start_command_6 = %q\n", d.start6)
	}
	if d.stop6 != "" {
		fmt.Fprintf(&b, "stop_command_6 = %q\n", d.stop6)
	}
	return b.String()
}

// writeConfig writes the daemon's configuration where any user can read it.
func (r *rig) writeConfig(cfg string) string {
	r.t.Helper()
	path := filepath.Join(r.dir, "portknockd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// startDaemon starts portknockd inside the namespace, prefixed by wrapper
// (such as setpriv and its options) when given, and waits until it has
// bound its NFLOG group: knocks sent before then are not seen.
func (r *rig) startDaemon(cfg string, wrapper ...string) *netnstest.Proc {
	r.t.Helper()
	args := append(slices.Clone(wrapper), r.daemon, "-c", r.writeConfig(cfg))
	r.d = r.ns.Start(r.t, r.env, args[0], args[1:]...)
	r.d.WaitLine(r.t, 0, waitTimeout, `"reading NFLOG group"`, logMatch("reading NFLOG group"))
	return r.d
}

// knock runs a knock client inside the namespace and waits for it to end.
func (r *rig) knock(client string, args ...string) {
	r.t.Helper()
	r.ns.Run(r.t, client, args...)
}

// waitLog waits for the daemon to log msg with the given key=value fields
// in a line after the first from lines, and returns the line's index and
// fields.
func (r *rig) waitLog(from int, msg string, kv ...string) (int, map[string]string) {
	r.t.Helper()
	what := fmt.Sprintf("%q %s", msg, strings.Join(kv, " "))
	i, line := r.d.WaitLine(r.t, from, waitTimeout, what, logMatch(msg, kv...))
	return i, parseLog(line)
}

// logged returns the daemon's log lines with msg and the given fields.
func (r *rig) logged(msg string, kv ...string) []string {
	var out []string
	match := logMatch(msg, kv...)
	for _, l := range r.d.Lines() {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// assertReachable fails the test unless the service's reachability is want.
func (r *rig) assertReachable(addr string, want bool, when string) {
	r.t.Helper()
	timeout := dialTimeout
	if want {
		timeout = waitTimeout
	}
	err := r.ns.Reach(addr, timeout)
	switch {
	case want && err != nil:
		r.t.Fatalf("%s: service %s unreachable, want reachable: %v", when, addr, err)
	case !want && err == nil:
		r.t.Fatalf("%s: service %s reachable, want it closed by the firewall", when, addr)
	}
}

var elementsRE = regexp.MustCompile(`elements = \{([^}]*)\}`)

// setElements lists the addresses in an nft set of table inet knock.
func (r *rig) setElements(set string) []string {
	r.t.Helper()
	out := r.ns.Run(r.t, r.nft, "list", "set", "inet", "knock", set)
	m := elementsRE.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	var addrs []string
	for el := range strings.SplitSeq(m[1], ",") {
		if f := strings.Fields(el); len(f) > 0 {
			addrs = append(addrs, f[0])
		}
	}
	return addrs
}

// assertSet fails the test unless set holds exactly want.
func (r *rig) assertSet(set string, want ...string) {
	r.t.Helper()
	if got := r.setElements(set); !slices.Equal(got, want) {
		r.t.Fatalf("nft set %s holds %v, want %v", set, got, want)
	}
}

// logMatch matches slog text lines whose msg is msg and that carry every
// key=value pair in kv (given as "key=value" strings).
func logMatch(msg string, kv ...string) func(string) bool {
	return func(line string) bool {
		f := parseLog(line)
		if f == nil || f["msg"] != msg {
			return false
		}
		for _, p := range kv {
			k, v, _ := strings.Cut(p, "=")
			if got, ok := f[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
}

// parseLog splits a slog text line into its fields, unquoting quoted
// values; it returns nil for lines that are not key=value pairs, so exact
// field comparison (src=127.0.0.1 is not src=127.0.0.10) is possible.
func parseLog(line string) map[string]string {
	f := map[string]string{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " ") {
		k, rest, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return nil
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		f[k] = v
		line = rest
	}
	return f
}

// logTime is the time a parsed log line was written.
func logTime(t *testing.T, f map[string]string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, f["time"])
	if err != nil {
		t.Fatalf("log line time %q: %v", f["time"], err)
	}
	return ts
}

// exitCode is the exit status behind err: 0 for nil, -1 when the process
// did not exit by itself (killed, or never started).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// openThenClose knocks with the given client arguments and checks the
// whole life of a door with a timed close: closed before, open after the
// knock, and closed again once cmd_timeout has passed.
func (r *rig) openThenClose(src, svc string, cmdTimeout time.Duration, client string, args ...string) {
	r.t.Helper()
	r.assertReachable(svc, false, "before knocking")
	r.knock(client, args...)
	i, _ := r.waitLog(0, "opened", "door=ssh", "src="+src, "cmd=start")
	_, matched := r.waitLog(0, "knock sequence complete", "door=ssh", "src="+src)
	if in := matched["input"]; !strings.HasPrefix(in, "nflog:") {
		r.t.Errorf("match came from input %q, want the NFLOG input", in)
	}
	r.assertReachable(svc, true, "after the knock")
	_, closed := r.waitLog(i, "closed", "door=ssh", "src="+src, "cmd=stop")
	// Closing early would pass the reachability checks too; the close
	// must come from cmd_timeout, which counts from the match.
	if d := logTime(r.t, closed).Sub(logTime(r.t, matched)); d < cmdTimeout-50*time.Millisecond {
		r.t.Errorf("door closed %v after the match, want cmd_timeout %v or a little more", d, cmdTimeout)
	}
	r.assertReachable(svc, false, "after the stop command")
}

// TestNFTablesEndToEnd knocks with portknock on a door whose commands add
// the knocker to an nft set and remove it again after cmd_timeout.
func TestNFTablesEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.loadNft(nftRuleset())
	r.ns.StartService(t, svc4)
	r.startDaemon(r.config(nftDoor{
		start:      r.nft + " add element inet knock allow4 { %IP% }",
		stop:       r.nft + " delete element inet knock allow4 { %IP% }",
		cmdTimeout: "2s",
	}))
	r.assertSet("allow4")
	r.openThenClose("127.0.0.1", svc4, 2*time.Second, r.client, "-v", "127.0.0.1", "7000", "8000", "9000:udp")
	r.assertSet("allow4")
	if n := len(r.logged("opened")); n != 1 {
		t.Errorf("door opened %d times, want 1", n)
	}
}

// TestShutdownClosesDoors stops the daemon while a door is open: a clean
// shutdown must run the pending stop command rather than leave the door
// open until someone notices.
func TestShutdownClosesDoors(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.loadNft(nftRuleset())
	r.ns.StartService(t, svc4)
	d := r.startDaemon(r.config(nftDoor{
		start:      r.nft + " add element inet knock allow4 { %IP% }",
		stop:       r.nft + " delete element inet knock allow4 { %IP% }",
		cmdTimeout: "1h",
	}))
	r.knock(r.client, "127.0.0.1", "7000", "8000", "9000:udp")
	r.waitLog(0, "opened", "door=ssh", "src=127.0.0.1")
	r.assertReachable(svc4, true, "after the knock")
	d.Stop(t)
	if _, err := d.Exited(); err != nil {
		t.Fatalf("daemon stopped by SIGTERM: %v, want exit 0", err)
	}
	if len(r.logged("closed", "door=ssh", "src=127.0.0.1", "cmd=stop")) != 1 {
		t.Fatal("daemon did not log closing the door on its way out")
	}
	// The signal is logged by name, before the shutdown it causes.
	lines := d.Lines()
	sig := slices.IndexFunc(lines, logMatch("signal received; shutting down", "signal=SIGTERM"))
	closed := slices.IndexFunc(lines, logMatch("closed", "door=ssh"))
	if sig < 0 || sig > closed {
		t.Errorf("SIGTERM not logged before the doors were closed (line %d, closed at %d):\n%s", sig, closed, d.Output())
	}
	r.assertSet("allow4")
	r.assertReachable(svc4, false, "after the daemon stopped")
}

// TestIptablesNFTEndToEnd does the same with iptables rules (the nf_tables
// backend) and a door that inserts and deletes an ACCEPT rule.
func TestIptablesNFTEndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t, "iptables-nft")
	ipt, _ := exec.LookPath("iptables-nft")
	for _, rule := range [][]string{
		{"-p", "tcp", "--dport", "7000", "-j", "NFLOG", "--nflog-group", "6", "--nflog-prefix", "knock"},
		{"-p", "tcp", "--dport", "7000", "-j", "DROP"},
		{"-p", "tcp", "--dport", "8000", "-j", "NFLOG", "--nflog-group", "6", "--nflog-prefix", "knock"},
		{"-p", "tcp", "--dport", "8000", "-j", "DROP"},
		{"-p", "udp", "--dport", "9000", "-j", "NFLOG", "--nflog-group", "6", "--nflog-prefix", "knock"},
		{"-p", "udp", "--dport", "9000", "-j", "DROP"},
		{"-p", "tcp", "--dport", svcPort, "-j", "DROP"},
	} {
		r.ns.Run(t, ipt, append([]string{"-w", "-A", "INPUT"}, rule...)...)
	}
	accept := "INPUT -s %IP% -p tcp --dport " + svcPort + " -j ACCEPT"
	r.ns.StartService(t, svc4)
	r.startDaemon(r.config(nftDoor{
		group:      6,
		start:      ipt + " -w -I " + accept,
		stop:       ipt + " -w -D " + accept,
		cmdTimeout: "2s",
	}))
	acceptRule := "-A INPUT -s 127.0.0.1/32 -p tcp -m tcp --dport " + svcPort + " -j ACCEPT"
	hasAccept := func() bool { return strings.Contains(r.ns.Run(t, ipt, "-w", "-S", "INPUT"), acceptRule) }
	if hasAccept() {
		t.Fatal("ACCEPT rule present before knocking")
	}
	r.openThenClose("127.0.0.1", svc4, 2*time.Second, r.client, "127.0.0.1", "7000", "8000", "9000:udp")
	if hasAccept() {
		t.Fatalf("ACCEPT rule still present after the stop command:\n%s", r.ns.Run(t, ipt, "-w", "-S", "INPUT"))
	}
}

// TestIPv6EndToEnd knocks from ::1: the door must run start_command_6 and
// stop_command_6, which use the IPv6 set, and leave IPv4 closed.
func TestIPv6EndToEnd(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.loadNft(nftRuleset())
	r.ns.StartService(t, svc4, svc6)
	r.startDaemon(r.config(nftDoor{
		start:      r.nft + " add element inet knock allow4 { %IP% }",
		stop:       r.nft + " delete element inet knock allow4 { %IP% }",
		start6:     r.nft + " add element inet knock allow6 { %IP% }",
		stop6:      r.nft + " delete element inet knock allow6 { %IP% }",
		cmdTimeout: "2s",
	}))
	r.assertReachable(svc4, false, "before knocking")
	r.openThenClose("::1", svc6, 2*time.Second, r.client, "-6", "::1", "7000", "8000", "9000:udp")
	r.assertReachable(svc4, false, "after an IPv6 knock")
	r.assertSet("allow4")
	r.assertSet("allow6")
}

// TestIPv6ExtensionHeaders sends the last knock with hop-by-hop and
// destination options headers, so the logged packet's UDP header is not
// right after the IPv6 header and the daemon must walk the chain to find
// the port.
func TestIPv6ExtensionHeaders(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// A counter before the knock rule proves the headers were sent.
	r.loadNft(strings.Replace(nftRuleset(), "udp dport 9000 log",
		"udp dport 9000 exthdr hbh exists exthdr dst exists counter\n\t\tudp dport 9000 log", 1))
	r.startDaemon(r.config(nftDoor{
		start:  "true",
		start6: r.nft + " add element inet knock allow6 { %IP% }",
	}))
	r.knock(r.client, "-6", "::1", "7000", "8000")
	// Each options header is 8 bytes: next header and length (filled in
	// by the kernel), then a PadN option covering the other 6 bytes.
	padN := string([]byte{0, 0, 1, 4, 0, 0, 0, 0})
	err := r.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, opt := range []int{unix.IPV6_HOPOPTS, unix.IPV6_DSTOPTS} {
			if err := unix.SetsockoptString(fd, unix.IPPROTO_IPV6, opt, padN); err != nil {
				return fmt.Errorf("setting IPv6 option header %#x: %w", opt, err)
			}
		}
		return unix.Sendto(fd, []byte("knock"), 0, &unix.SockaddrInet6{Port: 9000, Addr: netip.IPv6Loopback().As16()})
	})
	if err != nil {
		t.Fatal(err)
	}
	r.waitLog(0, "opened", "door=ssh", "src=::1")
	r.assertSet("allow6", "::1")
	if rules := r.ns.Run(t, r.nft, "list", "chain", "inet", "knock", "input"); !strings.Contains(rules, "counter packets 1 ") {
		t.Fatalf("the knock did not carry both option headers:\n%s", rules)
	}
}

// TestKnockdClient opens the door with Debian's knock client, and lets the
// kernel close it: the start command adds the address with an nft timeout.
func TestKnockdClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src, set, svc string
		args                []string
	}{
		{"IPv4", "127.0.0.1", "allow4", svc4, []string{"127.0.0.1", "7000", "8000", "9000:udp"}},
		{"IPv6", "::1", "allow6", svc6, []string{"-6", "::1", "7000", "8000", "9000:udp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, "knock")
			knock, _ := exec.LookPath("knock")
			r.loadNft(nftRuleset())
			r.ns.StartService(t, tc.svc)
			r.startDaemon(r.config(nftDoor{
				start:  r.nft + " add element inet knock allow4 { %IP% timeout 2s }",
				start6: r.nft + " add element inet knock allow6 { %IP% timeout 2s }",
			}))
			r.assertReachable(tc.svc, false, "before knocking")
			r.knock(knock, tc.args...)
			r.waitLog(0, "opened", "door=ssh", "src="+tc.src)
			r.assertSet(tc.set, tc.src)
			r.assertReachable(tc.svc, true, "after the knock")
			netnstest.Eventually(t, waitTimeout, "the kernel expires the set element", func() bool {
				return len(r.setElements(tc.set)) == 0
			})
			r.assertReachable(tc.svc, false, "after the set element expired")
		})
	}
}

// TestKnockBehaviour checks the matching rules on packets that went
// through the kernel. Each negative case ends with a knock whose log line
// proves every earlier packet was handled (one NFLOG socket delivers in
// order, and one goroutine matches), and then shows the door still opens
// with a correct knock, so a broken rig cannot pass for a closed door.
func TestKnockBehaviour(t *testing.T) {
	t.Parallel()
	door := func(r *rig, seqTimeout string) nftDoor {
		return nftDoor{
			seqTimeout: seqTimeout,
			start:      r.nft + " add element inet knock allow4 { %IP% }",
		}
	}
	// stillClosed checks that nothing opened up to now.
	stillClosed := func(r *rig) {
		r.t.Helper()
		if l := r.logged("knock sequence complete"); len(l) > 0 {
			r.t.Fatalf("door opened: %v", l)
		}
		r.assertSet("allow4")
		r.assertReachable(svc4, false, "after a bad knock")
	}
	// opensNow knocks correctly and expects the door to open.
	opensNow := func(r *rig, args ...string) {
		r.t.Helper()
		r.knock(r.client, args...)
		r.waitLog(0, "opened", "door=ssh", "src=127.0.0.1")
		r.assertSet("allow4", "127.0.0.1")
		r.assertReachable(svc4, true, "after a correct knock")
	}

	t.Run("wrong order", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		r.loadNft(nftRuleset())
		r.ns.StartService(t, svc4)
		r.startDaemon(r.config(door(r, "5s")))
		// 8000 before anything is ignored; 7000 starts an attempt, and
		// 9000/udp where 8000 is due is the wrong knock.
		r.knock(r.client, "127.0.0.1", "8000", "7000", "9000:udp")
		r.waitLog(0, "wrong knock; attempt reset", "door=ssh", "src=127.0.0.1", "knock=9000/udp", "want=8000/tcp")
		stillClosed(r)
		opensNow(r, "127.0.0.1", "7000", "8000", "9000:udp")
	})

	t.Run("slower than seq_timeout", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		r.loadNft(nftRuleset())
		r.ns.StartService(t, svc4)
		r.startDaemon(r.config(door(r, "1s")))
		// 0.7 s between knocks: the last comes 1.4 s after the first.
		r.knock(r.client, "-d", "700", "127.0.0.1", "7000", "8000", "9000:udp")
		r.waitLog(0, "knock timed out", "door=ssh", "src=127.0.0.1")
		// The late 9000/udp is ignored silently; this wrong knock
		// marks that it was handled.
		r.knock(r.client, "127.0.0.1", "7000", "9000:udp")
		r.waitLog(0, "wrong knock; attempt reset", "door=ssh", "src=127.0.0.1", "knock=9000/udp")
		stillClosed(r)
		opensNow(r, "-d", "100", "127.0.0.1", "7000", "8000", "9000:udp")
	})

	t.Run("other log prefix", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		// Before the knock rules: 8000 to 127.0.0.2 is logged to the
		// same group, but by a rule that is not the knock rule. Its
		// source is still 127.0.0.1, the loopback route's address.
		r.loadNft(strings.Replace(nftRuleset(), "tcp dport { 7000, 8000 }",
			"ip daddr 127.0.0.2 tcp dport 8000 log group 5 prefix \"other\" drop\n\t\ttcp dport { 7000, 8000 }", 1))
		r.ns.StartService(t, svc4)
		r.startDaemon(r.config(door(r, "5s")))
		r.knock(r.client, "127.0.0.1", "7000")
		r.knock(r.client, "127.0.0.2", "8000")
		r.knock(r.client, "127.0.0.1", "9000:udp")
		r.waitLog(0, "wrong knock; attempt reset", "door=ssh", "src=127.0.0.1", "knock=9000/udp", "want=8000/tcp")
		stillClosed(r)
		opensNow(r, "127.0.0.1", "7000", "8000", "9000:udp")
	})

	t.Run("noise between knocks", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		r.loadNft(nftRuleset(
			// Logged like a knock, but in no door's sequence.
			`tcp dport 7500 log group 5 prefix "knock" drop`,
			`udp dport 7500 log group 5 prefix "knock" drop`,
			// Logged to the same group by another rule.
			`tcp dport 7600 log group 5 prefix "other" drop`,
			// Dropped without logging.
			`tcp dport 6000 drop`,
		))
		r.ns.StartService(t, svc4)
		r.startDaemon(r.config(door(r, "5s")))
		// The repeated 7000 after 8000 is a step already taken; the
		// service port is ordinary traffic; 6000/udp reaches a closed
		// port.
		opensNow(r, "127.0.0.1", "7000", "7500", "6000", "7600", "8000", "7000", svcPort, "7500:udp", "6000:udp", "9000:udp")
		if l := r.logged("wrong knock; attempt reset"); len(l) > 0 {
			t.Errorf("noise counted as wrong knocks: %v", l)
		}
	})
}

// TestUnprivilegedDaemon runs the daemon as nobody with only
// CAP_NET_ADMIN, as the documented service setup does, and checks that
// without the capability it refuses to start and says why.
func TestUnprivilegedDaemon(t *testing.T) {
	t.Parallel()
	const nobody = "65534"
	setpriv := func(caps ...string) []string {
		return append([]string{"setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups"}, caps...)
	}

	t.Run("with CAP_NET_ADMIN", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, "setpriv")
		r.ownState(65534)
		r.loadNft(nftRuleset())
		r.ns.StartService(t, svc4)
		// The door's commands inherit the ambient capability, so the
		// unprivileged daemon can still change the firewall. Its timed
		// close goes to the journal in its own state_dir, while root
		// owns the configuration: both are trusted.
		d := r.startDaemon(r.config(nftDoor{
			start:      r.nft + " add element inet knock allow4 { %IP% }",
			stop:       r.nft + " delete element inet knock allow4 { %IP% }",
			cmdTimeout: "1h",
		}), setpriv("--inh-caps=+net_admin", "--ambient-caps=+net_admin")...)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		// "ip netns exec" and setpriv replace themselves with the
		// daemon, so this is the daemon's own status.
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^Name:\s+portknockd$`),
			regexp.MustCompile(`(?m)^Uid:\s+` + nobody + `\s+` + nobody + `\s+` + nobody),
			regexp.MustCompile(`(?m)^CapEff:\s+0*1000$`), // CAP_NET_ADMIN (12) only
		} {
			if !want.Match(status) {
				t.Fatalf("daemon is not running as intended: /proc status lacks %s:\n%s", want, status)
			}
		}
		r.assertReachable(svc4, false, "before knocking")
		r.knock(r.client, "127.0.0.1", "7000", "8000", "9000:udp")
		r.waitLog(0, "opened", "door=ssh", "src=127.0.0.1")
		r.assertSet("allow4", "127.0.0.1")
		r.assertReachable(svc4, true, "after the knock")
		fi, err := os.Stat(filepath.Join(r.dir, "state", "closes.journal"))
		if err != nil {
			t.Fatalf("the unprivileged daemon kept no journal: %v", err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Errorf("journal owned by uid %d, want the daemon's 65534", uid)
		}
	})

	t.Run("without CAP_NET_ADMIN", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, "setpriv")
		r.ownState(65534)
		cfg := r.writeConfig(r.config(nftDoor{start: "true"}))
		args := append(setpriv("--inh-caps=-all"), r.daemon, "-c", cfg)
		out, err := r.ns.Output(args[0], args[1:]...)
		if code := exitCode(err); code <= 0 {
			t.Fatalf("daemon without CAP_NET_ADMIN: %v, want a non-zero exit:\n%s", err, out)
		}
		if !strings.Contains(out, "CAP_NET_ADMIN") || !strings.Contains(out, "NFLOG group 5") {
			t.Fatalf("error does not name the group and CAP_NET_ADMIN (%v):\n%s", err, out)
		}
		bindErrorBeforeStarted(t, out)
	})

	t.Run("group already bound", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		r.loadNft(nftRuleset())
		cfg := r.config(nftDoor{start: r.nft + " add element inet knock allow4 { %IP% }"})
		r.startDaemon(cfg)
		out, err := r.ns.Output(r.daemon, "-c", r.writeConfig(cfg))
		if code := exitCode(err); code <= 0 {
			t.Fatalf("second daemon on the same group: %v, want a non-zero exit:\n%s", err, out)
		}
		if !strings.Contains(out, "already bound by another process") {
			t.Fatalf("second daemon's error does not say the group is taken (%v):\n%s", err, out)
		}
		bindErrorBeforeStarted(t, out)
		// The first daemon is unaffected.
		r.knock(r.client, "127.0.0.1", "7000", "8000", "9000:udp")
		r.waitLog(0, "opened", "door=ssh", "src=127.0.0.1")
		r.assertSet("allow4", "127.0.0.1")
	})
}

// bindErrorBeforeStarted holds a daemon that could not bind its NFLOG group
// to saying so, naming the input once, before it would say it started.
func bindErrorBeforeStarted(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "portknockd started") {
		t.Errorf("a daemon whose group could not be bound logged that it started:\n%s", out)
	}
	if !strings.Contains(out, `level=ERROR msg="cannot start" err="input nflog:5: NFLOG group 5`) || strings.Count(out, "nflog:5") != 1 {
		t.Errorf("the bind error does not name the input once, as the start's error:\n%s", out)
	}
}
