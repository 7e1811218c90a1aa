package nflog

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"portknock/input"
)

// The receive path: one netlink socket per group, read by a loop of ours
// into one buffer reused for every datagram, each log message decoded in
// place (wire.go). go-nflog's loop allocated a buffer and a slice of
// messages for each datagram (after a first receive call that only peeks
// at its size) and a dozen values for each message; this one makes no
// allocation after the socket is open, so a flood costs no garbage
// collection, and a datagram costs one read.

// recvBufSize holds the largest datagram the kernel makes: a batch fills
// at most maxBufSize, and a single message larger than that (a packet
// copied up to the 64 KiB copy range) is sent alone.
const recvBufSize = maxBufSize + 80<<10

// bindTimeout bounds the wait for the kernel's answer to binding a group.
const bindTimeout = 10 * time.Second

// dial opens a netlink socket in the input's namespace, binds group to it
// and starts its receive loop, which hands each log message to hook.
func (in *Input) dial(ctx context.Context, group uint16, snap uint32, rbuf int, emit input.Emit) (*groupSocket, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: in.NetNS})
	if err != nil {
		return nil, fmt.Errorf("NFLOG group %d: opening netlink socket: %w", group, err)
	}
	if err := onlyFromKernel(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("NFLOG group %d: %w", group, err)
	}
	if err := setReadBuffer(conn, rbuf); err != nil {
		in.log.Warn("cannot set NFLOG socket receive buffer", "input", in.Name, "group", group, "bytes", rbuf, "err", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	s := &groupSocket{
		group: group, conn: conn, cancel: cancel,
		broken: make(chan error, 1), done: make(chan struct{}), bound: make(chan int32, 1),
	}
	if in.batch.above > 0 {
		s.batch = newBatchSwitch(in.batch.above, in.batch.below, batchHold)
	}
	// The loop runs before the bind request is sent, so that it sees the
	// answer, and log messages that may come before it.
	s.bindSeq = s.cfgSeq.Add(1)
	go in.receive(rctx, s, emit)
	if _, err := conn.Send(bindMessage(group, snap, s.bindSeq)); err != nil {
		s.close()
		return nil, fmt.Errorf("NFLOG group %d: sending the bind request: %w", group, err)
	}
	t := time.NewTimer(bindTimeout)
	defer t.Stop()
	select {
	case errno := <-s.bound:
		if errno != 0 {
			s.close()
			return nil, explainBindError(group, syscall.Errno(errno))
		}
	case err := <-s.broken:
		s.close()
		return nil, fmt.Errorf("NFLOG group %d: reading the answer to the bind request: %w", group, err)
	case <-t.C:
		s.close()
		return nil, fmt.Errorf("NFLOG group %d: no answer from the kernel to the bind request within %v", group, bindTimeout)
	case <-ctx.Done():
		s.close()
		return nil, fmt.Errorf("NFLOG group %d: %w", group, ctx.Err())
	}
	return s, nil
}

// receive reads the socket until ctx ends or it breaks, and then closes
// s.done.
func (in *Input) receive(ctx context.Context, s *groupSocket, emit input.Emit) {
	defer close(s.done)
	rc, err := s.conn.SyscallConn()
	if err != nil {
		in.receiveError(ctx, s, err)
		return
	}
	buf := make([]byte, recvBufSize)
	hand := newQueueWaiter(ctx, emit).hand
	var (
		n    int
		rerr error
		msg  logMsg
	)
	// The socket does not block: the runtime's poller waits for it, and
	// closing it (or a deadline) ends the wait.
	read := func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), buf)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	}
	for {
		err := rc.Read(read)
		if err == nil && rerr != nil {
			err = &netlink.OpError{Op: "receive", Err: rerr}
		}
		if err != nil {
			if in.receiveError(ctx, s, err) != 0 {
				return
			}
			continue
		}
		if !in.datagram(ctx, s, buf[:n], &msg, hand) {
			return
		}
	}
}

// datagram handles the messages of one datagram, reporting false when the
// socket must stop reading.
func (in *Input) datagram(ctx context.Context, s *groupSocket, b []byte, msg *logMsg, emit input.Emit) bool {
	for len(b) > 0 {
		m, rest, err := nextMessage(b)
		if err != nil {
			// The kernel does not make these; if it did, the rest of
			// the datagram cannot be split either.
			in.packets.Add(1)
			in.skipped[ReasonTruncated].Add(1)
			return true
		}
		b = rest
		switch m.typ {
		case nfnlSubsysULOG<<8 | nfulnlMsgPkt:
			if err := decodeLog(m.body, msg); err != nil {
				in.packets.Add(1)
				in.skipped[ReasonTruncated].Add(1)
				continue
			}
			in.hook(s, msg, emit)
		case nlmsgError:
			errno, seq, err := errorCode(m.body)
			if err != nil {
				continue
			}
			if seq == s.bindSeq && seq != 0 {
				select {
				case s.bound <- -errno:
				default:
				}
				continue
			}
			if errno == 0 {
				continue // an acknowledgement
			}
			op := &netlink.OpError{Op: "receive", Err: syscall.Errno(-errno), Sequence: seq}
			if in.receiveError(ctx, s, op) != 0 {
				return false
			}
		}
		// NLMSG_DONE ends a batch; nothing else is sent to a log socket.
	}
	return true
}

// close ends the socket and waits for its receive loop.
func (s *groupSocket) close() {
	s.cancel()
	s.conn.Close()
	<-s.done
}

// onlyFromKernel connects the socket to the kernel. Any process with
// CAP_NET_ADMIN in the namespace can send a netlink datagram to a socket's
// port ID, and a log message sent that way would read as a knock from any
// address it names; the kernel refuses unicasts from anyone but the peer
// of a connected netlink socket (ECONNREFUSED to the sender), so after
// this only the kernel's messages arrive. Checking each datagram's sender
// instead would cost a receive call that returns the address.
func onlyFromKernel(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cerr = unix.Connect(int(fd), &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("connecting the netlink socket to the kernel: %w", cerr)
	}
	return nil
}
