// Package nflog reads packets that firewall rules log to NFLOG groups over
// netlink, and turns them into knock events.
//
// Parsing a logged packet (ParsePacket) is pure and separate from the
// socket loop (Input), so it can be tested with captured bytes. Reading
// needs only CAP_NET_ADMIN: the kernel does the filtering, nothing sniffs.
package nflog

import (
	"encoding/binary"
	"net/netip"

	"portknock/input"
	"portknock/sequence"
)

// Reason says why a logged packet is not a knock event: the reasons of
// every input, so that NFLOG and text inputs are counted alike.
type Reason = input.Reason

// Reasons a packet is not an event, named here as ParsePacket returns them
// (see package input). ReasonNone means it is one.
const (
	ReasonNone      = input.ReasonNone
	ReasonTruncated = input.ReasonTruncated
	ReasonNotIP     = input.ReasonNotIP
	ReasonFragment  = input.ReasonFragment
	ReasonNoPorts   = input.ReasonNoPorts
	ReasonOutbound  = input.ReasonOutbound
	ReasonPrefix    = input.ReasonPrefix

	reasonCount = input.NumReasons
)

// IP protocol numbers and IPv6 extension headers that matter here.
const (
	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDestOpts = 60
)

// maxExtHeaders bounds the IPv6 extension header walk; real packets have
// a handful, and a crafted chain must not cost more than a few steps.
const maxExtHeaders = 16

// ParsePacket parses a raw IPv4 or IPv6 packet as NFLOG delivers it and,
// when it is a first (or only) fragment of a TCP or UDP packet, fills ev's
// Src, Dst, Port, Proto, Flags and FlagsKnown. Time and Input are the
// caller's. ev is written only when the reason is ReasonNone.
func ParsePacket(pkt []byte, ev *sequence.Event) Reason {
	if len(pkt) < 1 {
		return ReasonTruncated
	}
	var (
		src, dst netip.Addr
		proto    byte
		l4       []byte
	)
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return ReasonTruncated
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl {
			return ReasonTruncated
		}
		if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
			return ReasonFragment
		}
		src = netip.AddrFrom4([4]byte(pkt[12:16]))
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		proto, l4 = pkt[9], pkt[ihl:]
	case 6:
		if len(pkt) < 40 {
			return ReasonTruncated
		}
		src = netip.AddrFrom16([16]byte(pkt[8:24])).Unmap()
		dst = netip.AddrFrom16([16]byte(pkt[24:40])).Unmap()
		var r Reason
		if proto, l4, r = walkIPv6(pkt[6], pkt[40:]); r != ReasonNone {
			return r
		}
	default:
		return ReasonNotIP
	}

	switch proto {
	case protoTCP:
		if len(l4) < 14 {
			return ReasonTruncated
		}
		ev.Proto, ev.Flags, ev.FlagsKnown = sequence.TCP, sequence.TCPFlags(l4[13]), true
	case protoUDP:
		if len(l4) < 4 {
			return ReasonTruncated
		}
		ev.Proto, ev.Flags, ev.FlagsKnown = sequence.UDP, 0, false
	default:
		return ReasonNoPorts
	}
	ev.Src, ev.Dst = src, dst
	ev.Port = binary.BigEndian.Uint16(l4[2:4])
	return ReasonNone
}

// walkIPv6 follows the extension header chain from next to the upper
// layer, returning its protocol and bytes.
func walkIPv6(next byte, b []byte) (byte, []byte, Reason) {
	for range maxExtHeaders {
		switch next {
		case protoHopByHop, protoRouting, protoDestOpts:
			if len(b) < 8 {
				return 0, nil, ReasonTruncated
			}
			n := (int(b[1]) + 1) * 8
			if len(b) < n {
				return 0, nil, ReasonTruncated
			}
			next, b = b[0], b[n:]
		case protoFragment:
			if len(b) < 8 {
				return 0, nil, ReasonTruncated
			}
			if binary.BigEndian.Uint16(b[2:4])&0xfff8 != 0 {
				return 0, nil, ReasonFragment
			}
			next, b = b[0], b[8:]
		case protoAH:
			if len(b) < 8 {
				return 0, nil, ReasonTruncated
			}
			n := (int(b[1]) + 2) * 4
			if len(b) < n {
				return 0, nil, ReasonTruncated
			}
			next, b = b[0], b[n:]
		default:
			return next, b, ReasonNone
		}
	}
	return 0, nil, ReasonNoPorts
}
