package nflog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"portknock/input"
	"portknock/sequence"
)

// Defaults for an Input's settings.
const (
	// DefaultReadBuffer is the socket receive buffer: large, so that a burst
	// of logged packets waits in the kernel instead of being dropped. It
	// is also where messages wait while the reader waits for room in the
	// matcher's queue (queueWaitMax), so it must outlast that wait at the
	// fastest flood (270 000 messages/s measured here). 16 MiB holds about
	// 40 000 messages sent one per datagram (measured: the kernel counts
	// about 830 bytes for each, against twice the size set), and several
	// times that in batches, where a message takes little more than its
	// 200 bytes. The kernel takes the memory only while messages wait.
	DefaultReadBuffer = 16 << 20
	// DefaultSnapLen is how much of each packet the kernel copies: enough
	// for an IPv6 header, a few extension headers and the TCP header.
	DefaultSnapLen = 256
)

// The netfilter hooks on which a packet is on its way out.
const (
	hookLocalOut    = 3
	hookPostRouting = 4
)

// Input reads one or more NFLOG groups. Set the fields, then call Run once.
type Input struct {
	// Name identifies the input in events and logs.
	Name string
	// Groups are the NFLOG groups to bind, one socket each.
	Groups []uint16
	// Prefix, when set, keeps only packets logged with this prefix
	// (surrounding blanks ignored), so other rules logging to the same
	// group are not knocks.
	Prefix string
	// ReadBuffer is the socket receive buffer in bytes (DefaultReadBuffer
	// if 0). With CAP_NET_ADMIN it may exceed net.core.rmem_max.
	ReadBuffer int
	// SnapLen is how many bytes of each packet the kernel copies
	// (DefaultSnapLen if 0).
	SnapLen uint32
	// NetNS, when not 0, is a network namespace file descriptor to read
	// in instead of the daemon's own.
	NetNS int
	// Now stamps events without a kernel timestamp; time.Now if nil.
	Now func() time.Time
	// Logger receives socket life-cycle notes and drop reports.
	Logger *slog.Logger

	// BatchAbove is the rate of log messages per second on a group above
	// which its socket asks the kernel to send them in batches
	// (DefaultBatchAbove if 0; negative: never, each message at once).
	BatchAbove int
	// BatchBelow is the rate below which a batching socket, after a
	// second there, goes back to a datagram per message
	// (DefaultBatchBelow if 0). It must be below BatchAbove.
	BatchBelow int
	// BatchQueue is the kernel's queue threshold while batching: the
	// most messages in one datagram (DefaultBatchQueue if 0).
	BatchQueue uint32
	// BatchTimeout is the longest the kernel holds a message while
	// batching, in steps of 10 ms (DefaultBatchTimeout if 0).
	BatchTimeout time.Duration

	packets, events, overflow, enobufs, gaps atomic.Uint64
	skipped                                  [reasonCount]atomic.Uint64
	switches                                 atomic.Uint64

	// Set by Run before any socket starts, from the fields, which are
	// the caller's and never written here.
	prefix string // Prefix without surrounding blanks
	batch  batchSettings
	now    func() time.Time
	log    *slog.Logger
}

// Stats returns the counters so far; safe while Run runs. Read counts
// the logged packets received, and Dropped the events lost because the
// matcher's queue stayed full (see queueWaitMax); the Input's own
// counters are named by KernelDrops, Overruns and BatchSwitches.
func (in *Input) Stats() input.Stats {
	s := input.Stats{
		Unit:     "packets",
		Read:     in.packets.Load(),
		Events:   in.events.Load(),
		Dropped:  in.overflow.Load(),
		Counters: counters(in.gaps.Load(), in.enobufs.Load(), in.switches.Load()),
	}
	for i := range s.Skipped {
		s.Skipped[i] = in.skipped[i].Load()
	}
	return s
}

// Run reads every group until ctx ends, calling emit for each knock
// event, with input.NoWait: the netlink reader must keep up with the
// kernel, which drops what the socket cannot hold. When the queue has no
// room, the group's reader tries again for a while (queueWaitMax), leaving
// later messages in the socket's larger buffer, and counts the event
// dropped if the queue stays full. emit may be called from one goroutine
// per group at once. A group whose socket breaks is reopened with
// backoff; Run fails only when a group cannot be bound at all at start,
// or the settings are wrong, with an error that says why.
func (in *Input) Run(ctx context.Context, emit input.Emit) error {
	if err := in.resolve(); err != nil {
		return err
	}
	// Bind every group first, so that a missing capability or a taken
	// group stops the daemon at start instead of being retried forever.
	socks := make([]*groupSocket, len(in.Groups))
	for i, g := range in.Groups {
		s, err := in.open(ctx, g, emit)
		if err != nil {
			for _, s := range socks[:i] {
				s.close()
			}
			return err
		}
		socks[i] = s
	}
	var wg sync.WaitGroup
	for _, s := range socks {
		wg.Go(func() { in.keep(ctx, s, emit) })
	}
	wg.Wait()
	return nil
}

// resolve applies the defaults and checks the settings.
func (in *Input) resolve() error {
	in.log = in.Logger
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.now = in.Now
	if in.now == nil {
		in.now = time.Now
	}
	if len(in.Groups) == 0 {
		return errors.New("no NFLOG groups")
	}
	var err error
	if in.batch, err = resolveBatch(in.BatchAbove, in.BatchBelow, in.BatchQueue, in.BatchTimeout); err != nil {
		return err
	}
	in.prefix = strings.TrimSpace(in.Prefix)
	return nil
}

// groupSocket is one bound NFLOG group.
type groupSocket struct {
	group  uint16
	conn   *netlink.Conn
	cancel context.CancelFunc
	broken chan error    // the receive loop stopped on an error
	done   chan struct{} // closed when the receive loop has ended
	// bound gets the kernel's answer to the bind request whose sequence
	// number is bindSeq: 0 or an error number.
	bound   chan int32
	bindSeq uint32

	// Touched only by the receive goroutine.
	lastSeq uint32
	haveSeq bool
	ev      sequence.Event // the event being handed on, reused
	// Losses not logged yet, added by the receive goroutine and logged by
	// keep once a second, so that a flood cannot become a flood of log
	// lines and the last losses of a burst are still reported promptly.
	pendDrops, pendOverruns atomic.Uint64

	// received and lost count the messages the kernel logged to this
	// socket: received, or known lost from a gap in sequence numbers.
	// adapt measures the rate on them.
	received, lost atomic.Uint64
	// Touched only by adapt: the last counts it read, and the messages it
	// has credited to the rate.
	lastReceived, lastLost, credited uint64
	// Touched only by keep: whether to batch (nil when batching is off
	// or has failed on this socket).
	batch *batchSwitch
	// cfgSeq is the sequence number of the last queue setting sent;
	// refused holds the kernel's answer when it refused it, which arrives
	// on the receive goroutine.
	cfgSeq  atomic.Uint32
	refused atomic.Pointer[netlink.OpError]
}

// keep runs a group's socket until ctx ends, reopening it with backoff
// when it breaks.
func (in *Input) keep(ctx context.Context, s *groupSocket, emit input.Emit) {
	backoff := time.Second
	report := time.NewTicker(time.Second)
	defer report.Stop()
	var window <-chan time.Time
	if in.batch.above > 0 {
		t := time.NewTicker(batchWindow)
		defer t.Stop()
		window = t.C
	}
	for {
		select {
		case <-ctx.Done():
			s.close()
			in.flushDrops(s)
			return
		case <-report.C:
			in.flushDrops(s)
			continue
		case now := <-window:
			in.adapt(s, now)
			continue
		case err := <-s.broken:
			s.close()
			in.flushDrops(s)
			in.log.Error("NFLOG socket failed; reopening", "input", in.Name, "group", s.group, "err", err, "retry_in", backoff)
		}
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, 30*time.Second)
			ns, err := in.open(ctx, s.group, emit)
			if err != nil {
				in.log.Error("cannot reopen NFLOG group", "input", in.Name, "group", s.group, "err", err, "retry_in", backoff)
				continue
			}
			in.log.Info("NFLOG group reopened", "input", in.Name, "group", s.group)
			s, backoff = ns, time.Second
			break
		}
	}
}

// open binds one group and starts receiving from it.
func (in *Input) open(ctx context.Context, group uint16, emit input.Emit) (*groupSocket, error) {
	snap := in.SnapLen
	if snap == 0 {
		snap = DefaultSnapLen
	}
	rbuf := in.ReadBuffer
	if rbuf <= 0 {
		rbuf = DefaultReadBuffer
	}
	s, err := in.dial(ctx, group, snap, rbuf, emit)
	if err != nil {
		return nil, err
	}
	in.log.Info("reading NFLOG group", "input", in.Name, "group", group, "rcvbuf", rbuf, "snaplen", snap)
	return s, nil
}

// receiveError decides what a receive error means: 0 to go on reading.
func (in *Input) receiveError(ctx context.Context, s *groupSocket, err error) int {
	switch {
	case ctx.Err() != nil:
		return 1
	case errors.Is(err, unix.ENOBUFS):
		// The socket buffer overflowed; sequence numbers will tell how
		// much was lost.
		in.enobufs.Add(1)
		s.pendOverruns.Add(1)
		return 0
	}
	var op *netlink.OpError
	if errors.As(err, &op) && (op.Timeout() || op.Temporary()) {
		return 0
	}
	if op != nil && op.Sequence != 0 && op.Sequence == s.cfgSeq.Load() {
		// The kernel refused a queue setting: the socket itself is fine.
		s.refused.Store(op)
		return 0
	}
	select {
	case s.broken <- err:
	default:
	}
	return 1
}

// hook handles one logged packet on the socket's receive goroutine. It
// waits only as emit does, at most queueWaitMax when the receive loop's
// queueWaiter is emit: meanwhile the kernel keeps what the socket can
// hold and drops the rest.
func (in *Input) hook(s *groupSocket, a *logMsg, emit input.Emit) {
	in.packets.Add(1)
	if a.hasSeq {
		if s.haveSeq && a.seq != s.lastSeq+1 {
			lost := uint64(a.seq - s.lastSeq - 1)
			in.gaps.Add(lost)
			s.pendDrops.Add(lost)
			s.lost.Add(lost)
		}
		s.lastSeq, s.haveSeq = a.seq, true
	}
	s.received.Add(1)
	if in.prefix != "" && (!a.hasPrefix || string(trimPrefix(a.prefix)) != in.prefix) {
		in.skipped[ReasonPrefix].Add(1)
		return
	}
	if a.hasHook && (a.hook == hookLocalOut || a.hook == hookPostRouting) {
		in.skipped[ReasonOutbound].Add(1)
		return
	}
	if !a.hasPayload {
		in.skipped[ReasonTruncated].Add(1)
		return
	}
	// One event per socket, reused: handing on a fresh one would cost an
	// allocation per message, since emit may be anything.
	ev := &s.ev
	*ev = sequence.Event{}
	if r := ParsePacket(a.payload, ev); r != ReasonNone {
		in.skipped[r].Add(1)
		return
	}
	ev.Input = in.Name
	if a.hasTime {
		ev.Time = time.Unix(a.sec, a.usec*1000)
	} else {
		ev.Time = in.now()
	}
	if !emit(ev, input.NoWait) {
		in.overflow.Add(1)
		return
	}
	in.events.Add(1)
}

// credit returns the messages the rate is measured on so far: those
// received, and of those lost no more than were received since the last
// call. A gap shows only when the next message arrives, which after a
// flood that ended in an overrun can be a lone knock minutes later: the
// whole flood's losses would then count as one window's rate and switch a
// quiet socket to batching. During a flood, the messages received are
// enough to pass the threshold.
func (s *groupSocket) credit() uint64 {
	rcv, lost := s.received.Load(), s.lost.Load()
	dr, dl := rcv-s.lastReceived, lost-s.lastLost
	s.lastReceived, s.lastLost = rcv, lost
	s.credited += dr + min(dl, dr)
	return s.credited
}

// adapt measures a socket's message rate and switches its batching when
// the rate says so, logging each switch once.
func (in *Input) adapt(s *groupSocket, now time.Time) {
	if s.batch == nil {
		return
	}
	if op := s.refused.Load(); op != nil {
		in.log.Error("the kernel refused an NFLOG queue setting; batching stays off for this group until its socket is reopened",
			"input", in.Name, "group", s.group, "batched", s.batch.batched, "err", op)
		s.batch = nil
		return
	}
	// Messages waiting matter only to a batching socket; not asking
	// otherwise keeps an idle daemon to one clock read per window.
	rate, change := s.batch.observe(now, s.credit(), s.batch.batched && s.waiting())
	if !change {
		return
	}
	queue, timeout, bufsize := uint32(1), singleTimeout, singleBufSize()
	if s.batch.batched {
		queue, timeout, bufsize = in.batch.queue, in.batch.timeout, batchBufSize(in.batch.queue)
	}
	if err := s.setQueue(queue, timeout, bufsize); err != nil {
		in.log.Error("cannot change the NFLOG queue threshold; batching stays off for this group until its socket is reopened",
			"input", in.Name, "group", s.group, "queue", queue, "err", err)
		s.batch = nil
		return
	}
	in.switches.Add(1)
	if s.batch.batched {
		in.log.Info("NFLOG message rate high: the kernel now sends log messages in batches",
			"input", in.Name, "group", s.group, "rate", int64(rate), "queue", queue, "timeout", in.batch.timeout)
	} else {
		in.log.Info("NFLOG message rate low again: the kernel sends each log message at once",
			"input", in.Name, "group", s.group, "rate", int64(rate))
	}
}

// waiting reports whether log messages wait unread in the socket (or an
// overrun is pending), without reading them.
func (s *groupSocket) waiting() bool {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return false
	}
	var ready bool
	rc.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		ready = err == nil && n > 0 && p[0].Revents&(unix.POLLIN|unix.POLLERR) != 0
	})
	return ready
}

// setQueue sets the socket's queue threshold, flush timeout and buffer
// size in the kernel. It runs beside the receive loop on the same socket:
// without an ACK request nothing but a refusal comes back, and the loop
// hands that to receiveError.
func (s *groupSocket) setQueue(qthresh uint32, timeout time.Duration, bufsize uint32) error {
	m, err := queueConfig(s.group, qthresh, timeout, bufsize)
	if err != nil {
		return err
	}
	// Our own sequence number, stored before sending, so that a refusal
	// can be told from other errors however soon it arrives.
	m.Header.Sequence = s.cfgSeq.Add(1)
	_, err = s.conn.Send(m)
	return err
}

// flushDrops logs the losses not reported yet, if any: messages the kernel
// dropped (known from sequence gaps) and receive buffer overruns (ENOBUFS,
// after which the kernel drops until the buffer has room).
func (in *Input) flushDrops(s *groupSocket) {
	drops, overruns := s.pendDrops.Swap(0), s.pendOverruns.Swap(0)
	switch {
	case drops > 0:
		in.log.Warn(fmt.Sprintf("kernel dropped %d log messages", drops), "input", in.Name, "group", s.group,
			"dropped", drops, "overruns", overruns)
	case overruns > 0:
		in.log.Warn("NFLOG receive buffer overrun; the messages lost are counted when the next one arrives",
			"input", in.Name, "group", s.group, "overruns", overruns)
	}
}

// trimPrefix removes what the kernel and rule syntax add around a prefix.
func trimPrefix(p []byte) []byte { return bytes.TrimSpace(bytes.TrimRight(p, "\x00")) }

// setReadBuffer sets the socket's receive buffer, past net.core.rmem_max
// when the process has CAP_NET_ADMIN (SO_RCVBUFFORCE).
func setReadBuffer(c *netlink.Conn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetReadBuffer(n)
	}
	return nil
}

// explainBindError says why binding a group failed. The kernel answers
// EPERM both when the process lacks CAP_NET_ADMIN and when another
// process has bound the group, and the two need different fixes.
func explainBindError(group uint16, err error) error {
	if !errors.Is(err, unix.EPERM) && !strings.Contains(err.Error(), unix.EPERM.Error()) {
		return fmt.Errorf("NFLOG group %d: %w", group, err)
	}
	if ok, cerr := hasCapNetAdmin(); cerr == nil && !ok {
		return fmt.Errorf("NFLOG group %d: permission denied: CAP_NET_ADMIN is missing (run as root, or as a dedicated user with AmbientCapabilities=CAP_NET_ADMIN): %w", group, err)
	}
	if portid, ok := groupOwner(group); ok {
		return fmt.Errorf("NFLOG group %d is already bound by another process (netlink portid %d in /proc/net/netfilter/nfnetlink_log; ulogd or another portknockd?); stop it or use another group: %w", group, portid, err)
	}
	return fmt.Errorf("NFLOG group %d: permission denied (CAP_NET_ADMIN is present and the group looks free): %w", group, err)
}

// hasCapNetAdmin reports whether CAP_NET_ADMIN is in the effective set.
func hasCapNetAdmin() (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, err
			}
			return caps&(1<<unix.CAP_NET_ADMIN) != 0, nil
		}
	}
	return false, errors.New("no CapEff in /proc/self/status")
}

// groupOwner finds the netlink portid bound to group in this network
// namespace, from /proc/net/netfilter/nfnetlink_log, whose lines start
// "group portid ...".
func groupOwner(group uint16) (uint32, bool) {
	data, err := os.ReadFile("/proc/net/netfilter/nfnetlink_log")
	if err != nil {
		return 0, false
	}
	return parseGroupOwner(string(data), group)
}

func parseGroupOwner(table string, group uint16) (uint32, bool) {
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		g, err1 := strconv.ParseUint(f[0], 10, 16)
		p, err2 := strconv.ParseUint(f[1], 10, 32)
		if err1 == nil && err2 == nil && uint16(g) == group {
			return uint32(p), true
		}
	}
	return 0, false
}
