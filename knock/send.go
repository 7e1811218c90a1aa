package knock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"portknock/sequence"
)

// Net sends knocks with ordinary sockets, so the client needs no privilege:
//
//   - TCP: a non-blocking connect on a fresh socket, closed as soon as
//     connect returns. The kernel puts the SYN on its way inside the connect
//     call, so the knock is sent by then; closing a socket that is still
//     connecting discards it without another packet, so the server's
//     firewall sees exactly one SYN and no retransmits. If the port answers
//     (open, or closed with a RST) that answer is simply ignored.
//   - UDP: one datagram holding a single zero byte, the same as knock sends.
//
// Errors the kernel reports at once, such as no route to the host, are
// returned; nothing after the send is waited for.
type Net struct{}

// Send sends one knock to dst.
func (Net) Send(_ context.Context, dst netip.AddrPort, proto sequence.Proto) error {
	if !dst.IsValid() || dst.Port() == 0 {
		return fmt.Errorf("invalid destination %s", dst)
	}
	var err error
	switch proto {
	case sequence.TCP:
		err = sendTCP(dst)
	case sequence.UDP:
		err = sendUDP(dst)
	default:
		return fmt.Errorf("cannot knock with %s", proto)
	}
	// The caller already names the destination; keep only what went wrong
	// ("connect: network is unreachable").
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return err
}

// udpPayload is what a UDP knock carries: one zero byte, as knock sends, so
// that a firewall log cannot tell the two clients apart. The daemon looks
// only at the port.
var udpPayload = [1]byte{0}

func sendUDP(dst netip.AddrPort) error {
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(udpPayload[:])
	return err
}

// LocalAddr returns the address the kernel would send from to reach dst. It
// "connects" a UDP socket, which sends nothing: the kernel only picks a
// route and a source address, exactly as it will for the knocks.
func (Net) LocalAddr(_ context.Context, dst netip.AddrPort) (netip.Addr, error) {
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), nil
}
