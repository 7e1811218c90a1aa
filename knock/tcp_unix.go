//go:build unix

package knock

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

// sendTCP starts a connection to dst on a non-blocking socket and closes it
// without waiting. The net package cannot do this: its dialer always waits
// for the handshake, and a dialer with a tiny timeout cannot tell "SYN sent,
// then timed out" from "timed out before connect was even called".
func sendTCP(dst netip.AddrPort) error {
	sa, family, err := sockaddr(dst)
	if err != nil {
		return err
	}
	// Hold ForkLock so that no child started elsewhere in the process can
	// inherit the socket between socket() and the close-on-exec flag.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer syscall.Close(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		return os.NewSyscallError("setnonblock", err)
	}
	err = syscall.Connect(fd, sa)
	switch {
	case err == nil,
		// The SYN is out and the handshake goes on without us; this is
		// the usual outcome.
		errors.Is(err, syscall.EINPROGRESS),
		// An interrupted non-blocking connect still completes
		// asynchronously (POSIX), so the SYN was sent.
		errors.Is(err, syscall.EINTR),
		// Some systems report a RST from a local closed port at once; the
		// SYN that drew it was the knock.
		errors.Is(err, syscall.ECONNREFUSED):
		return nil
	}
	return os.NewSyscallError("connect", err)
}

func sockaddr(dst netip.AddrPort) (syscall.Sockaddr, int, error) {
	a := dst.Addr()
	if a.Is4() {
		return &syscall.SockaddrInet4{Port: int(dst.Port()), Addr: a.As4()}, syscall.AF_INET, nil
	}
	zone, err := zoneIndex(a.Zone())
	if err != nil {
		return nil, 0, err
	}
	return &syscall.SockaddrInet6{Port: int(dst.Port()), ZoneId: zone, Addr: a.As16()}, syscall.AF_INET6, nil
}

// zoneIndex turns an IPv6 zone ("eth0" or "2") into the interface index a
// link-local destination needs.
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}
