package textlog

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"portknock/sequence"
)

// TestFilterlogGolden parses the hand-written lines in testdata/filterlog.
func TestFilterlogGolden(t *testing.T) {
	cases := bsdReadGolden(t, "testdata/filterlog/filterlog.txt", "testdata/filterlog/filterlog.want", true)
	var bc []bsdCase
	for _, c := range cases {
		bc = append(bc, c.want)
	}
	bsdRunCases(t, FormatFilterlog, bc)
	p := Parser{Format: FormatFilterlog}
	for _, c := range cases {
		bsdCheckCuts(t, &p, []byte(c.line), 0)
	}
}

const (
	flogHead  = "Nov 22 12:00:01 fw filterlog[12345]: "
	flogRule  = "5,,,1000000103,igb0,match,block,in,"
	flogV4TCP = flogHead + flogRule + "4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S,123,,65228,,mss"
)

func flogTCP(name, line string, src, dst netip.Addr, port uint16, flags sequence.TCPFlags) bsdCase {
	return bsdCase{name: name, line: line, src: src, dst: dst, port: port, proto: sequence.TCP, flags: flags, known: true}
}

func flogUDP(name, line string, src, dst netip.Addr, port uint16) bsdCase {
	return bsdCase{name: name, line: line, src: src, dst: dst, port: port, proto: sequence.UDP}
}

var filterlogCases = []bsdCase{
	flogTCP("tcp", flogV4TCP, v4, pfV4, 7000, sequence.SYN),
	flogTCP("ipv6 compressed", flogHead+flogRule+"6,0x00,0x00000,64,tcp,6,40,2001:db8::7,2001:db8::1,40000,7000,0,S,1,,65228,,", pfV6, pfV6d, 7000, sequence.SYN),
	flogTCP("ipv6 expanded is the same source", flogHead+flogRule+"6,0x00,0x00000,64,tcp,6,40,2001:0db8:0000:0000:0000:0000:0000:0007,2001:db8::1,40000,7000,0,S,1,,65228,,", pfV6, pfV6d, 7000, sequence.SYN),
	flogTCP("ipv4-mapped hex is unmapped", flogHead+flogRule+"6,0x00,0x00000,64,tcp,6,40,::ffff:c000:207,::ffff:c000:201,40000,7000,0,S,1,,65228,,", v4, pfV4, 7000, sequence.SYN),
	flogTCP("CRLF", flogV4TCP+"\r", v4, pfV4, 7000, sequence.SYN),
	flogUDP("CRLF after the data length", flogHead+flogRule+"4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1\r", v4, pfV4, 9000),
	flogTCP("leading zeros in port", flogHead+flogRule+"4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,0007000,0,S,1,,1,,", v4, pfV4, 7000, sequence.SYN),
	flogTCP("invalid UTF-8 in interface", flogHead+"5,,,1000000103,igb\xff0,match,block,in,4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S,1,,1,,", v4, pfV4, 7000, sequence.SYN),
	flogTCP("tab before the csv", "Nov 22 12:00:01 fw\tfilterlog[1]:\t"+flogRule+"4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S,1,,1,,", v4, pfV4, 7000, sequence.SYN),
	flogTCP("second filterlog is the tag", "Nov 22 12:00:01 filterlog-host filterlog[1]: "+flogRule+"4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S,1,,1,,", v4, pfV4, 7000, sequence.SYN),
	{name: "rfc 5424 fraction of nanoseconds", line: "<134>1 2026-11-22T12:00:01.1234567891+00:00 fw filterlog 1 - - " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", src: v4, dst: pfV4, port: 9000, proto: sequence.UDP, time: time.Date(2026, 11, 22, 12, 0, 1, 123456789, time.UTC)},
	{name: "rfc 5424 leap second", line: "<134>1 2016-12-31T23:59:60Z fw filterlog 1 - - " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", src: v4, dst: pfV4, port: 9000, proto: sequence.UDP, time: time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},

	{name: "port 0", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,0,1", reason: ReasonBadPort},
	{name: "port 65536", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,65536,1", reason: ReasonBadPort},
	{name: "empty port", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,,1", reason: ReasonBadPort},
	{name: "negative port", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,-7000,1", reason: ReasonBadPort},
	{name: "bad source", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.256,192.0.2.1,40000,9000,1", reason: ReasonBadAddress},
	{name: "host name", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,knocker.example,192.0.2.1,40000,9000,1", reason: ReasonBadAddress},
	{name: "bad destination", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,x,40000,9000,1", reason: ReasonBadAddress},
	{name: "NUL in address", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.\x002.7,192.0.2.1,40000,9000,1", reason: ReasonBadAddress},
	{name: "zone", line: flogHead + flogRule + "6,0x00,0x00000,64,udp,17,9,fe80::1%igb0,fe80::2,40000,9000,1", reason: ReasonBadAddress},
	{name: "unknown tcp flag", line: flogHead + flogRule + "4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,SX,1,,1,,", reason: ReasonBadProto},
	{name: "ip version 5", line: flogHead + flogRule + "5,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonBadProto},
	{name: "dccp", line: flogHead + flogRule + "4,0x0,,64,1,0,none,33,dccp,29,192.0.2.7,192.0.2.1,", reason: ReasonBadProto},
	{name: "udplite", line: flogHead + flogRule + "4,0x0,,64,1,0,none,136,udplite,29,192.0.2.7,192.0.2.1,", reason: ReasonBadProto},
	{name: "esp", line: flogHead + flogRule + "4,0x0,,64,1,0,none,50,esp,29,192.0.2.7,192.0.2.1", reason: ReasonNoPorts},
	{name: "bad fragment offset", line: flogHead + flogRule + "4,0x0,,64,1,x,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "bad protocol number", line: flogHead + flogRule + "4,0x0,,64,1,0,none,x,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "in/out", line: flogHead + "5,,,1000000103,igb0,match,block,in/out,4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "not a rule number", line: flogHead + "x,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "message about filterlog", line: "Nov 22 12:00:01 fw php: restarting filterlog: done", reason: ReasonUnrecognized},
	{name: "message about filterlog with commas", line: "Nov 22 12:00:01 fw php: restarting filterlog: now, later", reason: ReasonUnrecognized},
	{name: "filterlog glued", line: "Nov 22 12:00:01 fw myfilterlog[1]: " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonProgram},
	{name: "csv without a program", line: flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "csv after a stamp without a tag", line: "Nov 22 12:00:01 " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "csv after a stamp, filterlog elsewhere", line: "Nov 22 12:00:01 " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,filterlog", reason: ReasonProgram},
	{name: "filterlog after the csv's start", line: "Nov 22 12:00:01 fw sshd[1]: Invalid user x filterlog: " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "filterlog without colon", line: "Nov 22 12:00:01 fw filterlog[1] " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "rfc 5424 other app", line: "<134>1 2026-11-22T12:00:01Z fw php 1 - - filterlog restarted", reason: ReasonUnrecognized},
	{name: "rfc 5424 impossible time gives none", line: "<134>1 2026-11-22T25:00:01Z fw filterlog 1 - - " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", src: v4, dst: pfV4, port: 9000, proto: sequence.UDP},
	{name: "rfc 5424 bad time", line: "<134>1 2026-11-22X25:00:01Z fw filterlog 1 - - " + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonUnrecognized},
	{name: "empty", line: "", reason: ReasonUnrecognized},
	{name: "ipfw line", line: "Nov 22 12:00:01 fw kernel: ipfw: 100 Deny TCP 192.0.2.7:40000 192.0.2.1:7000 in via em0", reason: ReasonUnrecognized},

	// Cut by syslog.
	{name: "cut after tag", line: flogHead, reason: ReasonTruncated},
	{name: "cut in pid", line: "Nov 22 12:00:01 fw filterlog[123", reason: ReasonTruncated},
	{name: "cut in rule number", line: flogHead + "5", reason: ReasonTruncated},
	{name: "cut in common fields", line: flogHead + "5,,,1000000103,igb0,ma", reason: ReasonTruncated},
	{name: "cut in ip version", line: flogHead + flogRule, reason: ReasonTruncated},
	{name: "cut in protocol", line: flogHead + flogRule + "4,0x0,,64,1,0,none,1", reason: ReasonTruncated},
	{name: "cut in source", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2", reason: ReasonTruncated},
	{name: "cut in destination port", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,90", reason: ReasonTruncated},
	{name: "cut after destination port", line: flogHead + flogRule + "4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000", reason: ReasonTruncated},
	{name: "cut in tcp flags", line: flogHead + flogRule + "4,0x0,,64,1,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S", reason: ReasonTruncated},
	{name: "cut in rfc 5424 structured data", line: "<134>1 2026-11-22T12:00:01Z fw filterlog 1 - [meta sequenceId=\"1", reason: ReasonTruncated},
	{name: "cut in rfc 5424 header", line: "<134>1 2026-11-22T12:00:01Z fw filterlog 1", reason: ReasonTruncated},
	{name: "cut after rfc 5424 structured data", line: "<134>1 2026-11-22T12:00:01Z fw filterlog 1 - [meta x=\"1\"]", reason: ReasonTruncated},
	{name: "cut in rfc 5424 message", line: "<134>1 2026-11-22T12:00:01Z fw filterlog 1 - - 5,,,10000", reason: ReasonTruncated},

	// Prefix: the tracker or label.
	{name: "prefix tracker", prefix: "1000000103", line: flogV4TCP, src: v4, dst: pfV4, port: 7000, proto: sequence.TCP, flags: sequence.SYN, known: true},
	{name: "prefix with blanks", prefix: " 1000000103\t", line: flogV4TCP, src: v4, dst: pfV4, port: 7000, proto: sequence.TCP, flags: sequence.SYN, known: true},
	{name: "prefix other tracker", prefix: "1000000104", line: flogV4TCP, reason: ReasonPrefix},
	{name: "prefix is not the rule number", prefix: "5", line: flogV4TCP, reason: ReasonPrefix},
	{name: "prefix is not a substring", prefix: "100000010", line: flogV4TCP, reason: ReasonPrefix},
	{name: "prefix opnsense label", prefix: "fae559338f65e11c53669fc3642c93c2", line: flogHead + "73,,,fae559338f65e11c53669fc3642c93c2,vtnet1,match,block,in,4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", src: v4, dst: pfV4, port: 9000, proto: sequence.UDP},
	{name: "prefix before outbound", prefix: "1000000104", line: flogHead + "5,,,1000000103,igb0,match,block,out,4,0x0,,64,1,0,none,17,udp,29,192.0.2.7,192.0.2.1,40000,9000,1", reason: ReasonPrefix},
}

func TestParseFilterlog(t *testing.T) {
	cases := append([]bsdCase(nil), filterlogCases...)
	cases = append(cases, bsdLongLines(FormatFilterlog, flogV4TCP,
		bsdMarker{"filterlog", ReasonUnrecognized}, bsdMarker{" filterlog[", ReasonUnrecognized}, bsdMarker{"filterlog: ", ReasonUnrecognized},
		bsdMarker{",", ReasonUnrecognized})...)
	cases = append(cases, bsdCase{name: "4 KiB of fields", line: flogHead + strings.Repeat(",", 4096), reason: ReasonUnrecognized})
	bsdRunCases(t, FormatFilterlog, cases)
	for _, c := range cases {
		p := Parser{Format: FormatFilterlog, Prefix: c.prefix}
		bsdCheckCuts(t, &p, []byte(c.line), 0)
	}
}

func TestParseFilterlogNoAllocs(t *testing.T) {
	for _, c := range filterlogCases {
		if c.reason == ReasonBadAddress {
			continue // netip.ParseAddr's error allocates
		}
		p := Parser{Format: FormatFilterlog, Prefix: c.prefix}
		line := []byte(c.line)
		var ev sequence.Event
		if n := testing.AllocsPerRun(100, func() { p.Parse(line, &ev) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", c.line, n)
		}
	}
}

// TestISOStamp checks the hand-written ISO 8601 stamp reader against
// time.Parse for RFC 3339 stamps; it also takes journalctl's "+hhmm".
func TestISOStamp(t *testing.T) {
	for _, s := range []string{
		"2026-11-22T12:00:01Z", "2026-11-22t12:00:01z", "2026-11-22T12:00:01.5+05:30",
		"2026-11-22T12:00:01.123456789-12:00", "2024-02-29T00:00:00Z", "1970-01-01T00:00:00+00:00",
		"2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-22T12:00:01", "2026-11-22T12:00:01.Z",
		"2026-11-22T12:00:01+0530", "2026-11-22 12:00:01Z", "2026-11-22T12:60:01Z", "2026-11-22T12:00:01+23:59",
		"+026-11-22T12:00:01Z", "2026-11-22T12:00:0aZ", "0000-01-01T00:00:00Z", "0000-02-29T23:59:59.999-01:00",
		"9999-12-31T23:59:59Z", "2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "1969-12-31T23:59:59.999999999Z",
	} {
		var st stamp
		n, _ := isoStamp([]byte(s+" "), &st)
		got := st.time(time.Time{}, time.UTC)
		ok := n > 0 && !got.IsZero()
		want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
		if s == "2026-11-22T12:00:01+0530" {
			want, err = time.Parse("2006-01-02T15:04:05-0700", s)
		}
		if ok != (err == nil) || ok && (!got.Equal(want) || n != len(s) || got.Location() != time.UTC) {
			t.Errorf("isoStamp(%q) = %v, %d, %v; time.Parse gives %v, %v", s, got, n, ok, want, err)
		}
	}
}

// FuzzParseFilterlog checks that no line makes the parser panic, that
// every event is well formed, and that no cut line is a different knock.
func FuzzParseFilterlog(f *testing.F) {
	// Records in other programs' messages (see foreign_test.go).
	for _, l := range foreignLines() {
		f.Add(l, "")
	}
	for _, l := range bsdGoldenText(f, "testdata/filterlog") {
		f.Add(l, "")
	}
	for _, c := range filterlogCases {
		f.Add(c.line, c.prefix)
	}
	f.Fuzz(func(t *testing.T, line, prefix string) {
		p := Parser{Format: FormatFilterlog, Prefix: prefix}
		var ev sequence.Event
		if _, r := p.Parse([]byte(line), &ev); r != ReasonNone {
			return
		}
		bsdCheckEvent(t, line, &ev)
		bsdCheckCuts(t, &p, []byte(line), 0)
	})
}

func BenchmarkParseFilterlog(b *testing.B) {
	bsdBench(b, []struct{ name, line string }{
		{"tcp", flogV4TCP},
		{"tcp-rfc5424", "<134>1 2026-11-22T12:00:01.123456+00:00 fw.example filterlog 12345 - [meta sequenceId=\"1\"] 5,,,1000000103,igb0,match,block,in,4,0x0,,64,12345,0,DF,6,tcp,60,192.0.2.7,192.0.2.1,40000,7000,0,S,123,,65228,,mss;nop;wscale;sackOK;TS"},
		{"udp6", "<134>1 2026-11-22T12:00:01+00:00 OPNsense.localdomain filterlog 12345 - [meta sequenceId=\"3\"] 73,,,fae559338f65e11c53669fc3642c93c2,vtnet1,match,block,in,6,0x00,0x00000,64,udp,17,9,2001:db8::7,2001:db8::1,40000,9000,1"},
		{"other-line", "Nov 22 12:00:01 host sshd[123]: Connection closed by 192.0.2.7 port 40000 [preauth]"},
		{"4KiB-of-markers", strings.Repeat("filterlog", 4096/9)},
	}, FormatFilterlog)

	// What one core does with a stream of filterlog lines, parsing and
	// matching: 10 000 sources walk a door's sequence, with a line
	// outside the knock space between knocks.
	b.Run("with-matching", func(b *testing.B) {
		steps := []struct {
			port  int
			proto string
			id    int
		}{{7000, "tcp", 6}, {8000, "tcp", 6}, {9000, "udp", 17}}
		var lines [][]byte
		for round := range 3 {
			for s := range 10000 {
				st := steps[round]
				src := fmt.Sprintf("10.%d.%d.%d", s>>16, (s>>8)&255, s&255)
				tail := ",0,S,1,,65228,,mss"
				if st.proto == "udp" {
					tail = ",1"
				}
				lines = append(lines,
					fmt.Appendf(nil, "<134>Nov 22 12:00:01 filterlog[12345]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,DF,%d,%s,60,%s,192.0.2.1,40000,%d%s", st.id, st.proto, src, st.port, tail),
					fmt.Appendf(nil, "<134>Nov 22 12:00:01 filterlog[12345]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,DF,6,tcp,60,%s,192.0.2.1,40000,443,0,S,1,,65228,,mss", src))
			}
		}
		m := sshMatcher(b)
		p := Parser{Format: FormatFilterlog, Prefix: "1000000103"}
		out := make([]sequence.Match, 0, 4)
		var events, matches, n int
		b.ReportAllocs()
		for b.Loop() {
			var ev sequence.Event
			if _, r := p.Parse(lines[n], &ev); r == ReasonNone {
				ev.Time = time.Unix(1e9, 0)
				events++
				out = m.Handle(&ev, out[:0])
				matches += len(out)
			}
			if n++; n == len(lines) {
				n = 0
			}
		}
		if b.N >= len(lines) && (events == 0 || matches == 0) {
			b.Fatalf("%d events, %d matches: the benchmark exercises nothing", events, matches)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
