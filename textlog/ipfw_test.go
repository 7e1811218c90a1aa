package textlog

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"portknock/sequence"
)

// TestIpfwGolden parses the hand-written lines in testdata/ipfw.
func TestIpfwGolden(t *testing.T) {
	cases := bsdReadGolden(t, "testdata/ipfw/ipfw.txt", "testdata/ipfw/ipfw.want", true)
	var bc []bsdCase
	for _, c := range cases {
		bc = append(bc, c.want)
	}
	bsdRunCases(t, FormatIpfw, bc)
	p := Parser{Format: FormatIpfw}
	for _, c := range cases {
		bsdCheckCuts(t, &p, []byte(c.line), 0)
	}
}

const ipfwHead = "Nov 22 12:00:01 fw kernel: ipfw: 100 Deny "

func ipfwEvent(name, line string, src, dst netip.Addr, port uint16, proto sequence.Proto) bsdCase {
	return bsdCase{name: name, line: line, src: src, dst: dst, port: port, proto: proto}
}

var ipfwCases = []bsdCase{
	ipfwEvent("tcp", ipfwHead+"TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", v4, pfV4, 7000, sequence.TCP),
	ipfwEvent("ipv6 expanded is the same source", ipfwHead+"TCP [2001:0db8:0000:0000:0000:0000:0000:0007]:40000 [2001:db8::1]:7000 in via em0", pfV6, pfV6d, 7000, sequence.TCP),
	ipfwEvent("ipv6 upper case", ipfwHead+"TCP [2001:DB8::7]:40000 [2001:DB8::1]:7000 in via em0", pfV6, pfV6d, 7000, sequence.TCP),
	ipfwEvent("ipv4-mapped is unmapped", ipfwHead+"UDP [::ffff:192.0.2.7]:40000 [::ffff:192.0.2.1]:9000 in via em0", v4, pfV4, 9000, sequence.UDP),
	ipfwEvent("CRLF", ipfwHead+"TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0\r", v4, pfV4, 7000, sequence.TCP),
	ipfwEvent("tabs", "Nov 22 12:00:01 fw kernel:\tipfw: 100\tDeny\tTCP\t192.0.2.7:40000\t192.0.2.1:7000\tin via em0", v4, pfV4, 7000, sequence.TCP),
	ipfwEvent("leading zeros in port", ipfwHead+"TCP 192.0.2.7:40000 192.0.2.1:0007000 in via em0", v4, pfV4, 7000, sequence.TCP),
	ipfwEvent("invalid UTF-8 in interface", ipfwHead+"TCP 192.0.2.7:40000 192.0.2.1:7000 in via em\xff0", v4, pfV4, 7000, sequence.TCP),
	{name: "ipfw: inside another program's message", line: "Nov 22 12:00:01 fw myipfw: x ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},
	{name: "another program", line: "Nov 22 12:00:01 fw myipfw: ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonProgram},
	ipfwEvent("bare kernel line", "ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", v4, pfV4, 7000, sequence.TCP),
	{name: "rfc 5424 Z", line: "<36>1 2026-11-22T12:00:01Z fw kernel - - - ipfw: 100 Deny UDP 192.0.2.7:40000 192.0.2.1:9000 in via em0", src: v4, dst: pfV4, port: 9000, proto: sequence.UDP, time: time.Date(2026, 11, 22, 12, 0, 1, 0, time.UTC)},
	{name: "rfc 5424 negative offset", line: "<36>1 2026-11-22T07:00:01.000000001-05:00 fw kernel - - - ipfw: 100 Deny UDP 192.0.2.7:40000 192.0.2.1:9000 in via em0", src: v4, dst: pfV4, port: 9000, proto: sequence.UDP, time: time.Date(2026, 11, 22, 12, 0, 1, 1, time.UTC)},
	ipfwEvent("rfc 5424 nil time", "<36>1 - fw kernel - - - ipfw: 100 Deny UDP 192.0.2.7:40000 192.0.2.1:9000 in via em0", v4, pfV4, 9000, sequence.UDP),
	ipfwEvent("rfc 3339 day out of range", "2026-02-30T12:00:01Z fw kernel: ipfw: 100 Deny UDP 192.0.2.7:40000 192.0.2.1:9000 in via em0", v4, pfV4, 9000, sequence.UDP),
	ipfwEvent("bsd stamp has no time", "Nov 22 12:00:01 fw kernel: ipfw: 100 Deny UDP 192.0.2.7:40000 192.0.2.1:9000 in via em0", v4, pfV4, 9000, sequence.UDP),

	{name: "port 0", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:0 in via em0", reason: ReasonBadPort},
	{name: "port 65536", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:65536 in via em0", reason: ReasonBadPort},
	{name: "only the source has a port", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1 in via em0", reason: ReasonBadPort},
	{name: "unbracketed ipv6", line: ipfwHead + "TCP 2001:db8::7:40000 2001:db8::1:7000 in via em0", reason: ReasonBadAddress},
	{name: "unclosed bracket", line: ipfwHead + "TCP [2001:db8::7:40000 [2001:db8::1]:7000 in via em0", reason: ReasonBadAddress},
	{name: "junk after bracket", line: ipfwHead + "TCP [2001:db8::7]x40000 [2001:db8::1]:7000 in via em0", reason: ReasonBadAddress},
	{name: "bad ipv4", line: ipfwHead + "TCP 192.0.2.256:40000 192.0.2.1:7000 in via em0", reason: ReasonBadAddress},
	{name: "NUL in address", line: ipfwHead + "TCP 192.0.\x002.7:40000 192.0.2.1:7000 in via em0", reason: ReasonBadAddress},
	{name: "NUL in action", line: "ipfw: 100 De\x00ny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonPrefix},
	{name: "invalid UTF-8 in address", line: ipfwHead + "TCP 192.0.2.\xff:40000 192.0.2.1:7000 in via em0", reason: ReasonBadAddress},
	{name: "unknown protocol word", line: ipfwHead + "SCTP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},
	{name: "unknown direction", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 sideways via em0", reason: ReasonUnrecognized},
	{name: "rule number too large", line: "ipfw: 65536 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},
	{name: "unreach without code", line: "ipfw: 100 Unreach TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},
	{name: "glued marker", line: "Nov 22 12:00:01 fw myipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},
	{name: "no marker", line: "Nov 22 12:00:01 fw kernel: ipfw 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},
	{name: "pflog line", line: "12:00:01.123456 rule 3/0(match): block in on em0: 192.0.2.7.40000 > 192.0.2.1.7000: Flags [S], seq 1, win 65535, length 0", reason: ReasonUnrecognized},
	{name: "empty", line: "", reason: ReasonUnrecognized},

	// Cut by syslog.
	{name: "cut after marker", line: "Nov 22 12:00:01 fw kernel: ipfw: ", reason: ReasonUnrecognized},
	{name: "cut in rule number", line: "Nov 22 12:00:01 fw kernel: ipfw: 10", reason: ReasonTruncated},
	{name: "cut in action", line: "Nov 22 12:00:01 fw kernel: ipfw: 100 De", reason: ReasonTruncated},
	{name: "cut in unreach code", line: "Nov 22 12:00:01 fw kernel: ipfw: 100 Unreach 1", reason: ReasonTruncated},
	{name: "cut in protocol", line: ipfwHead + "TC", reason: ReasonTruncated},
	{name: "cut in source", line: ipfwHead + "TCP 192.0.2.7:400", reason: ReasonTruncated},
	{name: "cut in destination port", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:70", reason: ReasonTruncated},
	{name: "cut in direction", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 ou", reason: ReasonTruncated},
	{name: "cut in in", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 i", reason: ReasonTruncated},
	{name: "cut before direction", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 ", reason: ReasonTruncated},
	{name: "cut in mark", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 mark:0x", reason: ReasonTruncated},
	{name: "cut in no if info", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 [n", reason: ReasonTruncated},
	ipfwEvent("cut after in", ipfwHead+"TCP 192.0.2.7:40000 192.0.2.1:7000 in", v4, pfV4, 7000, sequence.TCP),
	{name: "cut after out", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 out", reason: ReasonOutbound},

	// Prefix: the rule number.
	{name: "prefix rule number", prefix: "100", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", src: v4, dst: pfV4, port: 7000, proto: sequence.TCP},
	{name: "prefix with blanks", prefix: " 100 ", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", src: v4, dst: pfV4, port: 7000, proto: sequence.TCP},
	{name: "prefix other rule", prefix: "200", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonPrefix},
	{name: "prefix is not a substring", prefix: "10", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonPrefix},
	{name: "prefix before outbound", prefix: "200", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:7000 out via em0", reason: ReasonPrefix},
	{name: "prefix on a cut line", prefix: "100", line: ipfwHead + "TCP 192.0.2.7:40000 192.0.2.1:70", reason: ReasonTruncated},
}

func TestParseIpfw(t *testing.T) {
	cases := append([]bsdCase(nil), ipfwCases...)
	cases = append(cases, bsdLongLines(FormatIpfw, ipfwHead+"TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0",
		bsdMarker{"ipfw: ", ReasonUnrecognized}, bsdMarker{"ipfw: 1 ", ReasonPrefix}, bsdMarker{"x ipfw: ", ReasonUnrecognized})...)
	bsdRunCases(t, FormatIpfw, cases)
	for _, c := range cases {
		p := Parser{Format: FormatIpfw, Prefix: c.prefix}
		bsdCheckCuts(t, &p, []byte(c.line), 0)
	}
}

func TestParseIpfwNoAllocs(t *testing.T) {
	for _, c := range ipfwCases {
		if c.reason == ReasonBadAddress {
			continue // netip.ParseAddr's error allocates
		}
		p := Parser{Format: FormatIpfw, Prefix: c.prefix}
		line := []byte(c.line)
		var ev sequence.Event
		if n := testing.AllocsPerRun(100, func() { p.Parse(line, &ev) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", c.line, n)
		}
	}
}

// FuzzParseIpfw checks that no line makes the parser panic, that every
// event is well formed, and that no cut line is a different knock.
func FuzzParseIpfw(f *testing.F) {
	// Records in other programs' messages (see foreign_test.go).
	for _, l := range foreignLines() {
		f.Add(l, "")
	}
	for _, l := range bsdGoldenText(f, "testdata/ipfw") {
		f.Add(l, "")
	}
	for _, c := range ipfwCases {
		f.Add(c.line, c.prefix)
	}
	f.Fuzz(func(t *testing.T, line, prefix string) {
		p := Parser{Format: FormatIpfw, Prefix: prefix}
		var ev sequence.Event
		if _, r := p.Parse([]byte(line), &ev); r != ReasonNone {
			return
		}
		bsdCheckEvent(t, line, &ev)
		if ev.FlagsKnown {
			t.Fatalf("Parse(%q): ipfw logs no TCP flags, yet %+v", line, ev)
		}
		bsdCheckCuts(t, &p, []byte(line), 0)
	})
}

func BenchmarkParseIpfw(b *testing.B) {
	bsdBench(b, []struct{ name, line string }{
		{"tcp", "Nov 22 12:00:01 fw kernel: ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0"},
		{"udp6", "Nov 22 12:00:01 fw kernel: ipfw: 100 Deny UDP [2001:db8::7]:40000 [2001:db8::1]:9000 in via em0"},
		{"rfc5424", "<36>1 2026-11-22T12:00:01.123456+01:00 fw kernel - - - ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0"},
		{"other-line", "Nov 22 12:00:01 host sshd[123]: Connection closed by 192.0.2.7 port 40000 [preauth]"},
		{"4KiB-of-markers", strings.Repeat("ipfw: ", 4096/6)},
	}, FormatIpfw)
}
