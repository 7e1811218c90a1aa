package textlog

import (
	"bytes"

	"portknock/sequence"
)

// ipfwImplemented: FreeBSD ipfw kernel log lines are parsed.
const ipfwImplemented = true

// FreeBSD's ipfw logs a packet matched by a "log" rule as one kernel
// message (sys/netpfil/ipfw/ip_fw_log.c):
//
//	ipfw: RULE ACTION PROTO SRC DST[ mark:0xN] in|out via IFACE[ (frag ...)]
//	ipfw: RULE ACTION PROTO SRC DST[ mark:0xN] [no if info][ (frag ...)]
//
// usually inside syslog framing ("Nov 22 12:00:01 fw kernel: ipfw: ..."). The
// record must begin the message of the kernel (or of a program
// Parser.Programs names), or a line without a program; "ipfw: " anywhere
// else in a line is another program's text. PROTO SRC DST is
// "TCP 192.0.2.7:40000 192.0.2.1:7000", "UDP ..." (IPv6 addresses in
// brackets, "[2001:db8::7]:40000"), "ICMP:3.3 SRC DST", "ICMPv6:128.0 SRC
// DST", "P:47 SRC DST" or "MAC". A later fragment has no ports ("TCP
// 192.0.2.7 192.0.2.1"). TCP flags are not logged, so events have
// FlagsKnown false and pass any tcpflags filter.
//
// Rules:
//   - Knocks are the actions that drop the packet — "Deny", "Reset",
//     "Reject", "Abort", "Unreach N" — and "Count", because a "count log"
//     rule is how ipfw logs packets without deciding their fate. Every
//     other action ("Accept", "Divert N", "SkipTo N", "Forward to ...",
//     ...) let the packet go on; like pf's "pass" such a line was not
//     logged by a knock rule and is reported as ReasonPrefix.
//   - "out via" is ReasonOutbound.
//   - Prefix, when set, must equal the rule number ("ipfw: 100 ..." has
//     rule number "100"). ipfw logs nothing else that names the rule: a
//     rule's tags and comments are not in the line.
//   - ev.Time is the framing's time (see frame.go): an RFC 5424 or RFC 3339
//     stamp's, or an RFC 3164 stamp's placed in a year by Parser.Now.
//   - The "ipfw: limit N reached on entry R" notice is not a packet and is
//     left unrecognized.

// ipfwMarker starts the kernel's message.
var ipfwMarker = []byte("ipfw: ")

// parseIpfw parses an ipfw kernel log line.
func (p *Parser) parseIpfw(line []byte, fr *frame, ev *sequence.Event) Reason {
	// Most lines of a mixed log leave at once: without the marker, or,
	// when another format has read the framing, without it starting the
	// message, which is what is judged below.
	if fr.done && fr.broken == ReasonNone {
		if !bytes.HasPrefix(fr.msg, ipfwMarker) {
			return ReasonUnrecognized
		}
	} else if bytes.Index(line, ipfwMarker) < 0 {
		return ReasonUnrecognized
	}
	if fr.read(line).broken != ReasonNone {
		if p.programOK(FormatIpfw, fr) {
			return fr.broken
		}
		return ReasonUnrecognized
	}
	if !bytes.HasPrefix(fr.msg, ipfwMarker) {
		return ReasonUnrecognized
	}
	s := fr.msg[len(ipfwMarker):]

	rule, s, cut := ipfwWord(s)
	if !ipfwRuleNumber(rule) {
		return ReasonUnrecognized // a notice such as "limit 5 reached on entry 100"
	}
	if !p.programOK(FormatIpfw, fr) {
		return ReasonProgram
	}
	if cut {
		return ReasonTruncated
	}
	if pfx := trimBlanksString(p.Prefix); pfx != "" && string(rule) != pfx {
		return ReasonPrefix
	}

	action, s, cut := ipfwWord(s)
	if cut {
		return ReasonTruncated
	}
	switch string(action) {
	case "Deny", "Reset", "Reject", "Abort", "Count":
	case "Unreach":
		var code []byte
		if code, s, cut = ipfwWord(s); cut {
			return ReasonTruncated
		}
		if !bsdUintOK(code) {
			return ReasonUnrecognized
		}
	default:
		return ReasonPrefix
	}

	proto, s, cut := ipfwWord(s)
	if cut {
		return ReasonTruncated
	}
	var ports, udplite bool
	switch {
	case string(proto) == "TCP", string(proto) == "UDP":
		ports = true
	case string(proto) == "UDPLite":
		udplite = true
	case string(proto) == "MAC":
	case bytes.HasPrefix(proto, []byte("ICMP")), bytes.HasPrefix(proto, []byte("P:")):
	default:
		return ReasonUnrecognized
	}

	var src, dst []byte
	if string(proto) != "MAC" {
		if src, s, cut = ipfwWord(s); cut {
			return ReasonTruncated
		}
		// The destination is complete only if something follows it.
		if dst, s, cut = ipfwWord(s); cut {
			return ReasonTruncated
		}
	}
	dir, rest, cut := ipfwWord(s)
	if bytes.HasPrefix(dir, []byte("mark:")) && !cut {
		dir, _, cut = ipfwWord(rest)
	}
	switch {
	case string(dir) == "in", string(dir) == "[no":
	case string(dir) == "out":
		return ReasonOutbound
	case cut && (bytes.HasPrefix([]byte("in"), dir) || bytes.HasPrefix([]byte("out"), dir) || bytes.HasPrefix([]byte("[no"), dir) ||
		bytes.HasPrefix(dir, []byte("mark:")) || bytes.HasPrefix([]byte("mark:"), dir)):
		return ReasonTruncated // "in" is complete; "i", "ou" or "mark:0x1" is not
	default:
		return ReasonUnrecognized
	}

	if !ports {
		if udplite {
			return ReasonBadProto
		}
		return ReasonNoPorts
	}
	srcAddr, srcPort, ok := ipfwHostPort(src)
	if !ok {
		return ReasonBadAddress
	}
	dstAddr, dstPort, ok := ipfwHostPort(dst)
	if !ok {
		return ReasonBadAddress
	}
	if srcPort == nil && dstPort == nil {
		return ReasonFragment // a later fragment: ipfw prints no ports
	}
	if srcPort == nil || dstPort == nil {
		return ReasonBadPort
	}
	sa, ok := bsdAddr(srcAddr)
	if !ok {
		return ReasonBadAddress
	}
	da, ok := bsdAddr(dstAddr)
	if !ok {
		return ReasonBadAddress
	}
	port, ok := bsdPort(dstPort)
	if !ok {
		return ReasonBadPort
	}

	ev.Src = sa
	ev.Dst = da
	ev.Port = port
	ev.Proto = sequence.TCP
	if proto[0] == 'U' {
		ev.Proto = sequence.UDP
	}
	ev.Flags = 0
	ev.FlagsKnown = false
	ev.Time = fr.stamp.time(p.Now, p.Location)
	return ReasonNone
}

// ipfwWord returns the next blank-separated word of s and what follows
// it. cut is set when no blank follows the word, so that the line may
// have been cut inside it.
func ipfwWord(s []byte) (word, rest []byte, cut bool) {
	for k, c := range s {
		if isBlank(c) {
			return s[:k], s[k+1:], false
		}
	}
	return s, nil, true
}

// ipfwRuleNumber reports whether w is a rule number: 1..65535, or -1 for
// packets no rule matched.
func ipfwRuleNumber(w []byte) bool {
	if string(w) == "-1" {
		return true
	}
	_, ok := bsdUint(w, 65535)
	return ok
}

// ipfwHostPort splits "192.0.2.7:40000", "192.0.2.7", "[2001:db8::7]:40000"
// or "[2001:db8::7]" into address and port; port is nil when there is
// none. ok is false for any other shape.
func ipfwHostPort(w []byte) (addr, port []byte, ok bool) {
	if len(w) == 0 {
		return nil, nil, false
	}
	if w[0] == '[' {
		k := bytes.IndexByte(w, ']')
		if k < 0 {
			return nil, nil, false
		}
		addr, rest := w[1:k], w[k+1:]
		switch {
		case len(rest) == 0:
			return addr, nil, true
		case rest[0] == ':':
			return addr, rest[1:], true
		}
		return nil, nil, false
	}
	if k := bytes.IndexByte(w, ':'); k >= 0 {
		return w[:k], w[k+1:], true
	}
	return w, nil, true
}
