// Package netbench holds what the benchmark programs that send packets
// share: a guard that refuses to run outside a private network namespace,
// and knocks sent from a chosen loopback source address.
//
// The benchmarks send thousands to millions of packets. They must only ever
// reach the loopback interface of a namespace the benchmark script made
// for itself, so every sender checks both where it runs and where it sends.
package netbench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Loopback is the IPv4 loopback network. Every address in it is local on
// lo, so each knock can come from its own source without any setup.
var Loopback = netip.MustParsePrefix("127.0.0.0/8")

// RequirePrivateNetNS fails unless the process runs in a network namespace
// that has no interface but lo, as the one a benchmark script makes with
// `ip netns add` does. The host's namespace always has others, so a sender
// started there by mistake stops before its first packet. Where process
// 1's namespace can be read, being in it is refused too.
func RequirePrivateNetNS() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("cannot list network interfaces: %w", err)
	}
	for _, ifi := range ifs {
		if ifi.Name != "lo" {
			return fmt.Errorf("refusing to send benchmark traffic in a network namespace with interface %s; run me with `ip netns exec` in a namespace made for the benchmark", ifi.Name)
		}
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("cannot tell which network namespace this is: %w", err)
	}
	if initNS, err := os.Readlink("/proc/1/ns/net"); err == nil && initNS == self {
		return errors.New("refusing to send benchmark traffic in the initial network namespace")
	}
	return nil
}

// CheckLoopback fails unless every address is an IPv4 loopback address.
func CheckLoopback(addrs ...netip.Addr) error {
	for _, a := range addrs {
		if !a.Is4() || !Loopback.Contains(a) {
			return fmt.Errorf("%s is not an IPv4 loopback address; benchmark traffic stays on lo", a)
		}
	}
	return nil
}

// KnockTCP sends one TCP SYN from src to dst the way the portknock client
// does: a non-blocking connect, closed at once. The socket is bound to src
// first, so each knock can come from its own 127.x.y.z address. On lo the
// SYN has passed the input hook, and so been logged, by the time connect
// returns.
func KnockTCP(src netip.Addr, dst netip.AddrPort) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	err = unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())})
	if err != nil && !errors.Is(err, unix.EINPROGRESS) && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("connect %s from %s: %w", dst, src, err)
	}
	return nil
}

// KnockUDP sends one UDP datagram holding a zero byte (what the client
// sends) from src to dst.
func KnockUDP(src netip.Addr, dst netip.AddrPort) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if err := unix.Sendto(fd, []byte{0}, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}); err != nil {
		return fmt.Errorf("send to %s from %s: %w", dst, src, err)
	}
	return nil
}

// Step is one knock: a port and whether it is UDP (else TCP).
type Step struct {
	Port uint16
	UDP  bool
}

// ParseSequence reads a knock sequence as "7000,8000,9000/udp" (a bare
// port or "/tcp" is TCP).
func ParseSequence(s string) ([]Step, error) {
	var seq []Step
	for len(s) > 0 {
		var item string
		item, s, _ = strings.Cut(s, ",")
		port, proto, _ := strings.Cut(item, "/")
		var st Step
		switch proto {
		case "", "tcp":
		case "udp":
			st.UDP = true
		default:
			return nil, fmt.Errorf("knock %q: protocol must be tcp or udp", item)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("knock %q: bad port", item)
		}
		st.Port = uint16(n)
		seq = append(seq, st)
	}
	if len(seq) == 0 {
		return nil, errors.New("empty knock sequence")
	}
	return seq, nil
}

// Send sends one knock step from src to dst (whose port is ignored).
func (st Step) Send(src, dst netip.Addr) error {
	ap := netip.AddrPortFrom(dst, st.Port)
	if st.UDP {
		return KnockUDP(src, ap)
	}
	return KnockTCP(src, ap)
}
