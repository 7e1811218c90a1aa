//go:build linux

// Command nflogcount is the bare NFLOG reader the flood benchmark holds
// portknockd against. It binds one group with the socket settings of
// portknockd's nflog input at rest — copy mode packet with a 256-byte snap
// length, a queue threshold of one message, sequence numbers, a 16 MiB
// receive buffer forced past net.core.rmem_max — through go-nflog (which
// portknockd used before it decoded messages itself), and does nothing
// with a message but count it and check its sequence number. Whatever it
// loses is lost to the kernel, the socket and the library, not to
// matching.
//
// -qthresh and -timeout set a fixed queue threshold and flush timeout
// instead, for comparison with portknockd batching under a flood (which it
// does with 64 and 10 ms).
//
// It prints "bound" when it is reading, and its totals when it gets
// SIGINT or SIGTERM, or after -max-time at the latest:
//
//	bare totals group=6 packets=N kernel_drops=G overruns=E
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func main() {
	group := flag.Uint("group", 6, "NFLOG `group` to read")
	rcvbuf := flag.Int("rcvbuf", 16<<20, "socket receive buffer in `bytes` (SO_RCVBUFFORCE)")
	snap := flag.Uint("snaplen", 256, "`bytes` of each packet the kernel copies")
	maxTime := flag.Duration("max-time", 5*time.Minute, "stop after this long even without a signal")
	qthresh := flag.Uint("qthresh", 1, "the kernel's queue threshold: log messages per datagram at most")
	timeout := flag.Duration("timeout", 0, "the kernel's flush timeout, in steps of 10ms (0: the kernel's default, 1s)")
	flag.Parse()
	if *group > 65535 || *qthresh < 1 || *qthresh > 1<<16 || *timeout < 0 {
		fmt.Fprintln(os.Stderr, "nflogcount: -group must be 0-65535, -qthresh 1-65536, -timeout not negative")
		os.Exit(2)
	}
	// The kernel counts the timeout in hundredths of a second.
	hundredths := uint32((*timeout + 10*time.Millisecond - 1) / (10 * time.Millisecond))
	if err := run(uint16(*group), *rcvbuf, uint32(*snap), uint32(*qthresh), hundredths, *maxTime); err != nil {
		fmt.Fprintln(os.Stderr, "nflogcount:", err)
		os.Exit(1)
	}
}

// counters are touched by go-nflog's receive goroutine and read at the
// end, after it may or may not have stopped, hence atomics.
type counters struct {
	packets, gaps, enobufs atomic.Uint64
	lastSeq                uint32
	haveSeq                bool
}

func run(group uint16, rcvbuf int, snap, qthresh, timeout uint32, maxTime time.Duration) error {
	nf, err := gonflog.Open(&gonflog.Config{
		Group:    group,
		Copymode: gonflog.CopyPacket,
		Bufsize:  snap,
		QThresh:  qthresh,
		Timeout:  timeout,
		Flags:    gonflog.FlagSeq,
	})
	if err != nil {
		return fmt.Errorf("group %d: %w", group, err)
	}
	if err := forceReadBuffer(nf.Con, rcvbuf); err != nil {
		nf.Close()
		return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, maxTime)
	defer cancel()
	rctx, rcancel := context.WithCancel(ctx)

	var c counters
	failed := make(chan error, 1)
	err = nf.RegisterWithErrorFunc(rctx,
		func(a gonflog.Attribute) int {
			c.packets.Add(1)
			if a.Seq != nil {
				if c.haveSeq && *a.Seq != c.lastSeq+1 {
					c.gaps.Add(uint64(*a.Seq - c.lastSeq - 1))
				}
				c.lastSeq, c.haveSeq = *a.Seq, true
			}
			return 0
		},
		func(err error) int {
			if rctx.Err() != nil {
				return 1
			}
			// As in portknockd: an overflowing socket is counted and
			// reading goes on; the sequence numbers tell what was lost.
			if errors.Is(err, unix.ENOBUFS) {
				c.enobufs.Add(1)
				return 0
			}
			var op *netlink.OpError
			if errors.As(err, &op) && (op.Timeout() || op.Temporary()) {
				return 0
			}
			failed <- err
			return 1
		})
	if err != nil {
		rcancel()
		nf.Close()
		return fmt.Errorf("group %d: %w", group, err)
	}
	fmt.Println("bound")

	select {
	case <-ctx.Done():
	case err = <-failed:
	}
	// The receive context must end before Close, or Close waits on a
	// receive that never returns.
	rcancel()
	nf.Close()
	fmt.Printf("bare totals group=%d packets=%d kernel_drops=%d overruns=%d\n",
		group, c.packets.Load(), c.gaps.Load(), c.enobufs.Load())
	return err
}

// forceReadBuffer sets the socket's receive buffer past net.core.rmem_max,
// which needs CAP_NET_ADMIN, as portknockd does.
func forceReadBuffer(c *netlink.Conn, n int) error {
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
	return serr
}
