// Command pflog writes pcap files with link type DLT_PFLOG, one packet per
// case, and next to each a file saying what the parser must make of the
// line tcpdump prints for that packet. The pcap files are then printed by
// the real tcpdump (see ../pflog.sh), so the golden text is the tool's own
// output and the expectations come from the packets' bytes, not from the
// text.
//
// Usage: go run ./testdata/gen/pflog -o testdata/pflog
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// pf's values, as in tcpdump's pflog.h.
const (
	actPass  = 0
	actDrop  = 1
	actMatch = 12 // OpenBSD's PF_MATCH; printed as unkn(12) elsewhere

	dirIn  = 1
	dirOut = 2

	afInet        = 2
	afInet6BSD    = 24 // OpenBSD
	afInet6FreeBS = 28 // FreeBSD

	noSubrule = 0xffffffff
	uidMax    = 0xffffffff

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoFrag6  = 44
	protoICMPv6 = 58
	protoDCCP   = 33
	protoSCTP   = 132
	protoUDPLit = 136

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
	tcpECE = 0x40
	tcpCWR = 0x80
)

// hdr is the part of struct pfloghdr the cases vary.
type hdr struct {
	action, reason, dir uint8
	ifname, ruleset     string
	rulenr, subrulenr   uint32
	uid                 uint32
	freebsd             bool // FreeBSD's longer header (ridentifier)
	af                  uint8
}

// pkt describes the logged IP packet.
type pkt struct {
	src, dst     string
	proto        uint8
	sport, dport uint16
	flags        uint8
	fragOff      uint16 // in 8-byte units
	moreFrags    bool
	icmpError    bool // an ICMP unreachable quoting a TCP packet
	snap         int  // bytes of the packet captured, 0 for all
}

type tcase struct {
	name string
	want string // "event" or a textlog reason name
	h    hdr
	p    pkt
}

func knockHdr() hdr {
	return hdr{action: actDrop, dir: dirIn, ifname: "em0", rulenr: 3, subrulenr: noSubrule, uid: uidMax}
}

func with(f func(*hdr)) hdr {
	h := knockHdr()
	f(&h)
	return h
}

var cases = []tcase{
	{"tcp syn", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"tcp syn port 1", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 65535, dport: 1, flags: tcpSYN}},
	{"tcp syn port 65535", "event", knockHdr(), pkt{src: "198.51.100.200", dst: "192.0.2.1", proto: protoTCP, sport: 1, dport: 65535, flags: tcpSYN}},
	{"tcp syn-ack", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 8000, flags: tcpSYN | tcpACK}},
	{"tcp ack", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 8000, flags: tcpACK}},
	{"tcp rst", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 8000, flags: tcpRST}},
	{"tcp fin psh ack urg", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 8000, flags: tcpFIN | tcpPSH | tcpACK | tcpURG}},
	{"tcp syn ece cwr", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 8000, flags: tcpSYN | tcpECE | tcpCWR}},
	{"tcp no flags", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 8000}},
	{"udp", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 9000}},
	{"udp port tcpdump decodes (dns)", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 53}},
	{"udp port tcpdump decodes (rx)", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 7001}},
	{"udp port tcpdump decodes (ntp)", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 123}},
	{"udp port tcpdump decodes (snmp)", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 161}},
	{"udp port 0", "bad_port", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 0}},
	{"tcp port 0", "bad_port", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 0, flags: tcpSYN}},
	{"ipv6 tcp syn", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::7", dst: "2001:db8::1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"ipv6 tcp syn freebsd af", "event", with(func(h *hdr) { h.af = afInet6FreeBS }), pkt{src: "2001:db8:0:0:1:0:0:7", dst: "2001:db8::1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"ipv6 udp", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::7", dst: "2001:db8::1", proto: protoUDP, sport: 40000, dport: 9000}},
	{"ipv6 full address", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8:1234:5678:9abc:def0:1234:5678", dst: "2001:db8::1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"ipv6 address ending in digits", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::1:7", dst: "2001:db8::1", proto: protoUDP, sport: 40000, dport: 9000}},
	{"ipv6 address ending in ::", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::", dst: "2001:db8::1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"ipv4-mapped source", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "::ffff:192.0.2.7", dst: "::ffff:192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"ipv6 first fragment", "event", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::7", dst: "2001:db8::1", proto: protoUDP, sport: 40000, dport: 9000, moreFrags: true}},
	{"ipv6 later fragment", "fragment", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::7", dst: "2001:db8::1", proto: protoUDP, sport: 40000, dport: 9000, fragOff: 185}},
	{"ipv4 first fragment", "event", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 9000, moreFrags: true}},
	{"ipv4 later fragment tcp", "fragment", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, fragOff: 185}},
	{"ipv4 later fragment udp", "fragment", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 9000, fragOff: 185, moreFrags: true}},
	{"icmp echo", "no_ports", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoICMP}},
	{"icmp error quoting tcp", "no_ports", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoICMP, icmpError: true, sport: 7000, dport: 40000}},
	{"icmpv6 echo", "no_ports", with(func(h *hdr) { h.af = afInet6BSD }), pkt{src: "2001:db8::7", dst: "2001:db8::1", proto: protoICMPv6}},
	{"sctp", "bad_proto", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoSCTP, sport: 40000, dport: 7000}},
	{"dccp", "bad_proto", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoDCCP, sport: 40000, dport: 7000}},
	{"udplite (printed without ports)", "no_ports", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDPLit, sport: 40000, dport: 9000}},
	{"tcp header cut by the snap length", "truncated", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN, snap: 28}},
	{"gre", "no_ports", knockHdr(), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: 47}},
	{"block out", "outbound", with(func(h *hdr) { h.dir = dirOut }), pkt{src: "192.0.2.1", dst: "192.0.2.7", proto: protoTCP, sport: 7000, dport: 40000, flags: tcpSYN}},
	{"pass in", "prefix", with(func(h *hdr) { h.action = actPass }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 22, flags: tcpSYN}},
	{"match in (unkn here)", "prefix", with(func(h *hdr) { h.action = actMatch }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"anchor rule", "event", with(func(h *hdr) { h.rulenr = 0; h.ruleset = "knock"; h.subrulenr = 2 }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"nested anchor rule", "event", with(func(h *hdr) { h.rulenr = 5; h.ruleset = "ext/knock"; h.subrulenr = 0 }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoUDP, sport: 40000, dport: 9000}},
	{"reason fragment", "event", with(func(h *hdr) { h.reason = 2 }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"unknown reason", "event", with(func(h *hdr) { h.reason = 99 }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"socket uid", "event", with(func(h *hdr) { h.uid = 1000 }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"long interface name", "event", with(func(h *hdr) { h.ifname = "vlan0123456789ab" }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"interface with dot", "event", with(func(h *hdr) { h.ifname = "em0.100" }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"freebsd header", "event", with(func(h *hdr) { h.freebsd = true }), pkt{src: "192.0.2.7", dst: "192.0.2.1", proto: protoTCP, sport: 40000, dport: 7000, flags: tcpSYN}},
	{"freebsd header ipv6", "event", with(func(h *hdr) { h.freebsd = true; h.af = afInet6FreeBS }), pkt{src: "2001:db8::7", dst: "2001:db8::1", proto: protoUDP, sport: 40000, dport: 9000}},
}

func main() {
	out := flag.String("o", ".", "output directory")
	flag.Parse()
	var pc, want bytes.Buffer
	// pcap file header: magic, version 2.4, zone, sigfigs, snaplen, DLT_PFLOG.
	pc.Write(le32(0xa1b2c3d4))
	pc.Write(le16(2))
	pc.Write(le16(4))
	pc.Write(le32(0))
	pc.Write(le32(0))
	pc.Write(le32(65535))
	pc.Write(le32(117))
	base := time.Date(2026, 11, 22, 12, 0, 1, 123456000, time.UTC)
	for i, c := range cases {
		ts := base.Add(time.Duration(i) * 250 * time.Millisecond)
		frame := append(pflogHeader(c.h, c.p), ipPacket(c.h, c.p)...)
		pc.Write(le32(uint32(ts.Unix())))
		pc.Write(le32(uint32(ts.Nanosecond() / 1000)))
		caplen := len(frame)
		if c.p.snap > 0 {
			caplen = len(frame) - len(ipPacket(c.h, c.p)) + c.p.snap
		}
		pc.Write(le32(uint32(caplen)))
		pc.Write(le32(uint32(len(frame))))
		pc.Write(frame[:caplen])
		fmt.Fprintf(&want, "%s\t%s\n", c.want, describe(c, ts))
	}
	must(os.WriteFile(filepath.Join(*out, "upstream.pcap"), pc.Bytes(), 0o644))
	must(os.WriteFile(filepath.Join(*out, "upstream.want"), want.Bytes(), 0o644))
}

// describe renders what the parser must make of the packet's line, one
// tab-separated line: the reason ("event" for a knock), the capture time
// as seconds.microseconds, then for events the source, destination,
// port/protocol and TCP flags ("-" where unknown), and the case name.
func describe(c tcase, ts time.Time) string {
	stamp := fmt.Sprintf("%d.%06d", ts.Unix(), ts.Nanosecond()/1000)
	if c.want != "event" {
		return fmt.Sprintf("%s\t-\t-\t-\t-\t%s", stamp, c.name)
	}
	proto := "tcp"
	flags := flagNames(c.p.flags)
	if c.p.proto == protoUDP {
		proto, flags = "udp", "-"
	}
	src := netip.MustParseAddr(c.p.src).Unmap()
	dst := netip.MustParseAddr(c.p.dst).Unmap()
	return fmt.Sprintf("%s\t%s\t%s\t%d/%s\t%s\t%s", stamp, src, dst, c.p.dport, proto, flags, c.name)
}

// flagNames spells TCP flags as sequence.TCPFlags.String does ("syn,ack"),
// or "none".
func flagNames(f uint8) string {
	names := []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"}
	s := ""
	for i, n := range names {
		if f&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += n
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// pflogHeader builds struct pfloghdr: the 61 bytes every system shares,
// padded to a 4-byte boundary, or FreeBSD's longer form with ridentifier.
func pflogHeader(h hdr, p pkt) []byte {
	af := h.af
	if af == 0 {
		af = afInet
	}
	b := make([]byte, 64)
	b[0] = 61
	b[1] = af
	b[2] = h.action
	b[3] = h.reason
	copy(b[4:20], h.ifname)
	copy(b[20:36], h.ruleset)
	binary.BigEndian.PutUint32(b[36:], h.rulenr)
	binary.BigEndian.PutUint32(b[40:], h.subrulenr)
	binary.BigEndian.PutUint32(b[44:], h.uid)
	binary.BigEndian.PutUint32(b[48:], 0xffffffff) // pid: none
	binary.BigEndian.PutUint32(b[52:], 0)          // rule_uid
	binary.BigEndian.PutUint32(b[56:], 0xffffffff) // rule_pid
	b[60] = h.dir
	if h.freebsd {
		// ridentifier (4 bytes), reserve, pad2[3]: PFLOG_REAL_HDRLEN 69.
		b[0] = 69
		b = append(b, 0, 0, 0x30, 0x39, 0, 0, 0, 0)
	}
	return b
}

// ipPacket builds the logged packet: an IPv4 or IPv6 header and the
// transport header with a small payload.
func ipPacket(h hdr, p pkt) []byte {
	src, dst := netip.MustParseAddr(p.src), netip.MustParseAddr(p.dst)
	l4 := transport(p, src, dst)
	if src.Is4() {
		return ipv4(p, src, dst, l4)
	}
	return ipv6(p, src, dst, l4)
}

func transport(p pkt, src, dst netip.Addr) []byte {
	switch p.proto {
	case protoTCP:
		// 20-byte header and one option (MSS), as a SYN carries.
		t := make([]byte, 24)
		binary.BigEndian.PutUint16(t[0:], p.sport)
		binary.BigEndian.PutUint16(t[2:], p.dport)
		binary.BigEndian.PutUint32(t[4:], 123456)
		if p.flags&tcpACK != 0 {
			binary.BigEndian.PutUint32(t[8:], 654321)
		}
		t[12] = 6 << 4
		t[13] = p.flags
		binary.BigEndian.PutUint16(t[14:], 65535)
		if p.flags&tcpURG != 0 {
			binary.BigEndian.PutUint16(t[18:], 1)
		}
		copy(t[20:], []byte{2, 4, 0x05, 0xb4})
		binary.BigEndian.PutUint16(t[16:], l4sum(src, dst, protoTCP, t))
		return t
	case protoUDP:
		// One zero byte of payload, as the knock clients send.
		u := make([]byte, 9)
		binary.BigEndian.PutUint16(u[0:], p.sport)
		binary.BigEndian.PutUint16(u[2:], p.dport)
		binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
		binary.BigEndian.PutUint16(u[6:], l4sum(src, dst, protoUDP, u))
		return u
	case protoUDPLit:
		// Checksum coverage 8: the header only.
		u := make([]byte, 9)
		binary.BigEndian.PutUint16(u[0:], p.sport)
		binary.BigEndian.PutUint16(u[2:], p.dport)
		binary.BigEndian.PutUint16(u[4:], 8)
		binary.BigEndian.PutUint16(u[6:], l4sum(src, dst, protoUDPLit, u))
		return u
	case protoSCTP:
		// Common header and an empty ABORT chunk.
		m := make([]byte, 16)
		binary.BigEndian.PutUint16(m[0:], p.sport)
		binary.BigEndian.PutUint16(m[2:], p.dport)
		binary.BigEndian.PutUint32(m[4:], 0x42)
		m[12], m[15] = 6, 4
		return m
	case protoDCCP:
		// A DCCP-Request: generic header with extended sequence
		// number, then the service code.
		m := make([]byte, 20)
		binary.BigEndian.PutUint16(m[0:], p.sport)
		binary.BigEndian.PutUint16(m[2:], p.dport)
		m[4] = 5        // data offset, in 32-bit words
		m[8] = 0<<1 | 1 // type Request, X=1
		binary.BigEndian.PutUint32(m[16:], 42)
		return m
	case protoICMP:
		if p.icmpError {
			// Port unreachable quoting the start of a TCP packet we sent.
			inner := ipv4(pkt{proto: protoTCP}, dst, src, tcpStart(p.sport, p.dport))
			m := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, inner[:28]...)
			binary.BigEndian.PutUint16(m[2:], checksum(m, 0))
			return m
		}
		m := []byte{8, 0, 0, 0, 0, 1, 0, 1, 'k', 'n', 'o', 'c', 'k'}
		binary.BigEndian.PutUint16(m[2:], checksum(m, 0))
		return m
	case protoICMPv6:
		m := []byte{128, 0, 0, 0, 0, 1, 0, 1, 'k', 'n', 'o', 'c', 'k'}
		binary.BigEndian.PutUint16(m[2:], l4sum(src, dst, protoICMPv6, m))
		return m
	}
	return []byte("payload of another protocol")
}

func tcpStart(sport, dport uint16) []byte {
	t := make([]byte, 20)
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	t[12] = 5 << 4
	t[13] = tcpSYN
	return t
}

func ipv4(p pkt, src, dst netip.Addr, l4 []byte) []byte {
	if p.fragOff != 0 {
		l4 = bytes.Repeat([]byte{0xab}, 16) // a later fragment's payload
	}
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(b[4:], 4242)
	off := p.fragOff
	if p.moreFrags {
		off |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], off)
	b[8] = 64
	b[9] = p.proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b, 0))
	return append(b, l4...)
}

func ipv6(p pkt, src, dst netip.Addr, l4 []byte) []byte {
	next := p.proto
	if p.fragOff != 0 || p.moreFrags {
		if p.fragOff != 0 {
			l4 = bytes.Repeat([]byte{0xab}, 16)
		}
		f := make([]byte, 8, 8+len(l4))
		f[0] = next
		off := p.fragOff << 3
		if p.moreFrags {
			off |= 1
		}
		binary.BigEndian.PutUint16(f[2:], off)
		binary.BigEndian.PutUint32(f[4:], 0x4242)
		l4 = append(f, l4...)
		next = protoFrag6
	}
	b := make([]byte, 40, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6] = next
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, l4...)
}

// l4sum is the TCP/UDP/ICMPv6 checksum over the pseudo-header and seg,
// whose checksum field is zero.
func l4sum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	var ph []byte
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		ph = append(append(ph, s[:]...), d[:]...)
		ph = append(ph, 0, proto, byte(len(seg)>>8), byte(len(seg)))
	} else {
		s, d := src.As16(), dst.As16()
		ph = append(append(ph, s[:]...), d[:]...)
		ph = append(ph, 0, 0, byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, proto)
	}
	return checksum(seg, sum(ph))
}

func sum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func checksum(b []byte, initial uint32) uint16 {
	s := initial + sum(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
