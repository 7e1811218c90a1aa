package nflog

// Integration tests on the real kernel: an nftables rule logs to NFLOG in a
// network namespace the test makes, and the Input reads it from there.
// Every packet goes from 127.0.0.1 to 127.0.0.1 on that namespace's
// loopback.

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"portknock/bench/netbench"
	"portknock/input"
	"portknock/internal/netnstest"
	"portknock/sequence"
)

// waitTimeout bounds every wait for something the kernel or the Input
// does, with room for a busy machine.
const waitTimeout = 20 * time.Second

// logRecorder is a slog.Handler that keeps the records for a test to wait
// on.
type logRecorder struct {
	mu      sync.Mutex
	recs    []slog.Record
	changed chan struct{}
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// wait waits for a record whose message contains msg, from the from-th
// on, and returns its index and attributes.
func (l *logRecorder) wait(t *testing.T, from int, msg string) (int, map[string]string) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		l.mu.Lock()
		for i := from; i < len(l.recs); i++ {
			if strings.Contains(l.recs[i].Message, msg) {
				attrs := map[string]string{"level": l.recs[i].Level.String()}
				l.recs[i].Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
				l.mu.Unlock()
				return i, attrs
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log line %q within %v; logged:\n%s", msg, waitTimeout, l.dump())
		}
	}
}

func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

func (l *logRecorder) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.recs {
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
		b.WriteByte('\n')
	}
	return b.String()
}

// kernelRig is a namespace whose firewall logs TCP to port 7000 to NFLOG
// group 5, counting the packets, and an Input reading that group.
type kernelRig struct {
	t      *testing.T
	ns     *netnstest.NS
	in     *Input
	logs   *logRecorder
	events chan sequence.Event
}

func newKernelRig(t *testing.T, in *Input) *kernelRig {
	netnstest.Require(t, "ip", "nft")
	ns := netnstest.New(t)
	rules := filepath.Join(t.TempDir(), "rules.nft")
	err := os.WriteFile(rules, []byte(`table inet knock {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 7000 counter log group 5 prefix "knock" drop
	}
}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "-f", rules)
	f, err := os.Open(filepath.Join("/run/netns", ns.Name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r := &kernelRig{t: t, ns: ns, in: in, logs: newLogRecorder(), events: make(chan sequence.Event, 1<<20)}
	in.Name, in.Groups, in.Prefix, in.NetNS, in.Logger = "nflog:5", []uint16{5}, "knock", int(f.Fd()), slog.New(r.logs)
	return r
}

// run runs the Input until the test ends.
func (r *kernelRig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.in.Run(ctx, queueEmit(r.events)) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("Run: %v", err)
		}
	})
	r.logs.wait(r.t, 0, "reading NFLOG group")
}

// syns sends n TCP SYNs to port 7000.
func (r *kernelRig) syns(n int) {
	r.t.Helper()
	src, dst := netip.MustParseAddr("127.0.0.1"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 7000)
	err := r.ns.Do(func() error {
		for range n {
			if err := netbench.KnockTCP(src, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// logged is the rule's packet counter.
func (r *kernelRig) logged() int {
	r.t.Helper()
	out := r.ns.Run(r.t, "nft", "list", "chain", "inet", "knock", "input")
	m := regexp.MustCompile(`counter packets (\d+) `).FindStringSubmatch(out)
	if m == nil {
		r.t.Fatalf("no counter in\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// instance is group 5's line in the namespace's
// /proc/net/netfilter/nfnetlink_log: how many messages the kernel holds
// (qlen) and its flush timeout in 1/100 s.
func (r *kernelRig) instance() (qlen, timeout int) {
	r.t.Helper()
	out := r.ns.Run(r.t, "cat", "/proc/net/netfilter/nfnetlink_log")
	for line := range strings.Lines(out) {
		// group portid qlen copy_mode copy_range flushtimeout use
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == "5" {
			qlen, _ = strconv.Atoi(f[2])
			timeout, _ = strconv.Atoi(f[5])
			return qlen, timeout
		}
	}
	r.t.Fatalf("group 5 is not bound:\n%s", out)
	return 0, 0
}

// TestBatchingInKernel drives a socket into batching and out again with
// real traffic, and checks in the kernel's own table that each switch took
// effect: the flush timeout column shows the batch timeout while batching
// and the kernel's default after, and messages wait in the kernel's queue
// only while batching. No message may be lost on the way.
func TestBatchingInKernel(t *testing.T) {
	const batchTimeout = 500 * time.Millisecond // 50 in the kernel's table
	r := newKernelRig(t, &Input{BatchAbove: 500, BatchBelow: 50, BatchTimeout: batchTimeout})
	r.run()
	if _, timeout := r.instance(); timeout != 100 {
		t.Errorf("flush timeout %d before batching, want the kernel's default 100", timeout)
	}

	// Bursts of 100 SYNs until the switch, bounded: a burst alone is
	// twice BatchAbove for the window it lands in, however late a busy
	// machine runs the next.
	for i := 0; r.logs.count("in batches") == 0; i++ {
		if i == 250 {
			t.Fatalf("no switch to batching after %d SYNs:\n%s", 100*i, r.logs.dump())
		}
		r.syns(100)
		time.Sleep(20 * time.Millisecond) // pacing the load, not waiting for a result
	}
	i, f := r.logs.wait(t, 0, "in batches")
	rate, _ := strconv.Atoi(f["rate"])
	if f["level"] != "INFO" || f["input"] != "nflog:5" || f["group"] != "5" || rate <= 500 || f["queue"] != "64" || f["timeout"] != "500ms" {
		t.Errorf("switch logged as %v", f)
	}
	if _, timeout := r.instance(); timeout != 50 {
		t.Errorf("flush timeout %d while batching, want 50 (%v)", timeout, batchTimeout)
	}

	// A trickle above BatchBelow keeps it batching; with a queue threshold
	// of one the kernel never holds two messages.
	held := 0
	for range 50 {
		r.syns(10)
		if qlen, _ := r.instance(); qlen >= 2 {
			held = qlen
			break
		}
		time.Sleep(20 * time.Millisecond) // pacing the trickle
	}
	if held == 0 {
		t.Error("while batching, the kernel's queue never held two messages")
	}

	// Quiet: back to a message per datagram after a second.
	_, f = r.logs.wait(t, i, "at once")
	if f["level"] != "INFO" || f["input"] != "nflog:5" || f["group"] != "5" {
		t.Errorf("switch back logged as %v", f)
	}
	// A queue threshold of one again: the kernel holds no messages back
	// (a threshold left higher would hold these for a second).
	r.syns(10)
	if qlen, timeout := r.instance(); timeout != 100 || qlen >= 2 {
		t.Errorf("after batching: flush timeout %d, %d messages held; want 100 and none", timeout, qlen)
	}

	logged := r.logged()
	netnstest.Eventually(t, waitTimeout, "every logged packet received", func() bool { return int(r.in.Stats().Read) >= logged })
	st := r.in.Stats()
	if int(st.Read) != logged || st.Counter(KernelDrops) != 0 || int(st.Events) != logged || st.Counter(BatchSwitches) != 2 {
		t.Errorf("kernel logged %d; stats %+v, want all received as events, no drops, 2 switches", logged, st)
	}
	if n := r.logs.count("in batches") + r.logs.count("at once"); n != 2 {
		t.Errorf("%d switches logged, want 2:\n%s", n, r.logs.dump())
	}
	if qlen, _ := r.instance(); qlen != 0 {
		t.Errorf("kernel holds %d messages after the last was received", qlen)
	}
}

// TestBatchingOff keeps a datagram per message whatever the rate.
func TestBatchingOff(t *testing.T) {
	r := newKernelRig(t, &Input{BatchAbove: -1})
	r.run()
	for range 20 {
		r.syns(100)
	}
	logged := r.logged()
	netnstest.Eventually(t, waitTimeout, "every logged packet received", func() bool { return int(r.in.Stats().Read) >= logged })
	if st := r.in.Stats(); st.Counter(BatchSwitches) != 0 {
		t.Errorf("%d switches with batching off", st.Counter(BatchSwitches))
	}
	if _, timeout := r.instance(); timeout != 100 {
		t.Errorf("flush timeout %d, want the kernel's default 100", timeout)
	}
}

// TestQueueSettingRefused sends a queue setting the kernel refuses (for a
// group the socket has not bound) beside the receive loop: the refusal
// must be told from a broken socket, which keeps reading, and batching
// must stop on that socket with an error logged.
func TestQueueSettingRefused(t *testing.T) {
	r := newKernelRig(t, &Input{})
	if err := r.in.resolve(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := r.in.open(ctx, 5, queueEmit(r.events))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	s.group = 99 // no such instance: the kernel answers ENODEV
	if err := s.setQueue(64, time.Second, batchBufSize(64)); err != nil {
		t.Fatal(err)
	}
	netnstest.Eventually(t, waitTimeout, "the refusal reaches the receive loop", func() bool { return s.refused.Load() != nil })
	select {
	case err := <-s.broken:
		t.Fatalf("refusal taken for a broken socket: %v", err)
	default:
	}
	r.in.adapt(s, time.Now())
	_, f := r.logs.wait(t, 0, "refused an NFLOG queue setting")
	if f["level"] != "ERROR" || f["group"] != "99" || !strings.Contains(f["err"], "no such device") {
		t.Errorf("refusal logged as %v", f)
	}
	if s.batch != nil {
		t.Error("batching still on after a refusal")
	}

	// The socket still reads.
	r.syns(3)
	for range 3 {
		select {
		case <-r.events:
		case <-time.After(waitTimeout):
			t.Fatal("no event after the refusal")
		}
	}
}

// TestWaiting checks that a socket tells when messages wait unread in it:
// a stalled reader must not make a flood look over.
func TestWaiting(t *testing.T) {
	r := newKernelRig(t, &Input{})
	if err := r.in.resolve(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The receive goroutine stops in the first event until released.
	release := make(chan struct{})
	var once sync.Once
	stalled := make(chan struct{})
	s, err := r.in.open(ctx, 5, func(*sequence.Event, input.Mode) bool {
		once.Do(func() { close(stalled) })
		<-release
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.waiting() {
		t.Error("waiting before any packet")
	}
	r.syns(1)
	<-stalled
	r.syns(5)
	netnstest.Eventually(t, waitTimeout, "the socket reports messages waiting", s.waiting)
	close(release)
	netnstest.Eventually(t, waitTimeout, "the messages are read", func() bool { return r.in.Stats().Events == 6 })
	if s.waiting() {
		t.Error("waiting after every message was read")
	}
}

// TestQueueFullWaits refuses the first events as a full queue would: the
// reader must wait and hand them on, not drop them, and the messages behind
// them must wait in the socket.
func TestQueueFullWaits(t *testing.T) {
	r := newKernelRig(t, &Input{BatchAbove: -1})
	if err := r.in.resolve(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	refusals := 0
	got := 0
	s, err := r.in.open(ctx, 5, func(*sequence.Event, input.Mode) bool {
		mu.Lock()
		defer mu.Unlock()
		// Every fifth try is taken: each event waits four times.
		if refusals++; refusals%5 != 0 {
			return false
		}
		got++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	const n = 50
	r.syns(n)
	netnstest.Eventually(t, waitTimeout, "every event handed on", func() bool { return int(r.in.Stats().Events) >= n })
	mu.Lock()
	defer mu.Unlock()
	if st := r.in.Stats(); got != n || st.Dropped != 0 || st.Counter(KernelDrops) != 0 {
		t.Errorf("%d events taken, stats %+v; want %d, no overflow, no drop", got, st, n)
	}
	if refusals != 5*n {
		t.Errorf("%d tries, want %d", refusals, 5*n)
	}
}

// TestForgedFromUserspace sends a log message from another netlink socket
// in the namespace, as a process with CAP_NET_ADMIN could, straight to the
// reader's port ID: it must not arrive, and the kernel's must.
func TestForgedFromUserspace(t *testing.T) {
	r := newKernelRig(t, &Input{})
	if err := r.in.resolve(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := r.in.open(ctx, 5, queueEmit(r.events))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	rc, err := s.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var port uint32
	if err := rc.Control(func(fd uintptr) {
		sa, gerr := unix.Getsockname(int(fd))
		if gerr != nil {
			err = gerr
			return
		}
		port = sa.(*unix.SockaddrNetlink).Pid
	}); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var sendErr error
	if err := r.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sendErr = unix.Sendto(fd, capLogSYN, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sendErr, unix.ECONNREFUSED) {
		t.Errorf("a datagram from userspace to the reader's port %d: %v, want ECONNREFUSED", port, sendErr)
	}
	// The kernel's own message still arrives, and is the only one.
	r.syns(1)
	select {
	case ev := <-r.events:
		if ev.Port != 7000 {
			t.Errorf("event %+v, want the SYN to 7000", ev)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the kernel's log message did not arrive")
	}
	if st := r.in.Stats(); st.Read != 1 {
		t.Errorf("%d messages read, want only the kernel's one", st.Read)
	}
}
