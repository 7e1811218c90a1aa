package textlog

import (
	"bytes"

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
// The CSV must begin the message of the program "filterlog" (or one
// Parser.Programs names), in BSD syslog framing ("Nov 22 12:00:01 fw
// filterlog[123]: CSV", with or without host name and <PRI>) or RFC 5424
// ("<134>1 2026-11-22T12:00:01.123456+00:00 fw filterlog 123 - [meta ...]
// CSV"); the framing is read by frame.go. CSV under another program's name,
// or without one, is ReasonProgram.
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
//   - ev.Time is the framing's time: an RFC 5424 or leading RFC 3339
//     stamp's, or a BSD syslog stamp's ("Nov 22 12:00:01", local time
//     without a year) placed in a year by Parser.Now.

// flogProgram is the program pfSense and OPNsense log the CSV as.
var flogProgram = []byte("filterlog")

// flogFields is how many CSV fields are looked at: up to the one after the
// IPv4 TCP flags, which proves that the flags were not cut short.
const flogFields = 25

// parseFilterlog parses a pfSense/OPNsense filterlog line.
func (p *Parser) parseFilterlog(line []byte, fr *frame, ev *sequence.Event) Reason {
	// Without Parser.Programs the header must name "filterlog": most
	// lines of a mixed log leave after one search, unframed.
	if len(p.Programs) == 0 && bytes.Index(line, flogProgram) < 0 {
		return ReasonUnrecognized
	}
	if fr.read(line).broken != ReasonNone {
		if p.programOK(FormatFilterlog, fr) {
			return fr.broken
		}
		return ReasonUnrecognized
	}
	csv := fr.msg

	// The rule number, the first field, tells filterlog's CSV from other
	// text: most lines of a mixed log leave here, before their commas are
	// looked for.
	if first := bytes.IndexByte(csv, ','); first < 0 || !bsdUintOK(csv[:first]) {
		if first < 0 && (len(csv) == 0 || bsdUintOK(csv)) && p.programOK(FormatFilterlog, fr) {
			return ReasonTruncated // cut within the rule number
		}
		return ReasonUnrecognized
	}
	if !p.programOK(FormatFilterlog, fr) {
		return ReasonProgram
	}

	// Find the fields needed, and no more: the TCP options that follow
	// can be long.
	var f flogCSV
	f.split(csv)
	n := f.n
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
		if flags, ok = tcpFlagLetters(f.at(fl), false); !ok {
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
	ev.Time = fr.stamp.time(p.Now, p.Location)
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

// flogAllZero reports whether b is a number equal to zero ("0", "00").
func flogAllZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return len(b) > 0
}
