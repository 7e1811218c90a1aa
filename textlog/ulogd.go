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

// parseUlogd parses one line of ulogd2 output: a LOGEMU line, a line of
// its SYSLOG output, or a record of its JSON output plugin, told apart by
// the first byte and the framing.
//
// LOGEMU lines are "Mmm dd hh:mm:ss HOST PREFIX IN=... OUT=... MAC=... SRC=...
// ..." as util/printpkt.c writes them: a ctime stamp in the local time zone
// of the machine running ulogd, its host name, the log prefix followed by
// one blank (also when the prefix is empty), then the kernel-style fields,
// which kernel.go reads as it reads the kernel's own. The SYSLOG output
// plugin sends the same prefix and fields as the message of the program
// "ulogd" (or one Parser.Programs names). Since ulogd always writes a blank
// after the prefix, IN= must start a word: a prefix glued to it is the
// kernel's way, and such lines are left to FormatNetfilter, as are the
// kernel's own syslog messages. A kernel record in any other program's
// message is ReasonProgram.
//
// LOGEMU has no tag, so a log prefix whose first word ends in ':'
// ("DROP: ") reads as a syslog tag; such a line counts when Parser.Prefix
// names the whole prefix, and is ReasonProgram otherwise.
//
// Which part is the prefix: the kernel-style fields start at the last
// "IN=" that is followed by an " OUT=" word, so a prefix that itself looks
// like fields ("IN=x OUT=y SRC=... DPT=22") stays a prefix. Parser.Prefix
// must equal the logged prefix, blanks around both ignored.
//
// LOGEMU stamps have no year: Parser.Now places them in one (see
// frame.go).
//
// JSON records are described at parseUlogdJSON.
func (p *Parser) parseUlogd(line []byte, fr *frame, ev *sequence.Event) Reason {
	if j := skipJSONSpace(line); len(j) > 0 && j[0] == '{' {
		return p.parseUlogdJSON(j, ev)
	}
	if fr.firstOut(line) < 0 {
		return ReasonUnrecognized // no kernel-style fields, at once
	}
	return p.parseUlogdText(line, fr.read(line), ev)
}

// logemuStampLen is the length of "Mmm dd hh:mm:ss", ctime's month, day and
// time, which is what LOGEMU prints of it.
const logemuStampLen = 15

// parseUlogdText parses a LOGEMU line or a line of ulogd's SYSLOG output.
func (p *Parser) parseUlogdText(line []byte, fr *frame, ev *sequence.Event) Reason {
	// LOGEMU writes the stamp, one space, the host name and one space.
	logemu := !fr.pri && fr.broken == ReasonNone && len(line) > logemuStampLen+2 &&
		line[logemuStampLen] == ' ' && fr.stamp.kind == stampNoYear
	var rest []byte // the prefix and the fields
	tagged := false
	switch {
	case fr.kind == frameStamp && fr.syslogStamp && logemu && len(line)-len(fr.msg) == logemuStampLen+1:
		h := tokenEnd(fr.msg, 0)
		if h == len(fr.msg) || fr.msg[h] != ' ' {
			return ReasonUnrecognized
		}
		rest = fr.msg[h+1:]
	case fr.kind == frameSyslog && fr.broken == ReasonNone && p.programOK(FormatUlogd, fr):
		rest = fr.msg
	case fr.kind == frameSyslog && logemu && trimBlanksString(p.Prefix) != "" && len(fr.host) > 0 &&
		len(line)-len(fr.afterHost) == logemuStampLen+1+len(fr.host)+1:
		rest, tagged = fr.afterHost, true
	case fr.kind == frameSyslog && fr.broken == ReasonNone && string(fr.program) != "kernel":
		// The kernel's own messages are FormatNetfilter's to judge.
		if _, ok := fr.kernelIn(line, len(line)-len(fr.msg)); ok {
			return ReasonProgram
		}
		return ReasonUnrecognized
	default:
		return ReasonUnrecognized
	}
	k, ok := fr.kernelIn(line, len(line)-len(rest))
	if !ok || k.in > 0 && !isBlank(k.msg[k.in-1]) {
		return ReasonUnrecognized
	}
	if !k.prefixMatches(0, p.Prefix) {
		if tagged {
			return ReasonProgram
		}
		return ReasonPrefix
	}
	if r := k.event(ev); r != ReasonNone {
		return r
	}
	ev.Time = fr.stamp.time(p.Now, p.Location)
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

func kvDigit(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }

func kvTwoDigits(b []byte) (int, bool) {
	a, ok1 := kvDigit(b[0])
	c, ok2 := kvDigit(b[1])
	return a*10 + c, ok1 && ok2
}

// kvPrefixMatches reports whether the logged prefix (blanks around it
// ignored) is the one the parser wants; an empty Parser.Prefix takes any.
func kvPrefixMatches(logged []byte, want string) bool {
	want = trimBlanksString(want)
	return want == "" || string(trimBlanks(logged)) == want
}

// kvHasPrefix is bytes.HasPrefix for a string prefix, without converting.
func kvHasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
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
	if zone < 0 {
		return parseAddrFast(b)
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
// else "timestamp" (in Parser.Location unless it has a zone), else zero.
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
	e.Time = r.time(p.Location)
	*ev = e
	return ReasonNone
}

// time returns the record's time: the kernel's stamp when ulogd passed it
// on, else the "timestamp" string, else zero.
func (r *ulogdRecord) time(loc *time.Location) time.Time {
	if sec, _, ok := r.uint(ukSec); ok && sec <= 1<<62 {
		usec, _, ok := r.uint(ukUsec)
		if !ok || usec >= 1e6 {
			usec = 0
		}
		return time.Unix(int64(sec), int64(usec)*1e3)
	}
	if s, ok := r.str(ukTimestamp); ok {
		if t, ok := ulogdISOStamp(s, loc); ok {
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
// JSON plugin writes its "timestamp". Without a zone the time is in loc
// (time.Local if nil), as ulogd formats it in its own. Hand-written because time.Parse allocates on every
// error.
func ulogdISOStamp(b []byte, loc *time.Location) (time.Time, bool) {
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
		if loc == nil {
			loc = time.Local
		}
		t := time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, loc)
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
