package textlog

import (
	"net/netip"
	"strings"
	"testing"

	"portknock/sequence"
)

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Format
		wantErr string
	}{
		{in: "auto", want: FormatAuto},
		{in: "simple", want: FormatSimple},
		{in: "netfilter", want: FormatNetfilter},
		{in: "ulogd", want: FormatUlogd},
		{in: "journal", want: FormatJournal},
		{in: "pflog", want: FormatPflog},
		{in: "ipfw", want: FormatIpfw},
		{in: "filterlog", want: FormatFilterlog},
		{in: "Simple", wantErr: "unknown format"},
		{in: "", wantErr: "unknown format"},
		{in: "syslog", wantErr: "unknown format"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseFormat(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFormat(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
			}
		})
	}
	if s := Format(200).String(); s != "format(200)" {
		t.Errorf("Format(200).String() = %q", s)
	}
}

var (
	v4   = netip.MustParseAddr("192.0.2.7")
	v6   = netip.MustParseAddr("2001:db8::1")
	ll   = netip.MustParseAddr("fe80::1")
	zero netip.Addr
)

type parseCase struct {
	name   string
	prefix string
	format Format // FormatAuto when zero
	line   string
	reason Reason
	src    netip.Addr
	port   uint16
	proto  sequence.Proto
}

var simpleCases = []parseCase{
	{name: "ipv4", line: "7000 192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "ipv6 compressed", line: "7000 2001:db8::1", src: v6, port: 7000, proto: sequence.TCP},
	{name: "ipv6 fully expanded", line: "7000 2001:0db8:0000:0000:0000:0000:0000:0001", src: v6, port: 7000, proto: sequence.TCP},
	{name: "ipv6 upper case", line: "7000 2001:DB8::1", src: v6, port: 7000, proto: sequence.TCP},
	{name: "ipv4-mapped", line: "7000 ::ffff:192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "ipv4-mapped hex", line: "7000 ::ffff:c000:207", src: v4, port: 7000, proto: sequence.TCP},
	{name: "ipv6 zone", line: "7000 fe80::1%eth0", src: ll, port: 7000, proto: sequence.TCP},
	{name: "ipv4-mapped with zone", line: "7000 ::ffff:192.0.2.7%eth0", src: v4, port: 7000, proto: sequence.TCP},
	{name: "ipv4 with zone", line: "7000 192.0.2.7%eth0", reason: ReasonBadAddress},
	{name: "empty zone", line: "7000 fe80::1%", reason: ReasonBadAddress},
	{name: "zone only", line: "7000 %eth0", reason: ReasonBadAddress},
	{name: "udp", line: "9000/udp 192.0.2.7", src: v4, port: 9000, proto: sequence.UDP},
	{name: "tcp", line: "9000/tcp 192.0.2.7", src: v4, port: 9000, proto: sequence.TCP},
	{name: "TCP", line: "9000/TCP 192.0.2.7", src: v4, port: 9000, proto: sequence.TCP},
	{name: "Udp", line: "9000/Udp 2001:db8::1", src: v6, port: 9000, proto: sequence.UDP},
	{name: "icmp", line: "9000/icmp 192.0.2.7", reason: ReasonBadProto},
	{name: "empty proto", line: "9000/ 192.0.2.7", reason: ReasonBadProto},
	{name: "proto with trailing slash", line: "9000/tcp/ 192.0.2.7", reason: ReasonBadProto},
	{name: "colon proto is not simple", line: "9000:udp 192.0.2.7", reason: ReasonBadPort},
	{name: "port 1", line: "1 192.0.2.7", src: v4, port: 1, proto: sequence.TCP},
	{name: "port 65535", line: "65535 192.0.2.7", src: v4, port: 65535, proto: sequence.TCP},
	{name: "port 0", line: "0 192.0.2.7", reason: ReasonBadPort},
	{name: "port 00000", line: "00000 192.0.2.7", reason: ReasonBadPort},
	{name: "port 65536", line: "65536 192.0.2.7", reason: ReasonBadPort},
	{name: "port overflow", line: "99999999999999999999999 192.0.2.7", reason: ReasonBadPort},
	{name: "leading zeros", line: "007000 192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "port with letters", line: "70a0 192.0.2.7", reason: ReasonBadPort},
	{name: "negative port", line: "-7000 192.0.2.7", reason: ReasonUnrecognized},
	{name: "plus port", line: "+7000 192.0.2.7", reason: ReasonUnrecognized},
	{name: "swapped fields", line: "192.0.2.7 7000", reason: ReasonBadPort},
	{name: "bad ipv4", line: "7000 192.0.2.256", reason: ReasonBadAddress},
	{name: "short ipv4", line: "7000 192.0.2", reason: ReasonBadAddress},
	{name: "ipv4 leading zero", line: "7000 192.0.2.07", reason: ReasonBadAddress},
	{name: "hostname", line: "7000 example.org", reason: ReasonBadAddress},
	{name: "bracketed ipv6", line: "7000 [2001:db8::1]", reason: ReasonBadAddress},
	{name: "address with port", line: "7000 192.0.2.7:22", reason: ReasonBadAddress},
	{name: "bad ipv6", line: "7000 2001:db8:::1", reason: ReasonBadAddress},
	{name: "hex without colon", line: "7000 deadbeef", reason: ReasonBadAddress},
	{name: "extra field", line: "7000 192.0.2.7 extra", reason: ReasonUnrecognized},
	{name: "extra number", line: "7000 192.0.2.7 8000", reason: ReasonUnrecognized},
	{name: "one field", line: "7000", reason: ReasonUnrecognized},
	{name: "empty line", line: "", reason: ReasonUnrecognized},
	{name: "blank line", line: " \t\r ", reason: ReasonUnrecognized},
	{name: "garbage", line: "hello world", reason: ReasonUnrecognized},
	{name: "netfilter line", line: "Jan  1 00:00:00 host kernel: knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 PROTO=TCP DPT=7000", reason: ReasonUnrecognized},
	{name: "leading and trailing blanks", line: " \t 7000 \t  192.0.2.7 \t\r", src: v4, port: 7000, proto: sequence.TCP},
	{name: "tab separated", line: "7000\t192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "CRLF", line: "7000 192.0.2.7\r", src: v4, port: 7000, proto: sequence.TCP},
	{name: "CR inside", line: "7000\r192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "NUL in address", line: "7000 192.0.2.7\x00", reason: ReasonBadAddress},
	{name: "NUL in port", line: "70\x0000 192.0.2.7", reason: ReasonBadPort},
	{name: "NUL field", line: "7000 192.0.2.7 \x00", reason: ReasonUnrecognized},
	{name: "NUL in zone", line: "7000 fe80::1%\x00", src: ll, port: 7000, proto: sequence.TCP},
	{name: "invalid UTF-8 address", line: "7000 192.0.2.\xff", reason: ReasonBadAddress},
	{name: "invalid UTF-8 line", line: "\xff\xfe 192.0.2.7", reason: ReasonUnrecognized},
	{name: "invalid UTF-8 proto", line: "7000/tc\xf0 192.0.2.7", reason: ReasonBadProto},
	{name: "newline is not a blank", line: "7000 192.0.2.7\n", reason: ReasonBadAddress},

	{name: "pinned simple", format: FormatSimple, line: "7000 192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "unknown format value", format: Format(99), line: "7000 192.0.2.7", reason: ReasonUnrecognized},

	{name: "prefix", prefix: "knock", line: "knock 7000 192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "prefix with blanks around", prefix: " knock ", line: "  knock\t7000/udp 192.0.2.7", src: v4, port: 7000, proto: sequence.UDP},
	{name: "prefix with inner blank", prefix: "port knock", line: "port knock 7000 192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
	{name: "prefix missing", prefix: "knock", line: "7000 192.0.2.7", reason: ReasonPrefix},
	{name: "prefix glued", prefix: "knock", line: "knock7000 192.0.2.7", reason: ReasonPrefix},
	{name: "prefix longer word", prefix: "knock", line: "knocker 7000 192.0.2.7", reason: ReasonPrefix},
	{name: "prefix case", prefix: "knock", line: "KNOCK 7000 192.0.2.7", reason: ReasonPrefix},
	{name: "prefix alone", prefix: "knock", line: "knock", reason: ReasonUnrecognized},
	{name: "prefix and blanks only", prefix: "knock", line: "knock  ", reason: ReasonUnrecognized},
	{name: "line shorter than prefix", prefix: "knock", line: "kno", reason: ReasonPrefix},
	{name: "prefix then one field", prefix: "knock", line: "knock 7000", reason: ReasonUnrecognized},
	{name: "prefix then bad port", prefix: "knock", line: "knock 0 192.0.2.7", reason: ReasonBadPort},
	{name: "prefix twice", prefix: "knock", line: "knock knock 7000 192.0.2.7", reason: ReasonUnrecognized},
	{name: "blank prefix is no prefix", prefix: " \t", line: "7000 192.0.2.7", src: v4, port: 7000, proto: sequence.TCP},
}

func TestParseSimple(t *testing.T) {
	for _, tc := range simpleCases {
		t.Run(tc.name, func(t *testing.T) {
			p := Parser{Format: tc.format, Prefix: tc.prefix}
			// Fields Parse must not touch, and stale ones it must reset.
			stamp := sequence.Event{Dst: v6, Flags: sequence.SYN, FlagsKnown: true, Input: "in"}
			ev := stamp
			f, r := p.Parse([]byte(tc.line), &ev)
			if r != tc.reason {
				t.Fatalf("Parse(%q) reason = %v, want %v", tc.line, r, tc.reason)
			}
			wantFormat := FormatSimple
			if r == ReasonUnrecognized {
				wantFormat = FormatAuto
			}
			if f != wantFormat {
				t.Errorf("Parse(%q) format = %v, want %v", tc.line, f, wantFormat)
			}
			if r != ReasonNone {
				if ev != stamp {
					t.Errorf("Parse(%q) wrote the event although it is not one: %+v", tc.line, ev)
				}
				return
			}
			want := sequence.Event{Src: tc.src, Dst: zero, Port: tc.port, Proto: tc.proto, Input: "in"}
			if ev != want {
				t.Errorf("Parse(%q) event = %+v, want %+v", tc.line, ev, want)
			}
			if ev.Src != sequence.NormalizeAddr(ev.Src) {
				t.Errorf("Parse(%q) Src %v is not normalised", tc.line, ev.Src)
			}
		})
	}
}

func TestParseNoAllocs(t *testing.T) {
	for _, tc := range simpleCases {
		// A failing netip.ParseAddr builds an error; only characters that
		// may form an address get that far.
		if tc.reason == ReasonBadAddress {
			continue
		}
		p := Parser{Format: tc.format, Prefix: tc.prefix}
		line := []byte(tc.line)
		var ev sequence.Event
		if n := testing.AllocsPerRun(100, func() { p.Parse(line, &ev) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", tc.line, n)
		}
	}
}

func BenchmarkParseSimple(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"ipv4", "7000 192.0.2.7"},
		{"ipv4-udp-prefix", "knock 9000/udp 192.0.2.7"},
		{"ipv6", "7000 2001:db8:1234:5678::1"},
		{"ipv6-expanded", "7000/tcp 2001:0db8:0000:0000:0000:0000:0000:0001"},
		{"garbage", "Jan  1 00:00:00 host sshd[123]: Connection closed by 192.0.2.7"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := Parser{}
			if strings.HasPrefix(bc.line, "knock ") {
				p.Prefix = "knock"
			}
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

func TestIsAddrChar(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
		if got := isAddrChar(byte(c)); got != want {
			t.Errorf("isAddrChar(%#x) = %v, want %v", c, got, want)
		}
	}
}
