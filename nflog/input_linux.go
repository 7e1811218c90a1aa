package nflog

import (
	"bufio"
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

	gonflog "github.com/florianl/go-nflog/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"portknock/sequence"
)

// Defaults for an Input's settings.
const (
	// DefaultReadBuffer is the socket receive buffer: large, so that a burst
	// of logged packets waits in the kernel instead of being dropped.
	DefaultReadBuffer = 4 << 20
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

	packets, events, overflow, enobufs, gaps atomic.Uint64
	skipped                                  [reasonCount]atomic.Uint64
}

// Stats counts what an Input saw.
type Stats struct {
	// Packets counts logged packets received.
	Packets uint64
	// Events counts packets handed on as knock events.
	Events uint64
	// Skipped counts packets that were not events, indexed by Reason.
	Skipped [reasonCount]uint64
	// Overflow counts events dropped because the matcher's queue was full.
	Overflow uint64
	// KernelDrops counts log messages the kernel could not deliver, known
	// from gaps in their sequence numbers.
	KernelDrops uint64
	// Overruns counts times the socket buffer overflowed (ENOBUFS).
	Overruns uint64
}

// Stats returns the counters so far; safe while Run runs.
func (in *Input) Stats() Stats {
	s := Stats{
		Packets:     in.packets.Load(),
		Events:      in.events.Load(),
		Overflow:    in.overflow.Load(),
		KernelDrops: in.gaps.Load(),
		Overruns:    in.enobufs.Load(),
	}
	for i := range s.Skipped {
		s.Skipped[i] = in.skipped[i].Load()
	}
	return s
}

// Run reads every group until ctx ends, calling emit for each knock
// event. emit must not block: it reports false when the event could not
// be queued, which is counted. A group whose socket breaks is reopened
// with backoff; Run fails only when a group cannot be bound at all at
// start, with an error that says why.
func (in *Input) Run(ctx context.Context, emit func(*sequence.Event) bool) error {
	if in.Logger == nil {
		in.Logger = slog.New(slog.DiscardHandler)
	}
	if in.Now == nil {
		in.Now = time.Now
	}
	if len(in.Groups) == 0 {
		return errors.New("no NFLOG groups")
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

// groupSocket is one bound NFLOG group.
type groupSocket struct {
	group  uint16
	nf     *gonflog.Nflog
	cancel context.CancelFunc
	broken chan error // the receive loop stopped on an error

	// Touched only by go-nflog's receive goroutine.
	lastSeq uint32
	haveSeq bool
	// Losses not logged yet, added by the receive goroutine and logged by
	// keep once a second, so that a flood cannot become a flood of log
	// lines and the last losses of a burst are still reported promptly.
	pendDrops, pendOverruns atomic.Uint64
}

func (s *groupSocket) close() {
	// The receive context must end before Close, or Close waits on a
	// receive loop that never ends.
	s.cancel()
	s.nf.Close()
}

// keep runs a group's socket until ctx ends, reopening it with backoff
// when it breaks.
func (in *Input) keep(ctx context.Context, s *groupSocket, emit func(*sequence.Event) bool) {
	backoff := time.Second
	report := time.NewTicker(time.Second)
	defer report.Stop()
	for {
		select {
		case <-ctx.Done():
			s.close()
			in.flushDrops(s)
			return
		case <-report.C:
			in.flushDrops(s)
			continue
		case err := <-s.broken:
			s.close()
			in.flushDrops(s)
			in.Logger.Error("NFLOG socket failed; reopening", "input", in.Name, "group", s.group, "err", err, "retry_in", backoff)
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
				in.Logger.Error("cannot reopen NFLOG group", "input", in.Name, "group", s.group, "err", err, "retry_in", backoff)
				continue
			}
			in.Logger.Info("NFLOG group reopened", "input", in.Name, "group", s.group)
			s, backoff = ns, time.Second
			break
		}
	}
}

// open binds one group and starts receiving from it.
func (in *Input) open(ctx context.Context, group uint16, emit func(*sequence.Event) bool) (*groupSocket, error) {
	snap := in.SnapLen
	if snap == 0 {
		snap = DefaultSnapLen
	}
	nf, err := gonflog.Open(&gonflog.Config{
		Group:    group,
		Copymode: gonflog.CopyPacket,
		Bufsize:  snap,
		// Without a threshold of one packet the kernel batches log
		// messages for up to a second, delaying every knock.
		QThresh: 1,
		Flags:   gonflog.FlagSeq,
		NetNS:   in.NetNS,
	})
	if err != nil {
		return nil, fmt.Errorf("NFLOG group %d: opening netlink socket: %w", group, err)
	}
	rbuf := in.ReadBuffer
	if rbuf <= 0 {
		rbuf = DefaultReadBuffer
	}
	if err := setReadBuffer(nf.Con, rbuf); err != nil {
		in.Logger.Warn("cannot set NFLOG socket receive buffer", "input", in.Name, "group", group, "bytes", rbuf, "err", err)
	}
	// ENOBUFS is reported to us (counted), not hidden.
	rctx, cancel := context.WithCancel(ctx)
	s := &groupSocket{group: group, nf: nf, cancel: cancel, broken: make(chan error, 1)}
	err = nf.RegisterWithErrorFunc(rctx,
		func(a gonflog.Attribute) int { in.hook(s, &a, emit); return 0 },
		func(err error) int { return in.receiveError(rctx, s, err) })
	if err != nil {
		cancel()
		nf.Close()
		return nil, explainBindError(group, err)
	}
	in.Logger.Info("reading NFLOG group", "input", in.Name, "group", group, "rcvbuf", rbuf, "snaplen", snap)
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
	select {
	case s.broken <- err:
	default:
	}
	return 1
}

// hook handles one logged packet on go-nflog's receive goroutine. It must
// not block: the kernel drops what the socket cannot hold.
func (in *Input) hook(s *groupSocket, a *gonflog.Attribute, emit func(*sequence.Event) bool) {
	in.packets.Add(1)
	now := in.Now()
	if a.Seq != nil {
		if s.haveSeq && *a.Seq != s.lastSeq+1 {
			lost := uint64(*a.Seq - s.lastSeq - 1)
			in.gaps.Add(lost)
			s.pendDrops.Add(lost)
		}
		s.lastSeq, s.haveSeq = *a.Seq, true
	}
	if in.Prefix != "" && (a.Prefix == nil || trimPrefix(*a.Prefix) != strings.TrimSpace(in.Prefix)) {
		in.skipped[ReasonPrefix].Add(1)
		return
	}
	if a.Hook != nil && (*a.Hook == hookLocalOut || *a.Hook == hookPostRouting) {
		in.skipped[ReasonOutbound].Add(1)
		return
	}
	if a.Payload == nil {
		in.skipped[ReasonTruncated].Add(1)
		return
	}
	var ev sequence.Event
	if r := ParsePacket(*a.Payload, &ev); r != ReasonNone {
		in.skipped[r].Add(1)
		return
	}
	ev.Time, ev.Input = now, in.Name
	if a.Timestamp != nil {
		ev.Time = *a.Timestamp
	}
	if !emit(&ev) {
		in.overflow.Add(1)
		return
	}
	in.events.Add(1)
}

// flushDrops logs the losses not reported yet, if any: messages the kernel
// dropped (known from sequence gaps) and receive buffer overruns (ENOBUFS,
// after which the kernel drops until the buffer has room).
func (in *Input) flushDrops(s *groupSocket) {
	drops, overruns := s.pendDrops.Swap(0), s.pendOverruns.Swap(0)
	switch {
	case drops > 0:
		in.Logger.Warn(fmt.Sprintf("kernel dropped %d log messages", drops), "input", in.Name, "group", s.group,
			"dropped", drops, "overruns", overruns)
	case overruns > 0:
		in.Logger.Warn("NFLOG receive buffer overrun; the messages lost are counted when the next one arrives",
			"input", in.Name, "group", s.group, "overruns", overruns)
	}
}

// trimPrefix removes what the kernel and rule syntax add around a prefix.
func trimPrefix(p string) string { return strings.TrimSpace(strings.TrimRight(p, "\x00")) }

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
