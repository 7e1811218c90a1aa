package nftset

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func TestElementKey(t *testing.T) {
	tests := []struct {
		addr netip.Addr
		key  []byte
		ipv6 bool
	}{
		{netip.MustParseAddr("192.0.2.1"), []byte{192, 0, 2, 1}, false},
		{netip.MustParseAddr("0.0.0.0"), []byte{0, 0, 0, 0}, false},
		// IPv4-mapped: the IPv4 peer, for the ipv4_addr set.
		{netip.MustParseAddr("::ffff:192.0.2.7"), []byte{192, 0, 2, 7}, false},
		{netip.MustParseAddr("2001:db8::1"), []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		{netip.MustParseAddr("fe80::1%eth0"), []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		// IPv4-compatible (deprecated) is not mapped: it stays IPv6.
		{netip.MustParseAddr("::192.0.2.1"), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1}, true},
	}
	for _, tt := range tests {
		key, ipv6, err := elementKey(tt.addr)
		if err != nil {
			t.Errorf("elementKey(%v): %v", tt.addr, err)
			continue
		}
		if !bytes.Equal(key, tt.key) || ipv6 != tt.ipv6 {
			t.Errorf("elementKey(%v) = %v, ipv6 %v; want %v, ipv6 %v", tt.addr, key, ipv6, tt.key, tt.ipv6)
		}
	}
	if _, _, err := elementKey(netip.Addr{}); err == nil {
		t.Error("elementKey of the zero Addr succeeded")
	}
}

func TestElementTimeout(t *testing.T) {
	for _, tt := range []struct {
		in, want time.Duration
		err      string
	}{
		{in: 30 * time.Second, want: 30 * time.Second},
		{in: time.Hour, want: time.Hour},
		{in: 30*time.Second + time.Microsecond, want: 30*time.Second + time.Millisecond},
		{in: 1500 * time.Microsecond, want: 2 * time.Millisecond},
		{in: time.Nanosecond, want: time.Millisecond},
		{in: 0, err: "timeout 0s is not positive"},
		{in: -time.Second, err: "timeout -1s is not positive"},
	} {
		got, err := elementTimeout(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("elementTimeout(%v) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("elementTimeout(%v) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSetProblem(t *testing.T) {
	ref := Ref{FamilyInet, "fw", "knock4"}
	good4 := setInfo{keyType: "ipv4_addr", timeout: true}
	good6 := setInfo{keyType: "ipv6_addr", timeout: true}
	ip, ip6 := Ref{FamilyIP, "filter", "allow"}, Ref{FamilyIP6, "filter", "allow6"}
	tests := []struct {
		name        string
		ref         Ref // ref when zero
		s           setInfo
		ipv6        bool
		needTimeout bool
		err         string // the whole message; "" for no problem
	}{
		{"ipv4 set", Ref{}, good4, false, true, ""},
		{"ipv6 set", Ref{}, good6, true, true, ""},
		{"ipv4 address, ipv6 set", Ref{}, good6, false, true, `nft set "inet fw knock4" holds ipv6_addr, not ipv4_addr`},
		{"ipv6 address, ipv4 set", Ref{}, good4, true, true, `nft set "inet fw knock4" holds ipv4_addr, not ipv6_addr`},
		{"concatenation", Ref{}, setInfo{keyType: "ipv4_addr . inet_service", timeout: true}, false, true,
			`nft set "inet fw knock4" holds ipv4_addr . inet_service, not ipv4_addr`},
		{"no timeout", Ref{}, setInfo{keyType: "ipv4_addr"}, false, true,
			`nft set "inet fw knock4" has no timeout flag (declare it with "flags timeout")`},
		{"no timeout, not needed", Ref{}, setInfo{keyType: "ipv4_addr"}, false, false, ""},
		{"map", Ref{}, setInfo{keyType: "ipv4_addr", timeout: true, isMap: true}, false, true,
			`nft set "inet fw knock4" is a map, not a set (declare a set of ipv4_addr)`},
		{"interval", Ref{}, setInfo{keyType: "ipv4_addr", timeout: true, interval: true}, false, true,
			`nft set "inet fw knock4" has the interval flag, which single addresses do not need (remove "flags interval")`},
		{"constant", Ref{}, setInfo{keyType: "ipv4_addr", constant: true}, false, false,
			`nft set "inet fw knock4" is constant and cannot change (remove "flags constant")`},
		{"type before timeout", Ref{}, setInfo{keyType: "mark"}, false, true, `nft set "inet fw knock4" holds mark, not ipv4_addr`},

		{"ipv4 set in an ip table", ip, good4, false, true, ""},
		{"ipv6 set in an ip6 table", ip6, good6, true, true, ""},
		{"ipv4 set in an ip6 table", ip6, good4, false, true,
			`nft set "ip6 filter allow6" holds ipv4_addr, but an ip6 table never sees IPv4 packets (declare the set in an inet or ip table)`},
		{"ipv6 set in an ip table", ip, good6, true, true,
			`nft set "ip filter allow" holds ipv6_addr, but an ip table never sees IPv6 packets (declare the set in an inet or ip6 table)`},
		// As Delete asks, without the timeout flag.
		{"ipv4 set in an ip6 table, delete", ip6, good4, false, false,
			`nft set "ip6 filter allow6" holds ipv4_addr, but an ip6 table never sees IPv4 packets (declare the set in an inet or ip table)`},
		// The key type is named first when it is wrong as well.
		{"ipv6 set in an ip6 table, ipv4 address", ip6, good6, false, true, `nft set "ip6 filter allow6" holds ipv6_addr, not ipv4_addr`},
	}
	for _, tt := range tests {
		r := tt.ref
		if r == (Ref{}) {
			r = ref
		}
		err := tt.s.problem(r, tt.ipv6, tt.needTimeout)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
}
