//go:build linux

// Command synflood floods knock ports on loopback with TCP SYNs from
// spoofed source addresses, each SYN from its own, bounded in packets and in
// time, optionally paced, and can send real knock sequences in the middle of
// it.
//
// The SYNs are written whole (IP header included) to a raw socket, a batch
// per sendmmsg call, so that the per-packet cost is the kernel's path
// through the firewall and NFLOG rather than socket set-up. The source of
// the i-th SYN (counted over all threads, from 0) is 127.x.y.z with
// x = 1 + (i>>16)%255, y = i>>8 & 255, z = i & 255: the first 16,711,680
// SYNs all come from distinct addresses, in 127.1.0.0–127.255.255.255.
// Source ports and sequence numbers are random, each destination port one
// of -ports. 127.0.0.0/16 is never a flood source: the destination and the
// real knocks live there, so a real knock is never disturbed by a spoofed
// packet that shares its address.
//
// With -knocks K, K real knock sequences are sent during the flood, from
// 127.0.1.1, 127.0.1.2, ..., one every -knock-every, each printed as
// "knock SRC at T"; whoever reads the door's log can tell which opened.
//
// It only sends to a loopback destination and only from inside a network
// namespace that has no interface but lo.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"portknock/bench/netbench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "synflood:", err)
		os.Exit(1)
	}
}

type options struct {
	dst        netip.Addr
	ports      []uint16
	count      uint64
	maxTime    time.Duration
	workers    int
	rate       float64
	batch      int
	knocks     int
	knockStart time.Duration
	knockEvery time.Duration
	seq        []netbench.Step
}

func run() error {
	var o options
	var dst, ports, seq string
	flag.StringVar(&dst, "dst", "127.0.0.1", "destination `address` (loopback only)")
	flag.StringVar(&ports, "ports", "7000,8000", "destination `ports`, one picked at random per SYN")
	flag.Uint64Var(&o.count, "count", 2_000_000, "send at most this many SYNs")
	flag.DurationVar(&o.maxTime, "time", 30*time.Second, "flood for at most this long")
	flag.IntVar(&o.workers, "workers", runtime.NumCPU(), "sending threads")
	flag.Float64Var(&o.rate, "rate", 0, "total SYNs per second (0: as fast as the threads can)")
	flag.IntVar(&o.batch, "batch", 64, "SYNs per sendmmsg call")
	flag.IntVar(&o.knocks, "knocks", 0, "real knock sequences to send during the flood")
	flag.DurationVar(&o.knockStart, "knock-start", time.Second, "first real knock this long after the flood starts")
	flag.DurationVar(&o.knockEvery, "knock-every", 500*time.Millisecond, "time between real knocks")
	flag.StringVar(&seq, "seq", "7000,8000,9000/udp", "the real knocks' `sequence`")
	flag.Parse()

	var err error
	if o.dst, err = netip.ParseAddr(dst); err != nil {
		return err
	}
	if err := netbench.CheckLoopback(o.dst); err != nil {
		return err
	}
	for _, p := range strings.Split(ports, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("bad port %q", p)
		}
		o.ports = append(o.ports, uint16(n))
	}
	if o.seq, err = netbench.ParseSequence(seq); err != nil {
		return err
	}
	if o.workers < 1 || o.batch < 1 || o.batch > 1024 || o.count == 0 || o.maxTime <= 0 || o.knocks < 0 || o.knocks > 250 {
		return errors.New("need -workers ≥ 1, 1 ≤ -batch ≤ 1024, -count > 0, -time > 0, 0 ≤ -knocks ≤ 250")
	}
	if err := netbench.RequirePrivateNetNS(); err != nil {
		return err
	}
	return flood(&o)
}

func flood(o *options) error {
	var sent, errs atomic.Uint64
	var claimed atomic.Uint64 // SYNs handed out to workers, to stop at -count
	start := time.Now()
	deadline := start.Add(o.maxTime)
	done := make(chan struct{})

	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for w := range o.workers {
		wg.Go(func() {
			err := worker(o, uint64(w), start, deadline, &claimed, &sent, &errs)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		})
	}
	var kwg sync.WaitGroup
	if o.knocks > 0 {
		kwg.Go(func() { sendKnocks(o, start, done) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	kwg.Wait()
	n := sent.Load()
	fmt.Printf("flood sent=%d seconds=%.2f rate=%.0f/s workers=%d send_errors=%d\n",
		n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), o.workers, errs.Load())
	return firstErr
}

// sendKnocks sends the real knock sequences while the flood lasts.
func sendKnocks(o *options, start time.Time, done <-chan struct{}) {
	t := time.NewTimer(o.knockStart)
	defer t.Stop()
	for i := range o.knocks {
		select {
		case <-done:
			return
		case <-t.C:
		}
		src := netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})
		at := time.Since(start)
		var err error
		for _, st := range o.seq {
			if err = st.Send(src, o.dst); err != nil {
				break
			}
		}
		if err != nil {
			fmt.Printf("knock %s at %.2fs failed: %v\n", src, at.Seconds(), err)
		} else {
			fmt.Printf("knock %s at %.2fs\n", src, at.Seconds())
		}
		t.Reset(o.knockEvery)
	}
}

// synLen is an IPv4 header and a TCP header without options.
const synLen = 20 + 20

// mmsghdr is struct mmsghdr of the 64-bit Linux ABI; x/sys/unix has no
// sendmmsg.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// worker sends its share of SYNs on its own raw socket and thread until
// the count is reached or the deadline passes.
func worker(o *options, id uint64, start, deadline time.Time, claimed, sent, errs *atomic.Uint64) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// IPPROTO_RAW implies IP_HDRINCL: we write the IP header ourselves and
	// the kernel fills in its checksum, length and id.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	dst := o.dst.As4()
	// Connected, the socket needs no address per message.
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst}); err != nil {
		return fmt.Errorf("connect raw socket: %w", err)
	}

	bufs := make([]byte, o.batch*synLen)
	iovs := make([]unix.Iovec, o.batch)
	hdrs := make([]mmsghdr, o.batch)
	for i := range o.batch {
		p := bufs[i*synLen : (i+1)*synLen]
		initSYN(p, dst)
		iovs[i].Base = &p[0]
		iovs[i].SetLen(synLen)
		hdrs[i].hdr.Iov = &iovs[i]
		hdrs[i].hdr.SetIovlen(1)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), id))
	perWorker := o.rate / float64(o.workers)
	var mine uint64
	for time.Now().Before(deadline) {
		// Claim a batch, SYNs first to end; the last one may be short.
		end := claimed.Add(uint64(o.batch))
		first := end - uint64(o.batch)
		if first >= o.count {
			return nil
		}
		n := int(min(end, o.count) - first)
		for i := range n {
			p := bufs[i*synLen : (i+1)*synLen]
			r := rng.Uint64()
			fillSYN(p, floodSource(first+uint64(i)), dst, uint16(r), o.ports[int(r>>56)%len(o.ports)], uint32(r>>16))
		}
		for off := 0; off < n; {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[off])), uintptr(n-off), 0, 0, 0)
			if e != 0 {
				if e == unix.ENOBUFS || e == unix.EAGAIN || e == unix.EINTR {
					// The queue is full: retry until the deadline, not past it.
					errs.Add(1)
					if !time.Now().Before(deadline) {
						return nil
					}
					if e != unix.EINTR {
						time.Sleep(50 * time.Microsecond)
					}
					continue
				}
				return fmt.Errorf("sendmmsg: %w", e)
			}
			off += int(r)
			sent.Add(uint64(r))
			mine += uint64(r)
		}
		if perWorker > 0 {
			// Ahead of the rate: wait until this worker's share is due,
			// but not past the deadline.
			due := start.Add(time.Duration(float64(mine) / perWorker * float64(time.Second)))
			if d := min(time.Until(due), time.Until(deadline)); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return nil
}

// floodSource is the source address of the i-th SYN: 127.x.y.z with
// x = 1 + (i>>16)%255, so never in 127.0.0.0/16, and distinct for the
// first 255·65536 SYNs.
func floodSource(i uint64) [4]byte {
	return [4]byte{127, byte(1 + (i>>16)%255), byte(i >> 8), byte(i)}
}

// initSYN writes the fields that are the same in every SYN.
func initSYN(p []byte, dst [4]byte) {
	clear(p)
	p[0] = 0x45 // IPv4, 20-byte header
	binary.BigEndian.PutUint16(p[2:], synLen)
	p[8] = 64 // TTL
	p[9] = unix.IPPROTO_TCP
	copy(p[16:20], dst[:])
	t := p[20:]
	t[12] = 5 << 4 // 20-byte TCP header
	t[13] = 0x02   // SYN
	binary.BigEndian.PutUint16(t[14:], 64240)
}

// fillSYN sets what varies per SYN and the TCP checksum. The firewall does
// not check it, but a flood of packets with bad checksums would be a flood
// of something else.
func fillSYN(p []byte, src, dst [4]byte, sport, dport uint16, seq uint32) {
	copy(p[12:16], src[:])
	t := p[20:]
	binary.BigEndian.PutUint16(t[0:], 1024+sport%64512)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	t[16], t[17] = 0, 0
	// Pseudo-header: addresses, protocol, TCP length.
	sum := uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:])) +
		unix.IPPROTO_TCP + 20
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(t[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(t[16:], ^uint16(sum))
}
