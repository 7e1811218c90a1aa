package textlog

import (
	"bytes"
	"net/netip"
	"time"
	"unicode/utf8"
	"unsafe"

	"portknock/sequence"
)

// ulogdImplemented reports that FormatUlogd parses.
const ulogdImplemented = true

// parseUlogd parses one line of ulogd2 output: a LOGEMU line or a record
// of the JSON output plugin, told apart by the first byte.
//
// LOGEMU lines are "Mmm dd hh:mm:ss HOST PREFIX IN=... OUT=... MAC=... SRC=...
// ..." as util/printpkt.c writes them: a ctime stamp in the local time zone
// of the machine running ulogd, its host name, the log prefix followed by
// one blank (also when the prefix is empty), then kernel-style fields.
// ulogd differs from the kernel's LOG line in ways that matter here: the
// prefix is always separated from IN= by a blank, IPv6 addresses are
// compressed, TOS has no 0x, SEQ= and ACK= are always there and RES= never
// is, MARK= comes last, a non-first fragment may carry ports read from its
// payload ("FRAG:157 PROTO=UDP SPT=8224 DPT=8224"), and a missing transport
// header is "INCOMPLETE" glued to the next field. The rules are those of
// kvEvent.
//
// Which part is the prefix: the kernel-style fields start at the last
// "IN=" token that is followed by an "OUT=" token, so a prefix that itself
// looks like fields ("IN=x OUT=y SRC=... DPT=22") stays a prefix. Parser.Prefix
// must equal the logged prefix, blanks around both ignored.
//
// LOGEMU stamps have no year: the year chosen is the latest that puts the
// stamp no more than a week after the current time (ulogdNow), which is
// right for any log less than a year old, across New Year in either
// direction (see logemuYear).
//
// A syslog line from the kernel ("... HOST kernel: ...") has the same stamp
// and host name; it is left to FormatNetfilter by refusing a prefix with a
// "kernel:" word in it, and by requiring IN= to start a word (the kernel
// glues the prefix to IN= unless the prefix ends in a blank). With
// FormatAuto, a LOGEMU line is thus claimed by FormatUlogd, and a kernel
// syslog line by FormatNetfilter.
//
// JSON records are described at parseUlogdJSON.
func (p *Parser) parseUlogd(line []byte, ev *sequence.Event) Reason {
	if j := skipJSONSpace(line); len(j) > 0 && j[0] == '{' {
		return p.parseUlogdJSON(j, ev)
	}
	return p.parseLogemu(line, ev)
}

// ulogdNow is the clock that picks the year of a LOGEMU stamp; tests set it.
var ulogdNow = time.Now

// logemuStampLen is the length of "Mmm dd hh:mm:ss", ctime's month, day and
// time, which is what LOGEMU prints of it.
const logemuStampLen = 15

func (p *Parser) parseLogemu(line []byte, ev *sequence.Event) Reason {
	// The stamp's shape and the " OUT=" of the fields are checked first and
	// cheaply, so that other formats' lines cost a few nanoseconds.
	if len(line) < logemuStampLen+2 || line[3] != ' ' || line[6] != ' ' || line[9] != ':' ||
		line[12] != ':' || line[logemuStampLen] != ' ' {
		return ReasonUnrecognized
	}
	rest := line[logemuStampLen+1:]
	h := 0
	for h < len(rest) && !isBlank(rest[h]) {
		h++
	}
	if h == 0 || h == len(rest) || rest[h] != ' ' {
		return ReasonUnrecognized // LOGEMU writes the host name and a space
	}
	rest = rest[h+1:] // the prefix and the fields
	// The kernel's syslog lines have this stamp too, and are the most
	// common lines with fields in a syslog file: turn them down at once.
	if kvHasPrefix(rest, "kernel: ") || indexLit(rest, " OUT=", 1) < 0 {
		return ReasonUnrecognized
	}
	mon, day, hh, mm, ss, ok := parseLogemuStamp(line[:logemuStampLen])
	if !ok {
		return ReasonUnrecognized
	}
	at, wordStart := kvAnchor(rest)
	if at < 0 || !wordStart || logemuKernelTag(rest[:at]) {
		return ReasonUnrecognized
	}
	if !kvPrefixMatches(rest[:at], p.Prefix) {
		return ReasonPrefix
	}
	var f kvLineFields
	parseKVFields(rest[at:], &f)
	var e sequence.Event
	if r := kvEvent(&f, &e); r != ReasonNone {
		return r
	}
	e.Time = logemuYear(mon, day, hh, mm, ss, ulogdNow())
	e.Input = ev.Input
	*ev = e
	return ReasonNone
}

// indexLit returns the index of the first lit in s, or -1. It looks for
// lit[k] with bytes.IndexByte and checks around each hit: with k chosen so
// that lit[k] is rare in the lines searched, this is several times faster
// than bytes.Index, which keys on the first byte (a quote, in JSON, opens
// every key). Each byte of s is looked at a bounded number of times.
func indexLit(s []byte, lit string, k int) int {
	for i := k; i < len(s); {
		j := bytes.IndexByte(s[i:], lit[k])
		if j < 0 {
			return -1
		}
		i += j
		if start := i - k; start+len(lit) <= len(s) && string(s[start:start+len(lit)]) == lit {
			return start
		}
		i++
	}
	return -1
}

const logemuMonths = "JanFebMarAprMayJunJulAugSepOctNovDec"

// parseLogemuStamp reads "Mmm dd hh:mm:ss" (the day padded with a blank).
func parseLogemuStamp(b []byte) (mon time.Month, day, hh, mm, ss int, ok bool) {
	for i := 0; i+3 <= len(logemuMonths); i += 3 {
		if string(b[:3]) == logemuMonths[i:i+3] {
			mon = time.Month(i/3 + 1)
			break
		}
	}
	d1, ok1 := kvDigit(b[5])
	d0 := 0
	ok0 := b[4] == ' '
	if !ok0 {
		d0, ok0 = kvDigit(b[4])
	}
	day = d0*10 + d1
	var okh, okm, oks bool
	hh, okh = kvTwoDigits(b[7:9])
	mm, okm = kvTwoDigits(b[10:12])
	ss, oks = kvTwoDigits(b[13:15])
	ok = mon != 0 && ok0 && ok1 && okh && okm && oks && day >= 1 && day <= 31 && hh < 24 && mm < 60 && ss < 61
	return
}

func kvDigit(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }

func kvTwoDigits(b []byte) (int, bool) {
	a, ok1 := kvDigit(b[0])
	c, ok2 := kvDigit(b[1])
	return a*10 + c, ok1 && ok2
}

// logemuYear places a yearless local stamp in the latest year that puts
// it no more than a week after now: a logged packet cannot come from the
// future, but clocks differ a little. So a stamp is right for any log less
// than a year old, across New Year in either direction. A day that does not
// exist in a year (29 February) rules that year out.
func logemuYear(mon time.Month, day, hh, mm, ss int, now time.Time) time.Time {
	limit := now.Add(7 * 24 * time.Hour)
	for y := now.Year() + 1; y >= now.Year()-8; y-- {
		t := time.Date(y, mon, day, hh, mm, ss, 0, time.Local)
		if t.Day() == day && !t.After(limit) {
			return t
		}
	}
	return time.Time{}
}

// logemuKernelTag reports whether a word of b is "kernel:", the syslog tag of
// kernel messages: such a line is the kernel's, not ulogd's.
func logemuKernelTag(b []byte) bool {
	for i := 0; i < len(b); {
		for i < len(b) && isBlank(b[i]) {
			i++
		}
		start := i
		for i < len(b) && !isBlank(b[i]) {
			i++
		}
		if string(b[start:i]) == "kernel:" {
			return true
		}
	}
	return false
}

// kvPrefixMatches reports whether the logged prefix (blanks around it
// ignored) is the one the parser wants; an empty Parser.Prefix takes any.
func kvPrefixMatches(logged []byte, want string) bool {
	want = trimBlanksString(want)
	return want == "" || string(trimBlanks(logged)) == want
}

// kvAnchor finds where the kernel-style fields of s start: the "IN=" in
// the word before the last word that starts with "OUT=". The last one,
// because a log prefix may contain such words itself, while the fields the
// kernel or ulogd print after IN= never do. wordStart tells whether IN=
// starts its word, as it does when the prefix is followed by a blank.
// at is -1 when s has no such fields.
//
// The search goes forward, where indexLit is fast, and keeps the last
// match. Every byte is looked at a bounded number of times: each search
// starts after the previous match, and the word before a match lies
// between it and the previous match, so no word is scanned twice.
func kvAnchor(s []byte) (at int, wordStart bool) {
	at = -1
	for from := 0; ; {
		j := indexLit(s[from:], " OUT=", 1)
		if j < 0 {
			return at, wordStart
		}
		j += from
		ws := j
		for ws > 0 && !isBlank(s[ws-1]) {
			ws--
		}
		if k := bytes.LastIndex(s[ws:j], kvInMarker); k >= 0 {
			at, wordStart = ws+k, k == 0
		}
		from = j + 1
	}
}

var kvInMarker = []byte("IN=")

// kvLineFields holds what parseKVFields found in kernel-style fields.
// Slices point into the line. Only the first occurrence of a field counts,
// and nothing inside brackets: an ICMP error quotes the packet it answers
// as "[SRC=... DPT=...]", and the kernel marks a short header as
// "INCOMPLETE [20 bytes]". A transport header the logger could not read
// ("INCOMPLETE", which ulogd glues to the next field) shows as a missing
// DPT=.
type kvLineFields struct {
	in, out, src, dst, proto, dpt   []byte
	hasSrc, hasDst, hasProto, hasDp bool
	// dptEnded is set when a blank follows DPT's value, which proves the
	// number whole: the kernel and ulogd always print more fields after it,
	// so a line ending in "DPT=70" may have been "DPT=7000".
	dptEnded bool
	// fragment is set for a non-zero fragment offset: "FRAG:157" (kernel
	// and ulogd IPv4, kernel IPv6) or "FRAG: 1232" (ulogd IPv6).
	fragment bool
	// flags are the TCP flag words after PROTO=.
	flags sequence.TCPFlags
}

// parseKVFields reads kernel-style fields, "IN=eth0 OUT= MAC=... SRC=...
// DST=... ... PROTO=TCP SPT=... DPT=... ... SYN URGP=0", as the kernel's
// LOG target, nft's log statement (nf_log_syslog) and ulogd's printpkt
// write them. s starts at IN=, as kvAnchor found it.
func parseKVFields(s []byte, f *kvLineFields) {
	*f = kvLineFields{}
	depth := 0 // brackets
	afterProto, fragNext := false, false
	for i := 0; i < len(s); {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		start := i
		for i < len(s) && !isBlank(s[i]) {
			i++
		}
		if start == i {
			break
		}
		tok := s[start:i]
		if depth > 0 || tok[0] == '[' {
			for _, c := range tok {
				switch c {
				case '[':
					depth++
				case ']':
					if depth > 0 {
						depth--
					}
				}
			}
			fragNext = false
			continue
		}
		if fragNext {
			// ulogd's IPv6 "FRAG: 1232": the offset is a word of its own.
			fragNext = false
			if kvNonZeroNumber(tok) {
				f.fragment = true
			}
			continue
		}
		switch tok[0] {
		case 'I':
			if kvHasPrefix(tok, "IN=") && f.in == nil {
				f.in = tok[3:]
			}
		case 'O':
			if kvHasPrefix(tok, "OUT=") && f.out == nil {
				f.out = tok[4:]
			}
		case 'S':
			switch {
			case kvHasPrefix(tok, "SRC="):
				if !f.hasSrc {
					f.src, f.hasSrc = tok[4:], true
				}
			case string(tok) == "SYN" && afterProto:
				f.flags |= sequence.SYN
			}
		case 'D':
			switch {
			case kvHasPrefix(tok, "DST="):
				if !f.hasDst {
					f.dst, f.hasDst = tok[4:], true
				}
			case kvHasPrefix(tok, "DPT="):
				if !f.hasDp {
					f.dpt, f.hasDp, f.dptEnded = tok[4:], true, i < len(s)
				}
			}
		case 'P':
			switch {
			case kvHasPrefix(tok, "PROTO="):
				if !f.hasProto {
					f.proto, f.hasProto, afterProto = tok[6:], true, true
				}
			case string(tok) == "PSH" && afterProto:
				f.flags |= sequence.PSH
			}
		case 'F':
			switch {
			case string(tok) == "FRAG:":
				fragNext = true
			case kvHasPrefix(tok, "FRAG:"):
				if kvNonZeroNumber(tok[5:]) {
					f.fragment = true
				}
			case string(tok) == "FIN" && afterProto:
				f.flags |= sequence.FIN
			}
		case 'A':
			if string(tok) == "ACK" && afterProto {
				f.flags |= sequence.ACK
			}
		case 'R':
			if string(tok) == "RST" && afterProto {
				f.flags |= sequence.RST
			}
		case 'U':
			if string(tok) == "URG" && afterProto {
				f.flags |= sequence.URG
			}
		case 'E':
			if string(tok) == "ECE" && afterProto {
				f.flags |= sequence.ECE
			}
		case 'C':
			if string(tok) == "CWR" && afterProto {
				f.flags |= sequence.CWR
			}
		}
	}
}

// kvHasPrefix is bytes.HasPrefix for a string prefix, without converting.
func kvHasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// kvNonZeroNumber reports whether b is a decimal number other than zero.
func kvNonZeroNumber(b []byte) bool {
	nonZero := false
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		nonZero = nonZero || c != '0'
	}
	return nonZero
}

// kvEvent turns kernel-style fields into an event, or says why they are
// not one, checking in this order:
//
//   - OUT= set and IN= empty: the packet was leaving the host
//     (ReasonOutbound). A forwarded packet (both set) is an event: it was
//     sent through this host, and a door's target can select it.
//   - a non-zero fragment offset: ReasonFragment, whatever ports the line
//     shows (ulogd reads them from the payload).
//   - PROTO= missing or empty: ReasonTruncated.
//   - PROTO= other than TCP or UDP: ReasonBadProto for the protocols with
//     ports (SCTP, UDPLITE, DCCP), else ReasonNoPorts (ICMP, ICMPv6, ESP,
//     numbers, ...).
//   - DPT= missing (INCOMPLETE, or the line was cut) or not followed by
//     a blank: ReasonTruncated.
//   - DPT= not a number in 1..65535: ReasonBadPort.
//   - SRC= missing: ReasonTruncated; SRC= or DST= not an address:
//     ReasonBadAddress.
//
// TCP flags are known for TCP (ECE and CWR only where the kernel prints
// them; ulogd does not); UDP events have no flags.
func kvEvent(f *kvLineFields, e *sequence.Event) Reason {
	if len(f.in) == 0 && len(f.out) > 0 {
		return ReasonOutbound
	}
	if f.fragment {
		return ReasonFragment
	}
	if !f.hasProto || len(f.proto) == 0 {
		return ReasonTruncated
	}
	var proto sequence.Proto
	switch {
	case equalFoldASCII(f.proto, "tcp"):
		proto = sequence.TCP
	case equalFoldASCII(f.proto, "udp"):
		proto = sequence.UDP
	case equalFoldASCII(f.proto, "sctp"), equalFoldASCII(f.proto, "udplite"), equalFoldASCII(f.proto, "dccp"):
		return ReasonBadProto
	default:
		return ReasonNoPorts
	}
	if !f.hasDp || !f.dptEnded {
		return ReasonTruncated
	}
	port, ok := kvPort(f.dpt)
	if !ok {
		return ReasonBadPort
	}
	if !f.hasSrc {
		return ReasonTruncated
	}
	src, ok := kvAddr(f.src)
	if !ok {
		return ReasonBadAddress
	}
	var dst netip.Addr
	if f.hasDst {
		if dst, ok = kvAddr(f.dst); !ok {
			return ReasonBadAddress
		}
	}
	*e = sequence.Event{Src: src, Dst: dst, Port: port, Proto: proto}
	if proto == sequence.TCP {
		e.Flags, e.FlagsKnown = f.flags, true
	}
	return ReasonNone
}

// kvPort parses a port written in decimal digits, 1..65535.
func kvPort(b []byte) (uint16, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= 65535 {
			n = n*10 + int(c-'0')
		}
	}
	if n == 0 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// kvAddr parses an address field of a log line: an IPv4 or IPv6
// address, compressed or not, normalised as events need.
func kvAddr(b []byte) (netip.Addr, bool) {
	zone := -1
	for i, c := range b {
		if isAddrChar(c) {
			continue
		}
		if c == '%' && zone < 0 {
			zone = i
			break
		}
		return netip.Addr{}, false
	}
	return parseAddr(b, zone)
}

// parseUlogdJSON parses a record of ulogd2's JSON output plugin: one
// object per line, such as
//
//	{"timestamp": "2026-11-22T03:01:23.242291", "dvc": "Netfilter",
//	 "oob.prefix": "knock", "oob.time.sec": 1795316483, "oob.time.usec": 242291,
//	 "oob.family": 2, "ip.protocol": 6, "ip.fragoff": 16384, "src_port": 58254,
//	 "dest_port": 7000, "tcp.syn": 1, "tcp.ack": 0, ..., "oob.in": "lo",
//	 "oob.out": "", "src_ip": "127.0.0.1", "dest_ip": "127.0.0.1", ...}
//
// A line is a record when it is one valid JSON object (as encoding/json
// would decode it into a map: escapes decoded, invalid UTF-8 replaced, the
// last of duplicate keys winning) with a key that starts with "oob." written
// as such: the literal `"oob.` must appear in the line, which is what makes
// other lines cost a few nanoseconds. Then, in this order:
//
//   - "oob.prefix" (missing: empty) must equal Parser.Prefix, blanks
//     around both ignored, else ReasonPrefix.
//   - outbound (ReasonOutbound): an output interface and no input one, from
//     "oob.out" and "oob.in" (strings, non-empty meaning set), or where a
//     stack lacks the IFINDEX plugin from "oob.ifindex_out" and
//     "oob.ifindex_in" (non-zero meaning set).
//   - a non-first fragment (ReasonFragment): "ip.fragoff" & 0x1fff (IPv4;
//     the field includes the DF and MF flags) or "ip6.fragoff" non-zero.
//   - the protocol, "ip.protocol" (else "ip6.nexthdr"): 6 TCP, 17 UDP;
//     132, 136 and 33 (SCTP, UDP-Lite, DCCP) ReasonBadProto; anything else
//     or nothing ReasonNoPorts.
//   - "dest_port" (older ulogd: "tcp.dport"/"udp.dport") missing:
//     ReasonTruncated (ulogd could not read the transport header); not an
//     integer in 1..65535: ReasonBadPort.
//   - "src_ip" (older: "ip.saddr.str") missing or not an address, or
//     "dest_ip" ("ip.daddr.str") present and not one: ReasonBadAddress.
//
// Integers are JSON numbers written as plain digits, as ulogd writes them.
// TCP flags come from "tcp.syn", "tcp.ack", "tcp.fin", "tcp.rst",
// "tcp.psh", "tcp.urg" and "tcp.res2" (ECE, CWR), any non-zero value meaning
// set. The time is "oob.time.sec" and "oob.time.usec" (the kernel's stamp),
// else "timestamp" (local time unless it has a zone), else zero.
func (p *Parser) parseUlogdJSON(line []byte, ev *sequence.Event) Reason {
	if indexLit(line, `"oob.`, 1) < 0 {
		return ReasonUnrecognized
	}
	var r ulogdRecord
	if !r.scan(line) {
		return ReasonUnrecognized
	}
	if !r.needsDecoding() {
		return p.ulogdJSONEvent(&r, ev)
	}
	// Some string needs its escapes decoded: rare (ulogd escapes only
	// quotes, backslashes and control characters).
	bp := jsonGetBuf()
	defer jsonPutBuf(bp)
	*bp = r.decode((*bp)[:0])
	return p.ulogdJSONEvent(&r, ev)
}

// The keys of a ulogd JSON record that matter, as indexes into
// ulogdRecord.vals.
const (
	ukPrefix = iota
	ukIn
	ukOut
	ukIfIn
	ukIfOut
	ukFragoff
	ukFragoff6
	ukProto
	ukNexthdr
	ukDport
	ukTCPDport
	ukUDPDport
	ukSrc
	ukSrcOld
	ukDst
	ukDstOld
	ukSyn
	ukAck
	ukFin
	ukRst
	ukPsh
	ukUrg
	ukRes2
	ukSec
	ukUsec
	ukTimestamp
	ukCount
)

// ulogdKey returns the index of a key that matters, or -1.
func ulogdKey(k string) int {
	switch k {
	case "oob.prefix":
		return ukPrefix
	case "oob.in":
		return ukIn
	case "oob.out":
		return ukOut
	case "oob.ifindex_in":
		return ukIfIn
	case "oob.ifindex_out":
		return ukIfOut
	case "ip.fragoff":
		return ukFragoff
	case "ip6.fragoff":
		return ukFragoff6
	case "ip.protocol":
		return ukProto
	case "ip6.nexthdr":
		return ukNexthdr
	case "dest_port":
		return ukDport
	case "tcp.dport":
		return ukTCPDport
	case "udp.dport":
		return ukUDPDport
	case "src_ip":
		return ukSrc
	case "ip.saddr.str":
		return ukSrcOld
	case "dest_ip":
		return ukDst
	case "ip.daddr.str":
		return ukDstOld
	case "tcp.syn":
		return ukSyn
	case "tcp.ack":
		return ukAck
	case "tcp.fin":
		return ukFin
	case "tcp.rst":
		return ukRst
	case "tcp.psh":
		return ukPsh
	case "tcp.urg":
		return ukUrg
	case "tcp.res2":
		return ukRes2
	case "oob.time.sec":
		return ukSec
	case "oob.time.usec":
		return ukUsec
	case "timestamp":
		return ukTimestamp
	}
	return -1
}

// ulogdRecord is the scan of one ulogd JSON record.
type ulogdRecord struct {
	vals   [ukCount]jsonValue
	hasOob bool // some key starts with "oob."
}

func (r *ulogdRecord) scan(line []byte) bool {
	var it jsonObjectIter
	it.init(line)
	for it.next() {
		k := it.key
		if !it.keyPlain {
			// An escaped key is decoded to be looked up; the keys that
			// matter are short, so a longer one is only checked for "oob.".
			var kb [jsonKeyMax + utf8.UTFMax]byte
			k = jsonUnquoteMax(kb[:0], k, jsonKeyMax)
		}
		if kvHasPrefix(k, "oob.") {
			r.hasOob = true
		}
		if i := ulogdKey(unsafe.String(unsafe.SliceData(k), len(k))); i >= 0 {
			r.vals[i] = it.val
		}
	}
	return it.ok() && r.hasOob
}

// needsDecoding reports whether a string the event needs has escapes or
// bytes that encoding/json would replace.
func (r *ulogdRecord) needsDecoding() bool {
	for _, k := range [...]int{ukPrefix, ukIn, ukOut, ukSrc, ukSrcOld, ukDst, ukDstOld, ukTimestamp} {
		if v := &r.vals[k]; v.kind == jsonString && !v.plain {
			return true
		}
	}
	return false
}

// decode replaces the strings that need it by their decoded bytes,
// appended to buf, and returns buf.
func (r *ulogdRecord) decode(buf []byte) []byte {
	for _, k := range [...]int{ukPrefix, ukIn, ukOut, ukSrc, ukSrcOld, ukDst, ukDstOld, ukTimestamp} {
		if v := &r.vals[k]; v.kind == jsonString && !v.plain {
			start := len(buf)
			buf = jsonUnquote(buf, v.raw)
			v.raw, v.plain = buf[start:len(buf):len(buf)], true
		}
	}
	return buf
}

// str returns the string value of key k, or nil and false when it is
// missing or not a string.
func (r *ulogdRecord) str(k int) ([]byte, bool) {
	v := &r.vals[k]
	return v.raw, v.kind == jsonString
}

// uint returns the value of key k when it is an integer written in plain
// digits; present tells whether the key is there at all.
func (r *ulogdRecord) uint(k int) (n uint64, present, ok bool) {
	v := &r.vals[k]
	if v.kind == jsonNone {
		return 0, false, false
	}
	if v.kind != jsonNumber {
		return 0, true, false
	}
	n, ok = jsonUintDigits(v.raw)
	return n, true, ok
}

// flag reports whether TCP flag key k is set.
func (r *ulogdRecord) flag(k int) bool {
	n, _, ok := r.uint(k)
	return ok && n != 0
}

// set reports whether an interface is set: name key (string, non-empty)
// when present, else ifindex key (non-zero).
func (r *ulogdRecord) ifaceSet(name, ifindex int) bool {
	if r.vals[name].kind != jsonNone {
		s, _ := r.str(name)
		return len(s) > 0
	}
	n, _, ok := r.uint(ifindex)
	return ok && n != 0
}

func (p *Parser) ulogdJSONEvent(r *ulogdRecord, ev *sequence.Event) Reason {
	prefix, _ := r.str(ukPrefix)
	if !kvPrefixMatches(prefix, p.Prefix) {
		return ReasonPrefix
	}
	if r.ifaceSet(ukOut, ukIfOut) && !r.ifaceSet(ukIn, ukIfIn) {
		return ReasonOutbound
	}
	if n, _, ok := r.uint(ukFragoff); ok && n&0x1fff != 0 {
		return ReasonFragment
	}
	if n, _, ok := r.uint(ukFragoff6); ok && n != 0 {
		return ReasonFragment
	}
	protoKey := ukProto
	if r.vals[ukProto].kind == jsonNone {
		protoKey = ukNexthdr
	}
	pn, _, ok := r.uint(protoKey)
	var proto sequence.Proto
	switch {
	case ok && pn == 6:
		proto = sequence.TCP
	case ok && pn == 17:
		proto = sequence.UDP
	case ok && (pn == 132 || pn == 136 || pn == 33):
		return ReasonBadProto
	default:
		return ReasonNoPorts
	}
	portKey := ukDport
	if r.vals[ukDport].kind == jsonNone {
		portKey = ukTCPDport
		if proto == sequence.UDP {
			portKey = ukUDPDport
		}
	}
	pv, present, ok := r.uint(portKey)
	if !present {
		return ReasonTruncated
	}
	if !ok || pv == 0 || pv > 65535 {
		return ReasonBadPort
	}
	srcKey, dstKey := ukSrc, ukDst
	if r.vals[ukSrc].kind == jsonNone {
		srcKey = ukSrcOld
	}
	if r.vals[ukDst].kind == jsonNone {
		dstKey = ukDstOld
	}
	s, isStr := r.str(srcKey)
	if !isStr {
		return ReasonBadAddress
	}
	src, ok := kvAddr(s)
	if !ok {
		return ReasonBadAddress
	}
	var dst netip.Addr
	if r.vals[dstKey].kind != jsonNone {
		d, isStr := r.str(dstKey)
		if !isStr {
			return ReasonBadAddress
		}
		if dst, ok = kvAddr(d); !ok {
			return ReasonBadAddress
		}
	}
	e := sequence.Event{Src: src, Dst: dst, Port: uint16(pv), Proto: proto, Input: ev.Input}
	if proto == sequence.TCP {
		e.FlagsKnown = true
		for _, fl := range [...]struct {
			key  int
			flag sequence.TCPFlags
		}{{ukSyn, sequence.SYN}, {ukAck, sequence.ACK}, {ukFin, sequence.FIN}, {ukRst, sequence.RST}, {ukPsh, sequence.PSH}, {ukUrg, sequence.URG}} {
			if r.flag(fl.key) {
				e.Flags |= fl.flag
			}
		}
		// tcp.res2 holds the two bits after URG: ECE, then CWR.
		if n, _, ok := r.uint(ukRes2); ok {
			if n&1 != 0 {
				e.Flags |= sequence.ECE
			}
			if n&2 != 0 {
				e.Flags |= sequence.CWR
			}
		}
	}
	e.Time = r.time()
	*ev = e
	return ReasonNone
}

// time returns the record's time: the kernel's stamp when ulogd passed it
// on, else the "timestamp" string, else zero.
func (r *ulogdRecord) time() time.Time {
	if sec, _, ok := r.uint(ukSec); ok && sec <= 1<<62 {
		usec, _, ok := r.uint(ukUsec)
		if !ok || usec >= 1e6 {
			usec = 0
		}
		return time.Unix(int64(sec), int64(usec)*1e3)
	}
	if s, ok := r.str(ukTimestamp); ok {
		if t, ok := ulogdISOStamp(s); ok {
			return t
		}
	}
	return time.Time{}
}

// jsonUintDigits parses a non-empty run of decimal digits that fits in
// 63 bits.
func jsonUintDigits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// ulogdISOStamp parses "2006-01-02T15:04:05", with an optional fraction of
// a second and an optional zone ("Z", "+01:00" or "+0100"), as ulogd's
// JSON plugin writes its "timestamp". Without a zone the time is local,
// as ulogd formats it. Hand-written because time.Parse allocates on every
// error.
func ulogdISOStamp(b []byte) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	var v [6]int
	for i, at := range [...]int{0, 5, 8, 11, 14, 17} {
		n, ok := kvTwoDigits(b[at : at+2])
		if !ok {
			return time.Time{}, false
		}
		v[i] = n
	}
	y2, ok := kvTwoDigits(b[2:4])
	if !ok {
		return time.Time{}, false
	}
	year := v[0]*100 + y2
	mon, day, hh, mm, ss := v[1], v[2], v[3], v[4], v[5]
	if mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		i, scale := 1, 100000000
		for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	if len(rest) == 0 {
		t := time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, time.Local)
		return t, t.Day() == day
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':',
		len(rest) == 5 && (rest[0] == '+' || rest[0] == '-'):
		zh, ok1 := kvTwoDigits(rest[1:3])
		zm, ok2 := kvTwoDigits(rest[len(rest)-2:])
		if !ok1 || !ok2 || zh > 23 || zm > 59 {
			return time.Time{}, false
		}
		offset = zh*3600 + zm*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, time.UTC)
	if t.Day() != day {
		return time.Time{}, false
	}
	return t.Add(-time.Duration(offset) * time.Second), true
}
