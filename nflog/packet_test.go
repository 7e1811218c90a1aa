package nflog

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"portknock/sequence"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Captured on a network namespace's loopback with tcpdump (link header
// removed), from bash's /dev/tcp and /dev/udp, with the MTU at 1280 so
// that 3000-byte datagrams fragment.
var (
	capSYN4 = mustHex(`4500003c614340004006db767f0000017f000001a6261b582418133700000000a002fbe0
		fe300000020404d80402080a700fb206000000000103030a`)
	capSYN6 = mustHex(`60085a8c00280640000000000000000000000000000000010000000000000000000000000000
		000188ca1b58017ab88800000000a002fc9400300000020404c40402080acf4330de000000000103030a`)
	capUDP4 = mustHex(`4500001ed02f400040116c9d7f0000017f000001c2f62328000afe1d780a`)
	// ICMP port unreachable quoting the UDP datagram above: the quoted
	// ports are not a knock.
	capICMPErr4 = mustHex(`45c0003aa4d800004001d7287f0000017f0000010303a0ab000000004500001ed02f4000
		40116c9d7f0000017f000001c2f62328000afe1d780a`)
	capUDP6     = mustHex(`60033f4d000a11400000000000000000000000000000000100000000000000000000000000000001ad902328000a001d780a`)
	capFrag4One = mustHex(`450004fc762620004011e1c87f0000017f000001b8c823290bc00e7a00000000`)
	capFrag4Two = mustHex(`450004fc7626209d4011e12b7f0000017f00000100000000000000000000000000`)
	capFrag6One = mustHex(`60000b1704d82c400000000000000000000000000000000100000000000000000000000000000001
		11000001d9ac6b8ea93323290bc01c10000000000000`)
	capFrag6Two = mustHex(`60000b1704d82c400000000000000000000000000000000100000000000000000000000000000001
		110004d1d9ac6b8e0000000000000000`)
)

// ipv6 builds an IPv6 header with the given next header and payload.
func ipv6(next byte, src string, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	h[4], h[5] = byte(len(payload)>>8), byte(len(payload))
	h[6], h[7] = next, 64
	s := netip.MustParseAddr(src).As16()
	copy(h[8:24], s[:])
	d := netip.MustParseAddr("2001:db8::1").As16()
	copy(h[24:40], d[:])
	return append(h, payload...)
}

var tcpSYN9000 = mustHex(`d431232800000000000000005002ffff00000000`) // 54321 → 9000, SYN

func TestParsePacket(t *testing.T) {
	tests := []struct {
		name   string
		pkt    []byte
		reason Reason
		src    string
		dst    string
		port   uint16
		proto  sequence.Proto
		flags  string // "" for UDP (unknown)
	}{
		{name: "captured IPv4 SYN", pkt: capSYN4, src: "127.0.0.1", dst: "127.0.0.1", port: 7000, proto: sequence.TCP, flags: "syn"},
		{name: "captured IPv6 SYN", pkt: capSYN6, src: "::1", dst: "::1", port: 7000, proto: sequence.TCP, flags: "syn"},
		{name: "captured IPv4 UDP", pkt: capUDP4, src: "127.0.0.1", dst: "127.0.0.1", port: 9000, proto: sequence.UDP},
		{name: "captured IPv6 UDP", pkt: capUDP6, src: "::1", dst: "::1", port: 9000, proto: sequence.UDP},
		{name: "captured ICMP error quoting a UDP knock", pkt: capICMPErr4, reason: ReasonNoPorts},
		{name: "captured IPv4 first fragment has ports", pkt: capFrag4One, src: "127.0.0.1", dst: "127.0.0.1", port: 9001, proto: sequence.UDP},
		{name: "captured IPv4 later fragment", pkt: capFrag4Two, reason: ReasonFragment},
		{name: "captured IPv6 first fragment has ports", pkt: capFrag6One, src: "::1", dst: "::1", port: 9001, proto: sequence.UDP},
		{name: "captured IPv6 later fragment", pkt: capFrag6Two, reason: ReasonFragment},
		{name: "IPv4 with options", pkt: mustHex(`4600002800000000400600007f0000017f00000101010101` + `d4311b580000000000000000` + `5012ffff00000000`), src: "127.0.0.1", dst: "127.0.0.1", port: 7000, proto: sequence.TCP, flags: "syn,ack"},
		{name: "IPv6 hop-by-hop then destination options then TCP", pkt: ipv6(0, "2001:db8::7", append(mustHex(`3c00010400000000`+`0601000000000000 0000000000000000`), tcpSYN9000...)), src: "2001:db8::7", dst: "2001:db8::1", port: 9000, proto: sequence.TCP, flags: "syn"},
		{name: "IPv6 routing header", pkt: ipv6(43, "2001:db8::7", append(mustHex(`0600000000000000`), tcpSYN9000...)), src: "2001:db8::7", dst: "2001:db8::1", port: 9000, proto: sequence.TCP, flags: "syn"},
		{name: "IPv6 AH then TCP", pkt: ipv6(51, "2001:db8::7", append(mustHex(`0604000000000000 0000000000000000 0000000000000000`), tcpSYN9000...)), src: "2001:db8::7", dst: "2001:db8::1", port: 9000, proto: sequence.TCP, flags: "syn"},
		{name: "IPv6 ESP has no visible ports", pkt: ipv6(50, "2001:db8::7", make([]byte, 16)), reason: ReasonNoPorts},
		{name: "IPv6 no next header", pkt: ipv6(59, "2001:db8::7", nil), reason: ReasonNoPorts},
		{name: "IPv4-mapped IPv6 source is unmapped", pkt: ipv6(6, "::ffff:192.0.2.7", tcpSYN9000), src: "192.0.2.7", dst: "2001:db8::1", port: 9000, proto: sequence.TCP, flags: "syn"},
		{name: "ICMPv6", pkt: ipv6(58, "2001:db8::7", make([]byte, 8)), reason: ReasonNoPorts},
		{name: "endless extension headers", pkt: ipv6(60, "2001:db8::7", mustHex(strings.Repeat("3c00000000000000", 20))), reason: ReasonNoPorts},
		{name: "extension header longer than the packet", pkt: ipv6(0, "2001:db8::7", mustHex(`06ff000000000000`)), reason: ReasonTruncated},
		{name: "TCP header cut before the flags", pkt: capSYN4[:20+12], reason: ReasonTruncated},
		{name: "UDP header cut before the port", pkt: capUDP4[:20+3], reason: ReasonTruncated},
		{name: "IPv4 header cut", pkt: capSYN4[:19], reason: ReasonTruncated},
		{name: "IPv4 IHL below 5", pkt: mustHex(`4400003c614340004006db767f0000017f000001a6261b58`), reason: ReasonTruncated},
		{name: "IPv6 header cut", pkt: capSYN6[:39], reason: ReasonTruncated},
		{name: "empty", pkt: nil, reason: ReasonTruncated},
		{name: "not IP", pkt: mustHex(`20000000`), reason: ReasonNotIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev sequence.Event
			r := ParsePacket(tt.pkt, &ev)
			if r != tt.reason {
				t.Fatalf("reason = %v, want %v", r, tt.reason)
			}
			if r != ReasonNone {
				if ev != (sequence.Event{}) {
					t.Errorf("event written for a non-event: %+v", ev)
				}
				return
			}
			if ev.Src.String() != tt.src || ev.Dst.String() != tt.dst || ev.Port != tt.port || ev.Proto != tt.proto {
				t.Errorf("event = %v > %v port %d %v; want %s > %s port %d %v", ev.Src, ev.Dst, ev.Port, ev.Proto, tt.src, tt.dst, tt.port, tt.proto)
			}
			if ev.FlagsKnown != (tt.flags != "") || ev.Flags.String() != tt.flags {
				t.Errorf("flags = %q (known %v), want %q", ev.Flags, ev.FlagsKnown, tt.flags)
			}
		})
	}
}

func FuzzParsePacket(f *testing.F) {
	for _, p := range [][]byte{capSYN4, capSYN6, capUDP4, capUDP6, capICMPErr4, capFrag4One, capFrag4Two, capFrag6One, capFrag6Two} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var ev sequence.Event
		r := ParsePacket(pkt, &ev)
		if r >= reasonCount {
			t.Fatalf("unknown reason %d", r)
		}
		if r == ReasonNone {
			if !ev.Src.IsValid() || !ev.Dst.IsValid() || (ev.Proto != sequence.TCP && ev.Proto != sequence.UDP) {
				t.Fatalf("bad event %+v from %x", ev, pkt)
			}
			if ev.Src.Is4In6() {
				t.Fatalf("mapped source %v", ev.Src)
			}
		}
	})
}

func BenchmarkParsePacket(b *testing.B) {
	var ev sequence.Event
	b.ReportAllocs()
	for b.Loop() {
		ParsePacket(capSYN6, &ev)
	}
}
