package textlog

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/sequence"
)

// nfParser returns a parser whose stamps without a year or offset are
// deterministic: the current time is nfNow and the local zone UTC.
func nfParser(f Format, prefix string) Parser {
	return Parser{Format: f, Prefix: prefix, Now: nfNow, Location: time.UTC}
}

var nfNow = time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)

// Kernel text as nf_log_syslog.c prints it, without a prefix. The last
// blank is the kernel's own; syslog daemons usually drop it.
const (
	nfMAC4  = "MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 "
	nfMAC6  = "MAC=52:54:00:12:34:56:52:54:00:65:43:21:86:dd "
	nfIP4   = "SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF "
	nfIP6   = "SRC=2001:0db8:0000:0000:0000:0000:0000:0007 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=12345 "
	nfSYN   = "PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 "
	nfUDP   = "PROTO=UDP SPT=40000 DPT=9000 LEN=9 "
	nfIn    = "IN=eth0 OUT= "
	nfTCP4  = nfIn + nfMAC4 + nfIP4 + nfSYN
	nfUDP4  = nfIn + nfMAC4 + nfIP4 + nfUDP
	nfTCP6  = nfIn + nfMAC6 + nfIP6 + nfSYN
	nfUDP6  = nfIn + nfMAC6 + nfIP6 + nfUDP
	nfKnock = "knock " + nfTCP4
)

var (
	nfSrc4 = netip.MustParseAddr("192.0.2.7")
	nfDst4 = netip.MustParseAddr("192.0.2.1")
	nfSrc6 = netip.MustParseAddr("2001:db8::7")
	nfDst6 = netip.MustParseAddr("2001:db8::1")
)

type nfCase struct {
	name   string
	prefix string
	line   string
	reason Reason
	// The event, when reason is ReasonNone. A zero src means the IPv4
	// knock of nfTCP4 (192.0.2.7 → 192.0.2.1, 7000/tcp, SYN) unless
	// the case sets fields of its own.
	src, dst netip.Addr
	port     uint16
	proto    sequence.Proto
	flags    sequence.TCPFlags
	unknown  bool // FlagsKnown false although the protocol is TCP
	time     time.Time
}

// want returns the event the case expects.
func (c nfCase) want() sequence.Event {
	ev := sequence.Event{Src: c.src, Dst: c.dst, Port: c.port, Proto: c.proto, Flags: c.flags, Time: c.time}
	if !ev.Src.IsValid() {
		ev.Src, ev.Dst = nfSrc4, nfDst4
	}
	if ev.Port == 0 {
		ev.Port = 7000
	}
	if ev.Proto == 0 {
		ev.Proto = sequence.TCP
		if c.flags == 0 && !c.unknown {
			ev.Flags = sequence.SYN
		}
	}
	ev.FlagsKnown = ev.Proto == sequence.TCP && !c.unknown
	if !ev.FlagsKnown {
		ev.Flags = 0
	}
	return ev
}

func nfAt(h, m, s, ns int) time.Time { return time.Date(2026, 11, 22, h, m, s, ns, time.UTC) }

var netfilterCases = []nfCase{
	// Framing: what wraps the kernel's text, and the time it gives.
	{name: "bare kernel text", prefix: "knock", line: nfKnock},
	{name: "bare without the kernel's last blank", prefix: "knock", line: strings.TrimSpace(nfKnock)},
	{name: "rfc3164 with uptime", prefix: "knock", line: "Nov 22 12:00:01 host kernel: [12345.678901] " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc3164 padded uptime", prefix: "knock", line: "Nov 22 12:00:01 host kernel: [    5.000001] " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc3164 padded day", prefix: "knock", line: "Nov  2 12:00:01 host kernel: " + nfKnock, time: time.Date(2026, 11, 2, 12, 0, 1, 0, time.UTC)},
	{name: "rfc3164 on the wire", prefix: "knock", line: "<4>Nov 22 12:00:01 host kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc3164 without host", prefix: "knock", line: "<4>Nov 22 12:00:01 kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc3164 host only", prefix: "knock", line: "Nov 22 12:00:01 host " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc3164 tag of another program", prefix: "knock", line: "Nov 22 12:00:01 host ulogd[42]: " + nfKnock, reason: ReasonProgram},
	{name: "journalctl -k", prefix: "knock", line: "Nov 22 12:00:01 host kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "journalctl -k short-precise", prefix: "knock", line: "Nov 22 12:00:01.250000 host kernel: " + nfKnock, time: nfAt(12, 0, 1, 250_000_000)},
	{name: "journalctl -k short-iso", prefix: "knock", line: "2026-11-22T13:00:01+0100 host kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "journalctl -k short-monotonic", prefix: "knock", line: "[12345.678901] host kernel: " + nfKnock},
	{name: "rsyslog high precision", prefix: "knock", line: "2026-11-22T07:00:01.123456-05:00 host kernel: [  123.456789] " + nfKnock, time: nfAt(12, 0, 1, 123456000)},
	{name: "iso Z", prefix: "knock", line: "2026-11-22T12:00:01Z host kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc5424", prefix: "knock", line: "<4>1 2026-11-22T12:00:01.123456+00:00 host kernel - - - " + nfKnock, time: nfAt(12, 0, 1, 123456000)},
	{name: "rfc5424 nil time", prefix: "knock", line: "<4>1 - host kernel - - - " + nfKnock},
	{name: "rfc5424 with BOM", prefix: "knock", line: "<4>1 2026-11-22T12:00:01Z host kernel - - - \xef\xbb\xbf" + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc5424 structured data", prefix: "knock", line: `<4>1 2026-11-22T12:00:01Z host kernel 0 - [meta seq="1" note="a \"]\" b"][x@1 y="z"] ` + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc5424 structured data with fields", prefix: "knock", line: `<4>1 2026-11-22T12:00:01Z host kernel - - [x y="IN=a OUT= SRC=6.6.6.6 DPT=9"] ` + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "rfc5424 bad header", prefix: "knock", line: "<4>1 2026-11-22T12:00:01Z host kernel " + nfKnock, reason: ReasonUnrecognized},
	{name: "rfc5424 other app", prefix: "knock", line: "<4>1 2026-11-22T12:00:01Z host myapp - - - " + nfKnock, reason: ReasonProgram},
	{name: "rfc5424 nil app", prefix: "knock", line: "<4>1 2026-11-22T12:00:01Z host - - - - " + nfKnock, reason: ReasonProgram},
	{name: "rfc5424 cut header", prefix: "knock", line: "<4>1 2026-11-22T12:00:01Z host kernel - [x", reason: ReasonUnrecognized},
	{name: "journalctl short-monotonic other program", prefix: "knock", line: "[12345.678901] host myapp[42]: " + nfKnock, reason: ReasonProgram},
	{name: "uptime then a prefix like a tag", prefix: "DROP:", line: "[12345.678901] DROP: " + nfTCP4},
	{name: "uptime then two words ending in a colon", prefix: "fw drop:", line: "[12345.678901] fw drop: " + nfTCP4},
	{name: "busybox facility and level", prefix: "knock", line: "Nov 22 12:00:01 host kern.warn kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "pri without a stamp", prefix: "knock", line: "<4>kernel: " + nfKnock},
	{name: "pri without a stamp, other program", prefix: "knock", line: "<13>myapp: " + nfKnock, reason: ReasonProgram},
	{name: "dmesg", prefix: "knock", line: "[12345.678901] " + nfKnock},
	{name: "dmesg padded", prefix: "knock", line: "[    0.000000] " + nfKnock},
	{name: "dmesg -T", prefix: "knock", line: "[Sun Nov 22 12:00:01 2026] " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "dmesg -T padded day", prefix: "knock", line: "[Mon Nov  2 12:00:01 2026] " + nfKnock, time: time.Date(2026, 11, 2, 12, 0, 1, 0, time.UTC)},
	{name: "dmesg iso", prefix: "knock", line: "2026-11-22T12:00:01,123456+00:00 " + nfKnock, time: nfAt(12, 0, 1, 123456000)},
	{name: "kmsg", prefix: "knock", line: "4,1234,12345678901,-;" + nfKnock},
	{name: "kmsg with caller", prefix: "knock", line: "4,1234,12345678901,-,caller=T42;" + nfKnock},
	{name: "proc kmsg", prefix: "knock", line: "<4>[12345.678901] " + nfKnock},
	{name: "impossible date", prefix: "knock", line: "Feb 30 12:00:01 host kernel: " + nfKnock},
	{name: "impossible iso date", prefix: "knock", line: "2026-11-31T12:00:01Z host kernel: " + nfKnock},
	{name: "impossible hour", prefix: "knock", line: "2026-11-22T25:00:01Z host kernel: " + nfKnock},

	// The prefix: between the framing and the kernel's IN=.
	{name: "prefix", prefix: "knock", line: "Nov 22 12:00:01 host kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "prefix glued to IN=", prefix: "knock", line: "Nov 22 12:00:01 host kernel: knock" + nfTCP4, time: nfAt(12, 0, 1, 0)},
	{name: "prefix glued bare", prefix: "knock", line: "knock" + nfTCP4},
	{name: "prefix glued after dmesg", prefix: "knock", line: "[  1.000000] knock" + nfTCP4},
	{name: "prefix with blanks around", prefix: " knock\t", line: "[  1.000000] knock " + nfTCP4},
	{name: "prefix with inner blank", prefix: "[UFW BLOCK]", line: "Nov 22 12:00:01 host kernel: [ 12.5] [UFW BLOCK] " + nfTCP4, time: nfAt(12, 0, 1, 0)},
	{name: "prefix with colon", prefix: "knock:", line: "knock: " + nfTCP4},
	{name: "prefix without its colon", prefix: "knock", line: "knock: " + nfTCP4, reason: ReasonPrefix},
	{name: "prefix other rule", prefix: "knock", line: "Nov 22 12:00:01 host kernel: drop " + nfTCP4, reason: ReasonPrefix},
	{name: "prefix missing", prefix: "knock", line: "Nov 22 12:00:01 host kernel: " + nfTCP4, reason: ReasonPrefix},
	{name: "prefix longer word", prefix: "knock", line: "knocker " + nfTCP4, reason: ReasonPrefix},
	{name: "prefix glued longer word", prefix: "knock", line: "xknock" + nfTCP4, reason: ReasonPrefix},
	{name: "prefix as last word", prefix: "knock", line: "port knock " + nfTCP4, reason: ReasonPrefix},
	{name: "prefix case", prefix: "knock", line: "KNOCK " + nfTCP4, reason: ReasonPrefix},
	{name: "prefix under unknown framing", prefix: "knock", line: "kern  :warn  : [12.5] knock " + nfTCP4, reason: ReasonPrefix},
	{name: "no prefix filter under unknown framing", line: "kern  :warn  : [12.5] knock " + nfTCP4},
	{name: "prefix on an outbound line", prefix: "knock", line: "drop IN= OUT=eth0 " + nfIP4 + nfSYN, reason: ReasonPrefix},
	{name: "prefix on a garbled line", prefix: "knock", line: "drop IN=eth0 OUT= junk", reason: ReasonPrefix},
	{name: "another program's line with the prefix", prefix: "knock", line: "Nov 22 12:00:01 host mallory: " + nfKnock, reason: ReasonProgram},
	{name: "another program's line with a pid", prefix: "knock", line: "Nov 22 12:00:01 host mallory[7]: " + nfKnock, reason: ReasonProgram},
	{name: "tag alone of another program", prefix: "knock", line: "Nov 22 12:00:01 mallory: " + nfKnock, reason: ReasonProgram},
	{name: "blank prefix is no prefix", prefix: " \t", line: "anything " + nfTCP4},

	// Prefixes that look like fields: the kernel's fields come after.
	{name: "prefix with SRC and DPT", line: "evil SRC=6.6.6.6 DPT=9999 " + nfTCP4},
	{name: "prefix with SRC and DPT filtered", prefix: "evil SRC=6.6.6.6 DPT=9999", line: "Nov 22 12:00:01 host kernel: evil SRC=6.6.6.6 DPT=9999 " + nfTCP4, time: nfAt(12, 0, 1, 0)},
	{name: "prefix with IN and OUT", line: "x IN=a OUT= SRC=6.6.6.6 DST=6.6.6.6 LEN=1 TOS=0 PREC=0 TTL=1 ID=1 PROTO=UDP SPT=1 DPT=9999 LEN=9 " + nfTCP4},
	{name: "prefix with IN and OUT filtered", prefix: "x IN=a OUT=b SRC=6.6.6.6 DPT=9999", line: "x IN=a OUT=b SRC=6.6.6.6 DPT=9999 " + nfTCP4},
	{name: "prefix with IN and OUT glued", prefix: "x IN=a OUT=", line: "x IN=a OUT=" + nfTCP4},
	{name: "prefix fakes an outbound line", line: "IN= OUT=eth0 " + nfTCP4},
	{name: "prefix fakes an inbound line", line: nfIn + "IN= OUT=eth0 " + nfIP4 + nfSYN, reason: ReasonOutbound},
	{name: "prefix ending in PHYS", line: "PHYS" + nfTCP4},

	// ICMP errors quote another packet, ports and all, in [...].
	{name: "icmp port unreachable", line: "knock " + nfIn + nfMAC4 + "SRC=192.0.2.7 DST=192.0.2.1 LEN=61 TOS=0x00 PREC=0xC0 TTL=64 ID=1 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.1 DST=192.0.2.7 LEN=33 TOS=0x00 PREC=0x00 TTL=64 ID=2 DF PROTO=UDP SPT=40000 DPT=7000 LEN=13 ] ", reason: ReasonNoPorts},
	{name: "icmp quoting tcp", line: "knock " + nfIn + nfMAC4 + "SRC=192.0.2.7 DST=192.0.2.1 LEN=88 TOS=0x00 PREC=0xC0 TTL=64 ID=1 PROTO=ICMP TYPE=11 CODE=0 [SRC=192.0.2.1 DST=192.0.2.7 LEN=60 TOS=0x00 PREC=0x00 TTL=1 ID=2 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 ] ", reason: ReasonNoPorts},
	{name: "icmpv6 port unreachable", line: "knock " + nfIn + nfMAC6 + "SRC=2001:0db8:0000:0000:0000:0000:0000:0007 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=101 TC=0 HOPLIMIT=64 FLOWLBL=1 PROTO=ICMPv6 TYPE=1 CODE=4 [SRC=2001:0db8:0000:0000:0000:0000:0000:0001 DST=2001:0db8:0000:0000:0000:0000:0000:0007 LEN=53 TC=0 HOPLIMIT=64 FLOWLBL=2 PROTO=UDP SPT=40000 DPT=7000 LEN=13 ] ", reason: ReasonNoPorts},
	{name: "icmp echo", line: "knock " + nfIn + nfMAC4 + nfIP4 + "PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1 ", reason: ReasonNoPorts},
	{name: "icmp incomplete", line: "knock " + nfIn + nfIP4 + "PROTO=ICMP INCOMPLETE [2 bytes] ", reason: ReasonNoPorts},
	{name: "esp", line: "knock " + nfIn + nfIP4 + "PROTO=ESP SPI=0x1234 ", reason: ReasonNoPorts},
	{name: "ah", line: "knock " + nfIn + nfIP4 + "PROTO=AH SPI=0x1234 ", reason: ReasonNoPorts},
	{name: "protocol by number", line: "knock " + nfIn + nfIP4 + "PROTO=47 ", reason: ReasonNoPorts},
	{name: "protocol by number last", line: "knock " + nfIn + nfIP4 + "PROTO=132", reason: ReasonNoPorts},
	{name: "udplite", line: "knock " + nfIn + nfIP4 + "PROTO=UDPLITE SPT=40000 DPT=7000 LEN=9 ", reason: ReasonBadProto},
	{name: "unknown protocol name", line: "knock " + nfIn + nfIP4 + "PROTO=SCTP SPT=40000 DPT=7000 ", reason: ReasonBadProto},
	{name: "tcp header incomplete", line: "knock " + nfIn + nfIP4 + "PROTO=TCP INCOMPLETE [8 bytes] ", reason: ReasonTruncated},
	{name: "udp header incomplete", line: "knock " + nfIn + nfIP4 + "PROTO=UDP INCOMPLETE [4 bytes] ", reason: ReasonTruncated},
	{name: "ulogd's glued incomplete", line: "knock " + nfIn + nfIP4 + "PROTO=TCP INCOMPLETEMARK=0x0 ", reason: ReasonTruncated},
	{name: "ulogd's ipv6 fragment header", line: "knock " + nfIn + nfIP6 + "FRAG: 1232 ID: caba19ee PROTO=UDP INCOMPLETEMARK=0x0 ", reason: ReasonFragment},
	{name: "ulogd's ipv6 first fragment header", line: "knock " + nfIn + nfIP6 + "FRAG: 0 ID: caba19ee " + nfUDP, src: nfSrc6, dst: nfDst6, port: 9000, proto: sequence.UDP},
	{name: "cut after ulogd's FRAG:", line: "knock " + nfIn + nfIP6 + "FRAG:", reason: ReasonTruncated},
	{name: "ip header truncated", line: "knock " + nfIn + nfMAC4 + "TRUNCATED", reason: ReasonNoPorts},
	{name: "arp", line: "knock " + nfIn + nfMAC4 + "ARP HTYPE=1 PTYPE=0x0800 OPCODE=1 MACSRC=52:54:00:12:34:56 IPSRC=192.0.2.7 MACDST=00:00:00:00:00:00 IPDST=192.0.2.1", reason: ReasonNoPorts},
	{name: "ipv6 unknown extension header", line: "knock " + nfIn + nfIP6 + "Unknown Ext Hdr 143", reason: ReasonNoPorts},
	{name: "ipv6 fragment header truncated", line: "knock " + nfIn + nfIP6 + "FRAG:TRUNCATED ", reason: ReasonNoPorts},
	{name: "ipv6 esp with options", line: "knock " + nfIn + nfIP6 + "OPT ( ESP SPI=0x1234 )", reason: ReasonNoPorts},
	{name: "ipv6 ah incomplete", line: "knock " + nfIn + nfIP6 + "OPT ( AH INCOMPLETE [4 bytes] )", reason: ReasonNoPorts},
	{name: "quoted packet before PROTO", line: "knock " + nfIn + nfIP4 + "[SRC=192.0.2.1 DST=192.0.2.7 LEN=33 TOS=0x00 PREC=0x00 TTL=64 ID=2 PROTO=UDP SPT=40000 DPT=7000 LEN=13 ] ", reason: ReasonNoPorts},
	{name: "PROTO after TRUNCATED", line: "knock " + nfIn + nfIP4 + "TRUNCATED " + nfSYN, reason: ReasonNoPorts},

	// Fragments: only the first carries ports.
	{name: "ipv4 first fragment", line: "knock " + nfIn + nfMAC4 + "SRC=192.0.2.7 DST=192.0.2.1 LEN=1276 TOS=0x00 PREC=0x00 TTL=64 ID=7 MF PROTO=UDP SPT=40000 DPT=9000 LEN=3008 ", port: 9000, proto: sequence.UDP},
	{name: "ipv4 middle fragment", line: "knock " + nfIn + nfMAC4 + "SRC=192.0.2.7 DST=192.0.2.1 LEN=1276 TOS=0x00 PREC=0x00 TTL=64 ID=7 MF FRAG:157 PROTO=UDP ", reason: ReasonFragment},
	{name: "ipv4 last fragment", line: "knock " + nfIn + nfMAC4 + "SRC=192.0.2.7 DST=192.0.2.1 LEN=516 TOS=0x00 PREC=0x00 TTL=64 ID=7 FRAG:314 PROTO=UDP", reason: ReasonFragment},
	{name: "ipv4 tcp fragment", line: "knock " + nfIn + "SRC=192.0.2.7 DST=192.0.2.1 LEN=516 TOS=0x00 PREC=0x00 TTL=64 ID=7 FRAG:3 PROTO=TCP ", reason: ReasonFragment},
	{name: "ipv4 fragment quoting ports", line: "knock " + nfIn + "SRC=192.0.2.7 DST=192.0.2.1 LEN=516 TOS=0x00 PREC=0x00 TTL=64 ID=7 FRAG:3 PROTO=TCP SPT=1 DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonFragment},
	{name: "ipv4 ah fragment without proto", line: "knock " + nfIn + "SRC=192.0.2.7 DST=192.0.2.1 LEN=516 TOS=0x00 PREC=0x00 TTL=64 ID=7 FRAG:3 ", reason: ReasonFragment},
	{name: "ipv4 fragment with options", line: "knock " + nfIn + "SRC=192.0.2.7 DST=192.0.2.1 LEN=516 TOS=0x00 PREC=0x00 TTL=64 ID=7 CE MF FRAG:3 OPT (07040000) PROTO=UDP ", reason: ReasonFragment},
	{name: "ipv6 first fragment", line: "knock " + nfIn + nfMAC6 + nfIP6 + "FRAG:0 INCOMPLETE ID:871f1ef7 PROTO=UDP SPT=40000 DPT=9000 LEN=3008 ", src: nfSrc6, dst: nfDst6, port: 9000, proto: sequence.UDP},
	{name: "ipv6 middle fragment", line: "knock " + nfIn + nfMAC6 + nfIP6 + "FRAG:1232 INCOMPLETE ID:871f1ef7 PROTO=UDP ", reason: ReasonFragment},
	{name: "ipv6 last fragment", line: "knock " + nfIn + nfMAC6 + nfIP6 + "FRAG:2464 ID:871f1ef7 PROTO=UDP", reason: ReasonFragment},
	{name: "ipv6 fragment with options", line: "knock " + nfIn + nfIP6 + "OPT ( FRAG:1232 ID:871f1ef7 ) PROTO=TCP ", reason: ReasonFragment},
	{name: "ipv6 fragment before options", line: "knock " + nfIn + nfIP6 + "OPT ( FRAG:1232 ID:871f1ef7 ) OPT ( )", reason: ReasonFragment},
	{name: "ipv6 first fragment with options", line: "knock " + nfIn + nfIP6 + "OPT ( FRAG:0 INCOMPLETE ID:871f1ef7 ) " + nfSYN, src: nfSrc6, dst: nfDst6},

	// Addresses.
	{name: "ipv6 fully expanded", line: "knock " + nfTCP6, src: nfSrc6, dst: nfDst6},
	{name: "ipv6 compressed", line: "knock " + nfIn + "SRC=2001:db8::7 DST=2001:db8::1 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 " + nfSYN, src: nfSrc6, dst: nfDst6},
	{name: "ipv6 upper case", line: "knock " + nfIn + "SRC=2001:0DB8:0000:0000:0000:0000:0000:0007 DST=2001:DB8::1 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 " + nfSYN, src: nfSrc6, dst: nfDst6},
	{name: "ipv6 udp", line: "knock " + nfUDP6, src: nfSrc6, dst: nfDst6, port: 9000, proto: sequence.UDP},
	{name: "ipv4-mapped unmapped", line: "knock " + nfIn + "SRC=0000:0000:0000:0000:0000:ffff:c000:0207 DST=0000:0000:0000:0000:0000:ffff:c000:0201 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 " + nfSYN},
	{name: "ipv4-mapped dotted", line: "knock " + nfIn + "SRC=::ffff:192.0.2.7 DST=::ffff:192.0.2.1 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 " + nfSYN},
	{name: "bad ipv4", line: "knock " + nfIn + "SRC=192.0.2.256 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonBadAddress},
	{name: "bad destination", line: "knock " + nfIn + "SRC=192.0.2.7 DST=192.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonBadAddress},
	{name: "host name", line: "knock " + nfIn + "SRC=example.org DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonBadAddress},
	{name: "empty source", line: "knock " + nfIn + "SRC= DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonBadAddress},
	{name: "zone", line: "knock " + nfIn + "SRC=fe80::1%eth0 DST=fe80::2 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 " + nfSYN, reason: ReasonBadAddress},

	// Direction: outbound packets have no input interface.
	{name: "outbound", line: "knock IN= OUT=eth0 " + nfIP4 + nfSYN, reason: ReasonOutbound},
	{name: "outbound glued prefix", prefix: "knock", line: "knockIN= OUT=eth0 " + nfIP4 + nfSYN, reason: ReasonOutbound},
	{name: "outbound both empty", line: "knock IN= OUT= " + nfIP4 + nfSYN, reason: ReasonOutbound},
	{name: "forwarded", line: "knock IN=eth0 OUT=eth1 " + nfMAC4 + nfIP4 + nfSYN},
	{name: "bridged", line: "knock IN=br0 OUT=br0 PHYSIN=eth0 PHYSOUT=eth1 " + nfMAC4 + nfIP4 + nfSYN},
	{name: "mac decoded", line: "knock IN=eth0 OUT= MACSRC=52:54:00:12:34:56 MACDST=52:54:00:65:43:21 VPROTO=8100 VID=42 MACPROTO=0800 " + nfIP4 + nfSYN},
	{name: "empty mac", line: "knock IN=wg0 OUT= MAC= " + nfIP4 + nfSYN},
	{name: "no mac", line: "knock IN=wg0 OUT= " + nfIP4 + nfSYN},
	{name: "sit tunnel", line: "knock IN=sit1 OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:86:dd TUNNEL=198.51.100.1->198.51.100.2 " + nfIP6 + nfSYN, src: nfSrc6, dst: nfDst6},
	{name: "interface name with equals", line: "knock IN=a=b OUT= " + nfIP4 + nfSYN},

	// TCP flags.
	{name: "udp has no flags", line: "knock " + nfUDP4, port: 9000, proto: sequence.UDP},
	{name: "syn ack", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 ACK SYN URGP=0 ", flags: sequence.SYN | sequence.ACK},
	{name: "every flag", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 AE CWR ECE URG ACK PSH RST SYN FIN URGP=0 ", flags: 0xff},
	{name: "no flags", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 URGP=0 ", flags: 0, unknown: false, proto: sequence.TCP},
	{name: "sequence numbers", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 SEQ=1 ACK=0 WINDOW=1 RES=0x00 SYN URGP=0 OPT (020405B4) UID=0 GID=0 MARK=0x1 "},
	{name: "flag words after URGP ignored", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 ACK FIN", flags: sequence.SYN},

	// Lines cut short by a syslog size limit.
	{name: "truncated before DPT", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000", reason: ReasonTruncated},
	{name: "truncated in DPT key", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DP", reason: ReasonTruncated},
	{name: "truncated in DPT value", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=70", reason: ReasonTruncated},
	{name: "truncated after DPT value", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 ", reason: ReasonTruncated},
	{name: "truncated in flags", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 ACK SY", unknown: true},
	{name: "truncated before URGP", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN", unknown: true},
	{name: "truncated udp after DPT", line: "knock " + nfIn + nfIP4 + "PROTO=UDP SPT=40000 DPT=9000 L", port: 9000, proto: sequence.UDP},
	{name: "truncated in PROTO", line: "knock " + nfIn + nfIP4 + "PROTO=TC", reason: ReasonTruncated},
	{name: "truncated after PROTO", line: "knock " + nfIn + nfIP4 + "PROTO=TCP ", reason: ReasonTruncated},
	{name: "truncated before PROTO", line: "knock " + nfIn + nfIP4, reason: ReasonTruncated},
	{name: "truncated in ipv6 header", line: "knock " + nfIn + "SRC=2001:0db8:0000:0000:0000:0000:0000:0007 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPL", reason: ReasonTruncated},
	{name: "truncated in DST", line: "knock " + nfIn + nfMAC4 + "SRC=192.0.2.7 DST=192.0", reason: ReasonTruncated},
	{name: "truncated in SRC", line: "knock " + nfIn + nfMAC4 + "SRC=192.0", reason: ReasonTruncated},
	{name: "truncated in MAC", line: "knock " + nfIn + "MAC=52:54:00:12:34", reason: ReasonTruncated},
	{name: "truncated after OUT=", line: "Nov 22 12:00:01 host kernel: knock IN=eth0 OUT=", reason: ReasonTruncated},
	{name: "truncated in IN=", line: "Nov 22 12:00:01 host kernel: knock IN=eth", reason: ReasonUnrecognized},

	// Notices that share the log with knock lines.
	{name: "net_ratelimit", line: "Nov 22 12:00:01 host kernel: [12345.678901] net_ratelimit: 123 callbacks suppressed", reason: ReasonUnrecognized},
	{name: "kmsg net_ratelimit", line: "4,1235,12345678902,-;net_ratelimit: 123 callbacks suppressed", reason: ReasonUnrecognized},
	{name: "printk suppressed", line: "Nov 22 12:00:01 host kernel: printk: 7 messages suppressed.", reason: ReasonUnrecognized},
	{name: "rsyslog messages lost", line: "Nov 22 12:00:01 host rsyslogd: imjournal: 1234 messages lost due to rate-limiting (20000 allowed within 600 seconds)", reason: ReasonUnrecognized},
	{name: "rsyslog imuxsock lost", line: "Nov 22 12:00:01 host rsyslogd-2177: imuxsock lost 42 messages from pid 7 due to rate-limiting", reason: ReasonUnrecognized},
	{name: "journald suppressed", line: "Nov 22 12:00:01 host systemd-journald[312]: Suppressed 1234 messages from /system.slice/ssh.service", reason: ReasonUnrecognized},
	{name: "journald missed kernel", line: "Nov 22 12:00:01 host systemd-journald[312]: Missed 17 kernel messages", reason: ReasonUnrecognized},
	{name: "syslog repeated", line: "Nov 22 12:00:01 host kernel: last message repeated 5 times", reason: ReasonUnrecognized},
	{name: "conntrack full", line: "Nov 22 12:00:01 host kernel: nf_conntrack: nf_conntrack: table full, dropping packet", reason: ReasonUnrecognized},
	{name: "empty", line: "", reason: ReasonUnrecognized},
	{name: "OUT without IN", line: "knock OUT= " + nfIP4 + nfSYN, reason: ReasonUnrecognized},
	{name: "IN and OUT apart", line: "knock IN=eth0 x OUT= " + nfIP4 + nfSYN, reason: ReasonUnrecognized},
	{name: "fields missing", line: "Jan  1 00:00:00 host kernel: knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 PROTO=TCP DPT=7000", reason: ReasonUnrecognized},
	{name: "fields out of order", line: "knock " + nfIn + "DST=192.0.2.1 SRC=192.0.2.7 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonUnrecognized},
	{name: "unknown field before SRC", line: "knock " + nfIn + "FOO=1 " + nfIP4 + nfSYN, reason: ReasonUnrecognized},
	{name: "SPT missing", line: "knock " + nfIn + nfIP4 + "PROTO=TCP DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonUnrecognized},

	// Ports.
	{name: "port 0", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=0 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadPort},
	{name: "port 65535", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=65535 WINDOW=1 RES=0x00 SYN URGP=0 ", port: 65535},
	{name: "port 65536", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=65536 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadPort},
	{name: "port overflow", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=99999999999999999999 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadPort},
	{name: "port not a number", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=ssh WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadPort},
	{name: "port empty", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT= WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadPort},

	// Bytes a log can hold.
	{name: "CRLF", line: "Nov 22 12:00:01 host kernel: " + strings.TrimSpace(nfKnock) + "\r", time: nfAt(12, 0, 1, 0)},
	{name: "CR after the kernel's blank", line: nfKnock + "\r"},
	{name: "tabs", prefix: "knock", line: "Nov 22 12:00:01 host kernel:\t" + "knock\t" + nfTCP4, time: nfAt(12, 0, 1, 0)},
	{name: "NUL in prefix", line: "kn\x00ck " + nfTCP4},
	{name: "NUL in prefix filtered", prefix: "knock", line: "kn\x00ck " + nfTCP4, reason: ReasonPrefix},
	{name: "NUL in port", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=70\x0000 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadPort},
	{name: "NUL in address", line: "knock " + nfIn + "SRC=192.0.2.7\x00 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonBadAddress},
	{name: "NUL for a blank", line: "knock " + nfIn + nfIP4 + "PROTO=TCP\x00SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 ", reason: ReasonBadProto},
	{name: "NUL in flags", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN\x00 ACK URGP=0 ", flags: sequence.ACK},
	{name: "NUL after URGP", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 UID=0\x00 ", reason: ReasonUnrecognized},
	{name: "another program's text after URGP", line: "Invalid user knock " + nfTCP4 + "from 198.51.100.9 port 40000", reason: ReasonUnrecognized},
	{name: "another program's text after a udp port", line: "Invalid user knock " + nfUDP4 + "from 198.51.100.9 port 40000", reason: ReasonUnrecognized},
	{name: "another program's text after a cut flag list", line: "Invalid user knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 from 198.51.100.9 port 40000", reason: ReasonUnrecognized},
	{name: "options, uid and mark after URGP", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 OPT (020405B40402080A) UID=1000 GID=1000 MARK=0x2a "},
	{name: "cut in options", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000 WINDOW=1 RES=0x00 SYN URGP=0 OPT (0204"},
	{name: "invalid UTF-8 prefix", line: "kn\xffck\xc3 " + nfTCP4},
	{name: "invalid UTF-8 prefix filtered", prefix: "knock", line: "kn\xffck " + nfTCP4, reason: ReasonPrefix},
	{name: "invalid UTF-8 framing", line: "Nov 22 12:00:01 h\xffst kernel: " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "invalid UTF-8 address", line: "knock " + nfIn + "SRC=192.0.2.\xff DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 " + nfSYN, reason: ReasonBadAddress},
	{name: "newline is not a blank", line: "knock " + nfIn + nfIP4 + "PROTO=TCP SPT=40000 DPT=7000\n", reason: ReasonTruncated},
	{name: "long prefix", line: strings.Repeat("x", 3000) + " " + nfTCP4},
	{name: "long framing", prefix: "knock", line: "<4>1 2026-11-22T12:00:01Z host kernel - - [" + strings.Repeat(`a="]"`, 600) + "] " + nfKnock, time: nfAt(12, 0, 1, 0)},
	{name: "many look-alikes", line: strings.Repeat("IN=a OUT= ", 400) + nfTCP4},
	{name: "many glued look-alikes", line: strings.Repeat("IN=IN= OUT=", 370) + nfTCP4},
	{name: "only look-alikes", line: strings.Repeat("IN=a OUT= ", 409), reason: ReasonTruncated},
	{name: "only OUT=", line: strings.Repeat(" OUT=", 819), reason: ReasonUnrecognized},
	{name: "long field", line: "knock " + nfIn + "MAC=" + strings.Repeat("00:", 1300) + " " + nfIP4 + nfSYN},
}

// TestParseNetfilter checks every trap, pinned to the format and, without
// a prefix filter, through auto detection, which must agree since no other
// format claims kernel lines. (With a prefix, auto detection stops at the
// simple format, which reports ReasonPrefix for every line that does not
// start with the prefix.)
func TestParseNetfilter(t *testing.T) {
	for _, tc := range netfilterCases {
		t.Run(tc.name, func(t *testing.T) {
			formats := []Format{FormatNetfilter, FormatAuto}
			if trimBlanksString(tc.prefix) != "" {
				formats = formats[:1]
			}
			for _, format := range formats {
				p := nfParser(format, tc.prefix)
				stamp := sequence.Event{Src: v6, Dst: v6, Port: 1, Proto: sequence.UDP, Flags: sequence.FIN, FlagsKnown: true, Time: time.Unix(1, 0), Input: "in"}
				ev := stamp
				f, r := p.Parse([]byte(tc.line), &ev)
				if format == FormatAuto && f != FormatNetfilter && f != FormatAuto {
					// Another format claims the line, as ulogd does
					// for its LOGEMU lines ("stamp host prefix IN=..."
					// without a kernel: tag): that format judges it.
					t.Logf("auto: %v claims %q", f, tc.line)
					continue
				}
				if r != tc.reason {
					t.Fatalf("%v: Parse(%q) reason = %v, want %v", format, tc.line, r, tc.reason)
				}
				wantFormat := FormatNetfilter
				if r == ReasonUnrecognized {
					wantFormat = FormatAuto
				}
				if f != wantFormat {
					t.Errorf("%v: Parse(%q) format = %v, want %v", format, tc.line, f, wantFormat)
				}
				if r != ReasonNone {
					if ev != stamp {
						t.Errorf("%v: Parse(%q) wrote the event although it is not one: %+v", format, tc.line, ev)
					}
					continue
				}
				want := tc.want()
				want.Input = "in"
				if !nfSameEvent(ev, want) {
					t.Errorf("%v: Parse(%q)\n event %+v\n want  %+v", format, tc.line, ev, want)
				}
			}
		})
	}
}

// nfSameEvent compares events, times by instant.
func nfSameEvent(a, b sequence.Event) bool {
	ta, tb := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb) && ta.IsZero() == tb.IsZero()
}

// TestNetfilterYear checks the year given to stamps without one.
func TestNetfilterYear(t *testing.T) {
	for _, tc := range []struct {
		name  string
		now   time.Time
		stamp string
		want  time.Time
	}{
		{"same day", nfNow, "Nov 22 12:00:01", nfAt(12, 0, 1, 0)},
		{"later today", nfNow, "Nov 22 23:59:59", nfAt(23, 59, 59, 0)},
		{"a day ahead is this year", nfNow, "Nov 23 12:29:59", time.Date(2026, 11, 23, 12, 29, 59, 0, time.UTC)},
		{"six days ahead is this year", nfNow, "Nov 28 12:00:00", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)},
		{"more than a week ahead is last year", nfNow, "Nov 29 12:30:01", time.Date(2025, 11, 29, 12, 30, 1, 0, time.UTC)},
		{"no current time, no year", time.Time{}, "Nov 22 12:00:01", time.Time{}},
		{"december read in january", time.Date(2027, 1, 1, 0, 0, 30, 0, time.UTC), "Dec 31 23:59:59", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"january read on new year's eve", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), "Jan  1 01:00:00", time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)},
		{"earlier this year", nfNow, "Mar  1 00:00:00", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"leap day", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), "Feb 29 12:00:00", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"leap day in a leap year", time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), "Feb 29 12:00:00", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"leap day across 2100", time.Date(2103, 3, 1, 0, 0, 0, 0, time.UTC), "Feb 29 12:00:00", time.Date(2096, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"no such day", nfNow, "Feb 30 12:00:00", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Parser{Format: FormatNetfilter, Now: tc.now, Location: time.UTC}
			var ev sequence.Event
			line := tc.stamp + " host kernel: " + nfKnock
			if _, r := p.Parse([]byte(line), &ev); r != ReasonNone {
				t.Fatalf("Parse(%q) = %v", line, r)
			}
			if !ev.Time.Equal(tc.want) || ev.Time.IsZero() != tc.want.IsZero() {
				t.Errorf("Parse(%q) at %v: time %v, want %v", line, tc.now, ev.Time, tc.want)
			}
		})
	}
}

// TestNetfilterLocalZone checks that stamps without an offset are read in
// the local zone, and those with one are not.
func TestNetfilterLocalZone(t *testing.T) {
	zone := time.FixedZone("X", 5*3600)
	p := Parser{Now: nfNow, Location: zone}
	for _, tc := range []struct {
		line string
		want time.Time
	}{
		{"Nov 22 12:00:01 host kernel: " + nfKnock, time.Date(2026, 11, 22, 12, 0, 1, 0, zone)},
		{"[Sun Nov 22 12:00:01 2026] " + nfKnock, time.Date(2026, 11, 22, 12, 0, 1, 0, zone)},
		{"2026-11-22T12:00:01Z host kernel: " + nfKnock, nfAt(12, 0, 1, 0)},
	} {
		var ev sequence.Event
		if _, r := p.Parse([]byte(tc.line), &ev); r != ReasonNone || !ev.Time.Equal(tc.want) {
			t.Errorf("Parse(%q) = %v, time %v; want %v", tc.line, r, ev.Time, tc.want)
		}
	}
}

// nfGoldenForms are the files of testdata/netfilter: the same records,
// line for line, in each form.
var nfGoldenForms = []string{"kmsg.txt", "dmesg.txt", "dmesg-T.txt", "rfc3164.txt", "journalctl-k.txt", "rfc5424.txt", "rsyslog-iso.txt"}

func nfReadGolden(t testing.TB, name string) []string {
	t.Helper()
	return readTestLines(t, filepath.Join("testdata", "netfilter", name))
}

// nfGoldenWant is what the generator's traffic must produce, by rule: the
// knock (tcp 7000) is logged twice, once on its way out; udp 9000 and the
// 3000-byte udp 9002 have no listener and bring an ICMP error each; 9002
// leaves as three fragments, the first with ports. Every packet is sent
// over IPv4 and IPv6.
type nfGoldenWant struct {
	prefix string // the log prefix, blanks trimmed
	reason Reason
	port   uint16 // for events
	proto  sequence.Proto
}

var nfGoldenPlan = map[nfGoldenWant]int{
	{"knock", ReasonOutbound, 0, 0}:                                       1, // with UID= GID=
	{"knock", ReasonNone, 7000, sequence.TCP}:                             1,
	{"knock", ReasonNone, 7001, sequence.TCP}:                             1, // glued
	{"evil SRC=6.6.6.6 DPT=7000", ReasonNone, 7002, sequence.TCP}:         1,
	{"x IN=a OUT=b SRC=6.6.6.6 DPT=7000", ReasonNone, 7003, sequence.TCP}: 1,
	{"knock", ReasonNone, 7004, sequence.TCP}:                             1, // log flags all, MARK=
	{"[UFW BLOCK]", ReasonNone, 7005, sequence.TCP}:                       1,
	{"ipt knock:", ReasonNone, 7006, sequence.TCP}:                        1,
	{"ipt knock:", ReasonNone, 7007, sequence.TCP}:                        1, // every --log-* option
	{"knock", ReasonNone, 9000, sequence.UDP}:                             1,
	{"knock", ReasonNone, 9002, sequence.UDP}:                             1, // first fragment
	{"knock", ReasonFragment, 0, 0}:                                       2,
	{"knock", ReasonNoPorts, 0, 0}:                                        2, // ICMP errors
}

// TestNetfilterGolden parses the kernel's own lines in every form they
// reach a log in: the results must follow the generator's plan, be the
// same in every form, and carry the time each form's stamp gives.
func TestNetfilterGolden(t *testing.T) {
	forms := make([][]string, len(nfGoldenForms))
	for i, name := range nfGoldenForms {
		forms[i] = nfReadGolden(t, name)
		if len(forms[i]) != len(forms[0]) {
			t.Fatalf("%s has %d lines, %s %d", name, len(forms[i]), nfGoldenForms[0], len(forms[0]))
		}
	}
	kmsg := forms[0]
	if len(kmsg) == 0 {
		t.Fatal("no golden lines")
	}

	// The plan, per family, from the /dev/kmsg records.
	seen := map[bool]map[nfGoldenWant]int{false: {}, true: {}}
	want := make([]sequence.Event, len(kmsg))
	reasons := make([]Reason, len(kmsg))
	for i, line := range kmsg {
		msg := line[strings.IndexByte(line, ';')+1:]
		prefix := strings.TrimSpace(msg[:strings.LastIndex(msg[:strings.LastIndex(msg, " OUT=")], "IN=")])
		nf := nfParser(FormatNetfilter, "")
		_, r := nf.Parse([]byte(line), &want[i])
		reasons[i] = r
		w := nfGoldenWant{prefix: prefix, reason: r}
		if r == ReasonNone {
			ev := want[i]
			w.port, w.proto = ev.Port, ev.Proto
			lo := netip.MustParseAddr("127.0.0.1")
			if ev.Src.Is6() {
				lo = netip.IPv6Loopback()
			}
			if ev.Src != lo || ev.Dst != lo || !ev.Time.IsZero() {
				t.Errorf("kmsg line %d: event %+v, want %v → %v without a time", i+1, ev, lo, lo)
			}
			if ev.Proto == sequence.TCP && (!ev.FlagsKnown || ev.Flags != sequence.SYN) {
				t.Errorf("kmsg line %d: flags %v (known %v), want syn", i+1, ev.Flags, ev.FlagsKnown)
			}
			if ev.Proto == sequence.UDP && ev.FlagsKnown {
				t.Errorf("kmsg line %d: UDP with flags", i+1)
			}
		}
		seen[strings.Contains(msg, " HOPLIMIT=")][w]++

		// The prefix filter: the rule's own prefix keeps the line,
		// another drops it.
		var ev sequence.Event
		if _, r2 := (&Parser{Format: FormatNetfilter, Prefix: prefix}).Parse([]byte(line), &ev); r2 != r {
			t.Errorf("kmsg line %d with prefix %q: %v, want %v", i+1, prefix, r2, r)
		}
		if _, r2 := (&Parser{Format: FormatNetfilter, Prefix: "other"}).Parse([]byte(line), &ev); r2 != ReasonPrefix {
			t.Errorf("kmsg line %d with prefix \"other\": %v, want prefix", i+1, r2)
		}
	}
	for _, v6 := range []bool{false, true} {
		for w, n := range nfGoldenPlan {
			if seen[v6][w] != n {
				t.Errorf("IPv6 %v: %d lines of %+v, want %d", v6, seen[v6][w], w, n)
			}
		}
		for w, n := range seen[v6] {
			if nfGoldenPlan[w] == 0 {
				t.Errorf("IPv6 %v: %d unexpected lines of %+v", v6, n, w)
			}
		}
	}

	// Every form gives the same result, with its own time.
	for fi, name := range nfGoldenForms {
		for i, line := range forms[fi] {
			var wantTime time.Time
			switch name {
			case "dmesg-T.txt":
				end := strings.IndexByte(line, ']')
				tm, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", line[1:end], time.UTC)
				if err != nil {
					t.Fatalf("%s line %d: %v", name, i+1, err)
				}
				wantTime = tm
			case "rfc3164.txt":
				wantTime = time.Date(2026, 11, 22, 12, 0, i, 0, time.UTC)
			case "journalctl-k.txt", "rfc5424.txt", "rsyslog-iso.txt":
				wantTime = time.Date(2026, 11, 22, 12, 0, i, i*1000, time.UTC)
			}
			for _, prefix := range []string{"", "other"} {
				var ev sequence.Event
				format := FormatAuto
				if prefix != "" {
					format = FormatNetfilter
				}
				p := nfParser(format, prefix)
				f, r := p.Parse([]byte(line), &ev)
				wantR := reasons[i]
				if prefix != "" {
					wantR = ReasonPrefix
				}
				if r != wantR || f != FormatNetfilter {
					t.Errorf("%s line %d, prefix %q: %v, %v; want netfilter, %v", name, i+1, prefix, f, r, wantR)
					continue
				}
				if r != ReasonNone {
					continue
				}
				w := want[i]
				w.Time = wantTime
				if !nfSameEvent(ev, w) {
					t.Errorf("%s line %d: event %+v, want %+v", name, i+1, ev, w)
				}
			}
		}
	}
}

// TestParseNetfilterNoAllocs checks that no line costs garbage, except a
// source address made of address characters that still fails to parse.
func TestParseNetfilterNoAllocs(t *testing.T) {
	lines := []nfCase{}
	for _, tc := range netfilterCases {
		if tc.reason != ReasonBadAddress {
			lines = append(lines, tc)
		}
	}
	for _, name := range nfGoldenForms {
		for _, l := range nfReadGolden(t, name) {
			lines = append(lines, nfCase{line: l}, nfCase{line: l, prefix: "knock"})
		}
	}
	for _, tc := range lines {
		for _, format := range []Format{FormatNetfilter, FormatAuto} {
			p := nfParser(format, tc.prefix)
			line := []byte(tc.line)
			var ev sequence.Event
			if n := testing.AllocsPerRun(20, func() { p.Parse(line, &ev) }); n != 0 {
				t.Errorf("%v: Parse(%q) allocates %v times", format, tc.line, n)
			}
		}
	}
}

// checkKernelIn checks that the kernel's text located once in line, as
// frame.kernelIn does, is what locateKernel finds in each suffix of line.
func checkKernelIn(t *testing.T, line string) {
	t.Helper()
	var fr frame
	b := []byte(line)
	// Every suffix of a line of usual length; of a longer one, as many
	// spread over it, so that fuzzing stays fast.
	step := 1 + len(b)/1024
	for from := 0; from <= len(b); from += step {
		got, gotOK := fr.kernelIn(b, from)
		want, wantOK := locateKernel(b[from:])
		if gotOK != wantOK || gotOK && (got.in != want.in || got.out != want.out || string(got.msg) != string(want.msg)) {
			t.Fatalf("kernelIn(%q, %d) = %+v, %v; locateKernel of the suffix %+v, %v", line, from, got, gotOK, want, wantOK)
		}
	}
}

// TestKernelIn checks frame.kernelIn against locateKernel on every suffix
// of every golden line and of lines whose prefixes look like the kernel's
// text.
func TestKernelIn(t *testing.T) {
	lines := []string{
		"x IN=a OUT=IN=eth0 OUT= " + nfIP4 + nfSYN,
		"IN=IN= OUT= IN= OUT=OUT= OUT=",
		"a OUT= IN=b OUT= IN=c OUT=d",
		" OUT= OUT=  OUT=",
		"IN=x\tOUT= IN=y OUT= ",
		"knock " + nfTCP4 + " from sshd IN=z OUT= tail ",
	}
	for f := range goldenFiles {
		for _, l := range goldenLines(t, f) {
			lines = append(lines, string(l))
		}
	}
	for _, l := range foreignLines() {
		lines = append(lines, l)
	}
	for _, tc := range netfilterCases {
		lines = append(lines, tc.line)
	}
	for _, l := range lines {
		checkKernelIn(t, l)
	}
}

// FuzzParseNetfilter checks that no line panics, that events are well
// formed, that a line which is not an event leaves the event alone, and
// that an event's port is one the line's kernel text states.
func FuzzParseNetfilter(f *testing.F) {
	// Records in other programs' messages (see foreign_test.go).
	for _, l := range foreignLines() {
		f.Add(l, "")
	}
	for _, tc := range netfilterCases {
		f.Add(tc.line, tc.prefix)
	}
	for _, name := range nfGoldenForms {
		for _, l := range nfReadGolden(f, name) {
			f.Add(l, "knock")
		}
	}
	// The prefix doubles as an address for the fast address parser.
	for _, a := range []string{"192.0.2.7", "0.0.0.0", "255.255.255.255", "192.0.2.07", "192.0.2.256", "1.2.3", "1.2.3.4.5",
		"2001:0db8:0000:0000:0000:0000:0000:0007", "0000:0000:0000:0000:0000:ffff:c000:0207", "2001:0DB8:0000:0000:0000:0000:0000:000g",
		"2001:0db8:0000:0000:0000:0000:0000:00007", "2001:db8::1", "::ffff:192.0.2.7", "2001:0db8:0000:0000:0000:0000:1.2.3.4"} {
		f.Add("", a)
	}
	f.Fuzz(func(t *testing.T, line, prefix string) {
		if got, want := kernelIndexOut([]byte(line), 0), strings.Index(line, " OUT="); got != want {
			t.Fatalf("kernelIndexOut(%q) = %d, want %d", line, got, want)
		}
		checkKernelIn(t, line)
		for i := range min(len(line), 9) {
			want := strings.IndexByte(line[i:], ' ')
			if want < 0 {
				want = len(line)
			} else {
				want += i
			}
			if got := kernelSpace([]byte(line), i); got != want {
				t.Fatalf("kernelSpace(%q, %d) = %d, want %d", line, i, got, want)
			}
		}
		if addr := []byte(prefix); bytes.IndexByte(addr, '%') < 0 {
			got, gotOK := parseAddrFast(addr)
			want, wantOK := parseAddr(addr, -1)
			if got != want || gotOK != wantOK {
				t.Fatalf("parseAddrFast(%q) = %v, %v; parseAddr %v, %v", addr, got, gotOK, want, wantOK)
			}
			if a, j := kernelIPv4(append(addr[:len(addr):len(addr)], ' '), 0); j > 0 && (j != len(addr) || a != want || !wantOK) {
				t.Fatalf("kernelIPv4(%q) = %v, %d; parseAddr %v, %v", addr, a, j, want, wantOK)
			}
		}
		p := Parser{Format: FormatNetfilter, Prefix: prefix}
		stamp := sequence.Event{Port: 1, Input: "in"}
		ev := stamp
		_, r := p.Parse([]byte(line), &ev)
		if r >= reasonCount {
			t.Fatalf("Parse(%q) = reason %d", line, r)
		}
		if r != ReasonNone {
			if ev != stamp {
				t.Fatalf("Parse(%q) = %v but wrote %+v", line, r, ev)
			}
			return
		}
		if !ev.Src.IsValid() || ev.Src != sequence.NormalizeAddr(ev.Src) ||
			!ev.Dst.IsValid() || ev.Dst != sequence.NormalizeAddr(ev.Dst) ||
			ev.Port == 0 || (ev.Proto != sequence.TCP && ev.Proto != sequence.UDP) ||
			(ev.FlagsKnown && ev.Proto != sequence.TCP) || (!ev.FlagsKnown && ev.Flags != 0) ||
			ev.Input != "in" {
			t.Fatalf("Parse(%q) gave a malformed event %+v", line, ev)
		}
		if !strings.Contains(line, "DPT="+strconv.Itoa(int(ev.Port))) && !strings.Contains(line, "DPT=0") {
			t.Fatalf("Parse(%q) gave port %d, which the line does not state", line, ev.Port)
		}
		// An event stays one, with the same fields, under framing.
		if prefix == "" {
			var again sequence.Event
			wrapped := "Nov 22 12:00:01 host kernel: " + line
			if _, r := (&Parser{Format: FormatNetfilter}).Parse([]byte(wrapped), &again); r != ReasonNone ||
				again.Src != ev.Src || again.Port != ev.Port || again.Proto != ev.Proto || again.Flags != ev.Flags {
				t.Fatalf("Parse(%q) = %+v but wrapped %v, %+v", line, ev, r, again)
			}
		}
	})
}

func BenchmarkParseNetfilter(b *testing.B) {
	for _, bc := range []struct{ name, line, prefix string }{
		{"ipv4-syslog", "Nov 22 12:00:01 fw kernel: [12345.678901] knock " + nfTCP4, "knock"},
		{"ipv4-kmsg", "4,1234,12345678901,-;knock " + nfTCP4, "knock"},
		{"ipv6-expanded-rfc5424", "<4>1 2026-11-22T12:00:01.123456+00:00 fw kernel - - - knock " + nfTCP6, "knock"},
		{"ipv4-other-prefix", "Nov 22 12:00:01 fw kernel: [12345.678901] drop " + nfTCP4, "knock"},
		{"garbage", "Nov 22 12:00:01 fw sshd[123]: Connection closed by 192.0.2.7 port 40000 [preauth]", "knock"},
		{"look-alikes-4k", strings.Repeat("IN=IN= OUT=", 372), ""},
		{"fields-4k", "knock " + nfIn + "MAC=" + strings.Repeat("00:", 1300) + " " + nfIP4 + nfSYN, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := Parser{Format: FormatNetfilter, Prefix: bc.prefix}
			line := []byte(bc.line)
			var ev sequence.Event
			b.SetBytes(int64(len(line) + 1))
			b.ReportAllocs()
			for b.Loop() {
				p.Parse(line, &ev)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkNetfilterPipeline measures parse and match on one core, as the
// daemon's text path does minus the queue: IPv4 syslog lines of 10 000
// sources walking a door's sequence, with a line from another rule between
// knocks.
func BenchmarkNetfilterPipeline(b *testing.B) {
	var lines [][]byte
	ports := []string{"PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0", "PROTO=TCP SPT=40000 DPT=8000 WINDOW=64240 RES=0x00 SYN URGP=0", "PROTO=UDP SPT=40000 DPT=9000 LEN=9"}
	for round := range 3 {
		for s := range 10000 {
			ip := "SRC=10." + strconv.Itoa(s>>16) + "." + strconv.Itoa(s>>8&255) + "." + strconv.Itoa(s&255) + " DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF "
			lines = append(lines,
				[]byte("Nov 22 12:00:01 fw kernel: [12345.678901] knock "+nfIn+nfMAC4+ip+ports[round]),
				[]byte("Nov 22 12:00:01 fw kernel: [12345.678901] drop "+nfIn+nfMAC4+ip+"PROTO=TCP SPT=40000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0"))
		}
	}
	m := sshMatcher(b)
	p := Parser{Format: FormatNetfilter, Prefix: "knock"}
	ev := sequence.Event{}
	out := make([]sequence.Match, 0, 4)
	var events, matches int
	b.ReportAllocs()
	for b.Loop() {
		for _, line := range lines {
			if _, r := p.Parse(line, &ev); r != ReasonNone {
				continue
			}
			ev.Time = time.Unix(1e9, 0)
			events++
			out = m.Handle(&ev, out[:0])
			matches += len(out)
		}
	}
	if matches == 0 || events == 0 {
		b.Fatalf("%d events, %d matches: the benchmark exercises nothing", events, matches)
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkKernLog measures what one core does with a kern.log: read,
// parse and match, as the daemon's text path does minus the queue. The
// lines are real ones (testdata/netfilter/rfc3164.txt: rsyslog's file
// of the kernel's LOG lines) with the source address and port changed:
// 10 000 sources walk a door's sequence, and a line from another rule
// comes between knocks. Stamps lack a year, so the parser places each
// in one against a fixed Now, in a zone with summer time, as `portknockd
// parse` does; the clock is not read.
func BenchmarkKernLog(b *testing.B) {
	golden := readTestLines(b, filepath.Join("testdata", "netfilter", "rfc3164.txt"))
	tcp, udp, other := golden[1], golden[9], golden[6] // knock SYN, knock UDP, "[UFW BLOCK]" SYN
	for _, l := range []string{tcp, udp, other} {
		if !strings.Contains(l, "SRC=127.0.0.1 ") || !strings.Contains(l, " DPT=") {
			b.Fatalf("testdata changed: %q", l)
		}
	}
	withPort := func(line, port string) string {
		i := strings.Index(line, " DPT=") + len(" DPT=")
		j := i + strings.IndexByte(line[i:], ' ')
		return line[:i] + port + line[j:]
	}
	knocks := []string{withPort(tcp, "7000"), withPort(tcp, "8000"), withPort(udp, "9000")}
	other = withPort(other, "443")
	var buf bytes.Buffer
	lines := 0
	for round := range 3 {
		for s := range 10000 {
			src := "SRC=10." + strconv.Itoa(s>>16) + "." + strconv.Itoa(s>>8&255) + "." + strconv.Itoa(s&255) + " "
			buf.WriteString(strings.Replace(knocks[round], "SRC=127.0.0.1 ", src, 1))
			buf.WriteByte('\n')
			buf.WriteString(strings.Replace(other, "SRC=127.0.0.1 ", src, 1))
			buf.WriteByte('\n')
			lines += 2
		}
	}
	data := buf.Bytes()
	zone, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		zone = time.Local // no zoneinfo: the machine's own zone
	}
	now := time.Date(2026, 11, 22, 12, 30, 0, 0, zone)
	for _, f := range []Format{FormatNetfilter, FormatAuto} {
		name := "pinned"
		if f == FormatAuto {
			name = "auto"
		}
		b.Run(name, func(b *testing.B) {
			m := sshMatcher(b)
			p := Parser{Format: f, Prefix: "knock", Now: now, Location: zone}
			var ev sequence.Event
			out := make([]sequence.Match, 0, 4)
			var events, matches, timed int
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				_, err := ReadLines(b.Context(), bytes.NewReader(data), 0, func(line []byte) {
					if _, r := p.Parse(line, &ev); r != ReasonNone {
						return
					}
					events++
					if ev.Time.Year() == 2026 {
						timed++
					}
					out = m.Handle(&ev, out[:0])
					matches += len(out)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if events != 3*10000*b.N || matches != 10000*b.N || timed != events {
				b.Fatalf("%d events (%d placed in 2026), %d matches in %d rounds: want %d, all, %d",
					events, timed, matches, b.N, 3*10000*b.N, 10000*b.N)
			}
			b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
