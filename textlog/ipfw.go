package textlog

import (
	"bytes"
	"time"

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
// usually inside syslog framing ("Nov 22 12:00:01 fw kernel: ipfw: ...").
// PROTO SRC DST is "TCP 192.0.2.7:40000 192.0.2.1:7000", "UDP ..." (IPv6
// addresses in brackets, "[2001:db8::7]:40000"), "ICMP:3.3 SRC DST",
// "ICMPv6:128.0 SRC DST", "P:47 SRC DST" or "MAC". A later fragment
// has no ports ("TCP 192.0.2.7 192.0.2.1"). TCP flags are not logged, so
// events have FlagsKnown false and pass any tcpflags filter.
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
//   - ev.Time is a leading RFC 3339 / RFC 5424 timestamp; BSD syslog
//     stamps have no year and leave it zero (see filterlog.go).
//   - The "ipfw: limit N reached on entry R" notice is not a packet and is
//     left unrecognized.

// ipfwMarker starts the kernel's message; FormatAuto rejects lines without
// it at once.
var ipfwMarker = []byte("ipfw: ")

// parseIpfw parses an ipfw kernel log line.
func (p *Parser) parseIpfw(line []byte, ev *sequence.Event) Reason {
	i := bytes.Index(line, ipfwMarker)
	// The message starts the line or follows the syslog tag; an "ipfw: "
	// glued to something else ("myipfw: ") is not it.
	for i > 0 && !isBlank(line[i-1]) {
		k := bytes.Index(line[i+1:], ipfwMarker)
		if k < 0 {
			return ReasonUnrecognized
		}
		i += 1 + k
	}
	if i < 0 {
		return ReasonUnrecognized
	}
	s := line[i+len(ipfwMarker):]

	rule, s, cut := ipfwWord(s)
	if !ipfwRuleNumber(rule) {
		return ReasonUnrecognized // a notice such as "limit 5 reached on entry 100"
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

	t, _, _ := bsdLeadingTime(line)
	ev.Src = sa
	ev.Dst = da
	ev.Port = port
	ev.Proto = sequence.TCP
	if proto[0] == 'U' {
		ev.Proto = sequence.UDP
	}
	ev.Flags = 0
	ev.FlagsKnown = false
	ev.Time = t
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

// The syslog time helpers below are shared with filterlog.

// bsdPRI returns the length of a leading syslog "<PRI>", or 0.
func bsdPRI(line []byte) int {
	if len(line) < 3 || line[0] != '<' {
		return 0
	}
	for k := 1; k < len(line) && k <= 4; k++ {
		switch c := line[k]; {
		case c == '>' && k > 1:
			return k + 1
		case c < '0' || c > '9':
			return 0
		}
	}
	return 0
}

// bsdLeadingTime returns the time of a line that starts, after an optional
// <PRI> and RFC 5424 version, with an RFC 3339 timestamp followed by a
// blank, as RFC 5424 syslog and high-precision file formats write it.
func bsdLeadingTime(line []byte) (time.Time, int, bool) {
	i := bsdPRI(line)
	if i > 0 && i+1 < len(line) && line[i] == '1' && line[i+1] == ' ' {
		i += 2
	}
	t, n, ok := bsdRFC3339(line[i:])
	if !ok || i+n >= len(line) || line[i+n] != ' ' {
		return time.Time{}, 0, false
	}
	return t, i + n, true
}

// bsdRFC3339 parses an RFC 3339 timestamp at the start of b
// ("2026-11-22T12:00:01.123456+00:00", fraction optional, "Z" or an
// offset) and returns it and its length. It is written out rather than
// using time.Parse because an offset other than the local zone's makes
// time.Parse allocate a zone; the result here is always in UTC.
func bsdRFC3339(b []byte) (time.Time, int, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	num := func(at, n int) int {
		v := 0
		for _, c := range b[at : at+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 60 {
		return time.Time{}, 0, false
	}
	i, nsec := 19, 0
	if b[i] == '.' {
		i++
		digits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 9 {
				nsec = nsec*10 + int(b[i]-'0')
				digits++
			}
			i++
		}
		if digits == 0 {
			return time.Time{}, 0, false
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, 0, false
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if i+6 > len(b) || b[i+3] != ':' {
			return time.Time{}, 0, false
		}
		oh, om := num(i+1, 2), num(i+4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, 0, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, 0, false
	}
	if day > bsdDaysIn(year, month) {
		return time.Time{}, 0, false // 31 April and the like
	}
	// Seconds since 1970 from the civil date (the days-from-civil
	// algorithm), which is several times cheaper than time.Date.
	y, m := year, month
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400 // floor, for the year 0000
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	secs := int64(days)*86400 + int64(hour*3600+minute*60+sec) - int64(offset)
	return time.Unix(secs, int64(nsec)).UTC(), i, true
}

// bsdDaysIn returns the number of days in month of year.
func bsdDaysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
