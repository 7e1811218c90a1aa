package textlog

import (
	"bytes"
	"time"

	"portknock/sequence"
)

// filterlogImplemented: pfSense/OPNsense filterlog lines are parsed.
const filterlogImplemented = true

// pfSense and OPNsense log every packet a logging pf rule matched through
// their filterlog daemon, one comma-separated line per packet:
//
//	rule,subrule,anchor,tracker,interface,reason,action,direction,ipversion,
//
// then for IPv4
//
//	tos,ecn,ttl,id,offset,flags,protoid,proto,length,src,dst,
//
// or for IPv6 (protocol name and number the other way round)
//
//	class,flowlabel,hoplimit,proto,protoid,length,src,dst,
//
// and for TCP and UDP
//
//	srcport,dstport,datalen[,tcpflags,seq,ack,window,urg,options]
//
// The framing is BSD syslog ("Nov 22 12:00:01 fw filterlog[123]: CSV",
// with or without host name and <PRI>) or RFC 5424
// ("<134>1 2026-11-22T12:00:01.123456+00:00 fw filterlog 123 - [meta ...] CSV").
//
// Rules, as for the other firewalls' formats:
//   - Only "block" (pf's drop, whether or not it returns a RST or an ICMP
//     error) and "match" (a "match log" rule observes without deciding)
//     are knocks. A "pass" line is a connection the firewall let through:
//     knocking on a port that is open to everyone proves nothing, and
//     logged pass rules would turn every visitor of a service into a
//     knocker. Such lines are reported as ReasonPrefix, because like a
//     line without the prefix they were not logged by the knock rule.
//   - Direction "out" is ReasonOutbound.
//   - Prefix, when set, must equal the tracker field (pfSense's rule
//     tracking ID, OPNsense's rule label), which identifies a rule and
//     stays the same when the rule set is reordered or reloaded. Rule
//     numbers change with every edit of the rule set, so they are not
//     accepted as a prefix.
//   - A non-zero fragment offset (IPv4) or a fragment header (IPv6) is
//     ReasonFragment; a first fragment carries its ports and is an event.
//   - ev.Time is the RFC 5424 or leading RFC 3339 timestamp. A BSD syslog
//     stamp ("Nov 22 12:00:01") has no year and no zone, and guessing
//     them would need a clock the parser must not have, so such lines
//     leave ev.Time zero and the reader stamps the event when it reads
//     the line.

// flogMarker must occur in every filterlog line; FormatAuto rejects other
// lines on its absence alone.
var flogMarker = []byte("filterlog")

// flogFields is how many CSV fields are looked at: up to the one after the
// IPv4 TCP flags, which proves that the flags were not cut short.
const flogFields = 25

// parseFilterlog parses a pfSense/OPNsense filterlog line.
func (p *Parser) parseFilterlog(line []byte, ev *sequence.Event) Reason {
	i := bytes.Index(line, flogMarker)
	if i < 0 {
		return ReasonUnrecognized
	}
	csv, t, r := flogFrame(line, i)
	if r != ReasonNone {
		return r
	}

	// Find the fields needed, and no more: the TCP options that follow
	// can be long.
	var f flogCSV
	f.split(csv)
	n := f.n

	// The fields every line has, up to the IP version. The rule number
	// tells filterlog's CSV from other text after a "filterlog:" tag.
	if n == 1 {
		if len(csv) == 0 || bsdUintOK(csv) {
			return ReasonTruncated // cut within the rule number
		}
		return ReasonUnrecognized
	}
	if !bsdUintOK(f.at(0)) {
		return ReasonUnrecognized
	}
	if n < 9 {
		return ReasonTruncated
	}
	if pfx := trimBlanksString(p.Prefix); pfx != "" && string(f.at(3)) != pfx {
		return ReasonPrefix
	}
	switch string(f.at(6)) {
	case "block", "match":
	default:
		return ReasonPrefix
	}
	switch string(f.at(7)) {
	case "in":
	case "out":
		return ReasonOutbound
	default:
		return ReasonUnrecognized
	}

	// The IP fields: where source, destination and the protocol are.
	var protoField, srcAt int
	switch string(f.at(8)) {
	case "4":
		if n > 13 && len(f.at(13)) > 0 && !flogAllZero(f.at(13)) {
			if !bsdUintOK(f.at(13)) {
				return ReasonUnrecognized
			}
			return ReasonFragment
		}
		protoField, srcAt = 15, 18
	case "6":
		protoField, srcAt = 13, 15
	default:
		if n == 9 && len(f.at(8)) == 0 {
			return ReasonTruncated
		}
		return ReasonBadProto // not IP: nothing to knock with
	}
	if n <= protoField+1 {
		return ReasonTruncated
	}
	proto, ok := bsdUint(f.at(protoField), 255)
	if !ok {
		return ReasonUnrecognized
	}
	switch proto {
	case 6, 17:
	case 44:
		return ReasonFragment // an IPv6 fragment header pf did not reassemble
	case 33, 132, 136:
		return ReasonBadProto // DCCP, SCTP, UDP-Lite: ports, but not TCP or UDP
	default:
		return ReasonNoPorts
	}

	// The ports follow the addresses; the destination port is complete
	// only with the data length after it.
	if n <= srcAt+4 {
		return ReasonTruncated
	}
	src, ok := bsdAddr(f.at(srcAt))
	if !ok {
		return ReasonBadAddress
	}
	dst, ok := bsdAddr(f.at(srcAt + 1))
	if !ok {
		return ReasonBadAddress
	}
	port, ok := bsdPort(f.at(srcAt + 3))
	if !ok {
		return ReasonBadPort
	}
	var flags sequence.TCPFlags
	if proto == 6 {
		// The flags field is complete only with the sequence number
		// after it: a cut "SA" would otherwise read as a bare SYN.
		fl := srcAt + 5
		if n <= fl+1 {
			return ReasonTruncated
		}
		if flags, ok = flogFlags(f.at(fl)); !ok {
			return ReasonBadProto
		}
	}

	ev.Src = src
	ev.Dst = dst
	ev.Port = port
	if proto == 6 {
		ev.Proto = sequence.TCP
		ev.Flags = flags
		ev.FlagsKnown = true
	} else {
		ev.Proto = sequence.UDP
		ev.Flags = 0
		ev.FlagsKnown = false
	}
	ev.Time = t
	return ReasonNone
}

// flogCSV locates the first flogFields fields of a CSV line by the
// offsets of the commas between them. Only offsets are stored, because
// storing a slice per field costs more than finding it.
type flogCSV struct {
	csv []byte
	end [32]int // end[k]: index of the comma after field k, or len(csv)
	n   int     // number of fields found; field k is complete if k < n-1
}

func (c *flogCSV) split(csv []byte) {
	c.csv = csv
	n := 0
	for k := 0; k < len(csv); k++ {
		if csv[k] == ',' {
			c.end[n&31] = k
			n++
			if n == flogFields-1 {
				break
			}
		}
	}
	// The last field ends at the end of the line or, when the search
	// stopped early, at the next comma.
	last := len(csv)
	if n == flogFields-1 {
		rest := csv[c.end[(n-1)&31]+1:]
		if k := bytes.IndexByte(rest, ','); k >= 0 {
			last = len(csv) - len(rest) + k
		}
	}
	c.end[n&31] = last
	c.n = n + 1
}

// at returns field k, which must be < n.
func (c *flogCSV) at(k int) []byte {
	begin := 0
	if k > 0 {
		begin = c.end[(k-1)&31] + 1
	}
	return c.csv[begin:c.end[k&31]]
}

// flogFrame finds the CSV of a filterlog line, first being the index of
// the first "filterlog". It returns the time the framing carries (zero for
// BSD syslog), or ReasonUnrecognized when no filterlog framing is found,
// or ReasonTruncated when the line ends inside it.
func flogFrame(line []byte, first int) (csv []byte, t time.Time, r Reason) {
	// RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG].
	// The header is walked field by field so that "filterlog" counts only
	// as the APP-NAME, and the structured data, which may hold anything,
	// is skipped as a whole.
	if h, ok := bsdRFC5424(line); ok && string(h.app) == "filterlog" {
		if h.cut {
			return nil, time.Time{}, ReasonTruncated
		}
		return h.msg, h.time, ReasonNone
	}

	// BSD syslog, or any framing that ends in "filterlog[PID]: " or
	// "filterlog: ". Each occurrence is checked in constant time, so a
	// line full of the word stays linear.
	t, _, _ = bsdLeadingTime(line)
	for i := first; ; {
		if i == 0 || isBlank(line[i-1]) || line[i-1] == '>' {
			j := i + len(flogMarker)
			if j < len(line) && line[j] == '[' {
				k := j + 1
				for k < len(line) && k-j <= 11 && line[k] >= '0' && line[k] <= '9' {
					k++
				}
				if k < len(line) && line[k] == ']' && k > j+1 {
					j = k + 1
				} else if k == len(line) {
					return nil, time.Time{}, ReasonTruncated
				}
			}
			if j < len(line) && line[j] == ':' {
				j++
				for j < len(line) && isBlank(line[j]) {
					j++
				}
				return line[j:], t, ReasonNone
			}
		}
		k := bytes.Index(line[i+1:], flogMarker)
		if k < 0 {
			return nil, time.Time{}, ReasonUnrecognized
		}
		i += 1 + k
	}
}

// flogFlags reads filterlog's TCP flags: one letter per flag, in the order
// tcpdump's old printer used ("S", "SA", "FPA", "R"). An empty field is a
// packet with no flags.
func flogFlags(b []byte) (sequence.TCPFlags, bool) {
	var f sequence.TCPFlags
	for _, c := range b {
		switch c {
		case 'F':
			f |= sequence.FIN
		case 'S':
			f |= sequence.SYN
		case 'R':
			f |= sequence.RST
		case 'P':
			f |= sequence.PSH
		case 'A':
			f |= sequence.ACK
		case 'U':
			f |= sequence.URG
		case 'E':
			f |= sequence.ECE
		case 'W':
			f |= sequence.CWR
		default:
			return 0, false
		}
	}
	return f, true
}

// flogAllZero reports whether b is a number equal to zero ("0", "00").
func flogAllZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return len(b) > 0
}

// bsdSyslog5424 is what the RFC 5424 header gives: the timestamp (zero
// for "-"), the APP-NAME, and MSG. cut is set when the line ends inside
// the structured data.
type bsdSyslog5424 struct {
	time time.Time
	app  []byte
	msg  []byte
	cut  bool
}

// bsdRFC5424 parses "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD
// [MSG]". ok is false when line does not start with that header (up to
// APP-NAME); a line cut later is reported with cut.
func bsdRFC5424(line []byte) (h bsdSyslog5424, ok bool) {
	i := bsdPRI(line)
	if i == 0 || i+2 > len(line) || line[i] != '1' || line[i+1] != ' ' {
		return h, false
	}
	s := line[i+2:]
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	} else {
		t, n, ok := bsdRFC3339(s)
		if !ok {
			return h, false
		}
		h.time, s = t, s[n:]
	}
	var host []byte
	if host, s, ok = bsdField(s); !ok || len(host) == 0 {
		return h, false
	}
	if h.app, s, ok = bsdField(s); !ok {
		return h, false
	}
	var procid, msgid []byte
	procid, s, ok = bsdField(s)
	if ok {
		msgid, s, ok = bsdField(s)
	}
	if !ok || len(procid) == 0 || len(msgid) == 0 {
		h.cut = true
		return h, true
	}
	// s is " SD[ MSG]".
	if len(s) < 2 || s[0] != ' ' {
		h.cut = true
		return h, true
	}
	s = s[1:]
	if s[0] == '-' {
		s = s[1:]
	} else {
		for len(s) > 0 && s[0] == '[' {
			// An SD-ELEMENT: up to the first ']' outside a quoted
			// PARAM-VALUE, in which '\' escapes the next byte.
			k, quoted := 1, false
			for ; k < len(s); k++ {
				c := s[k]
				if quoted {
					if c == '\\' {
						k++
					} else if c == '"' {
						quoted = false
					}
					continue
				}
				if c == '"' {
					quoted = true
				} else if c == ']' {
					break
				}
			}
			if k >= len(s) {
				h.cut = true
				return h, true
			}
			s = s[k+1:]
		}
	}
	if len(s) == 0 || s[0] != ' ' {
		h.cut = true
		return h, true
	}
	h.msg = bytes.TrimPrefix(s[1:], []byte("\xef\xbb\xbf"))
	return h, true
}

// bsdField returns the next header field of s, which starts with the
// blank before it, and what follows the field. ok is false when s does not
// start with a blank and a field.
func bsdField(s []byte) (field, rest []byte, ok bool) {
	if len(s) < 2 || s[0] != ' ' {
		return nil, s, false
	}
	s = s[1:]
	k := bytes.IndexByte(s, ' ')
	if k < 0 {
		return s, nil, false
	}
	return s[:k], s[k:], k > 0
}
