package knock

import (
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"portknock/sealed"
	"portknock/sequence"
)

func tcp(p uint16) sequence.Step { return sequence.Step{Port: p, Proto: sequence.TCP} }
func udp(p uint16) sequence.Step { return sequence.Step{Port: p, Proto: sequence.UDP} }

func TestParseKnock(t *testing.T) {
	tests := []struct {
		in      string
		def     sequence.Proto
		want    sequence.Step
		wantErr string
	}{
		{in: "7000", def: sequence.TCP, want: tcp(7000)},
		{in: "7000", def: sequence.UDP, want: udp(7000)},
		{in: "7000:udp", def: sequence.TCP, want: udp(7000)},
		{in: "7000/udp", def: sequence.TCP, want: udp(7000)},
		{in: "7000:tcp", def: sequence.UDP, want: tcp(7000)},
		{in: "7000/TCP", def: sequence.UDP, want: tcp(7000)},
		{in: "1", def: sequence.TCP, want: tcp(1)},
		{in: "65535/udp", def: sequence.TCP, want: udp(65535)},
		{in: "0", def: sequence.TCP, wantErr: "1-65535"},
		{in: "65536", def: sequence.TCP, wantErr: "1-65535"},
		{in: "-1", def: sequence.TCP, wantErr: "1-65535"},
		{in: "", def: sequence.TCP, wantErr: "1-65535"},
		{in: "ssh", def: sequence.TCP, wantErr: "1-65535"},
		{in: "7000:icmp", def: sequence.TCP, wantErr: "unknown protocol"},
		{in: "7000/", def: sequence.UDP, wantErr: "protocol missing"},
		{in: "7000:", def: sequence.TCP, wantErr: "protocol missing"},
		{in: ":udp", def: sequence.TCP, wantErr: "1-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.in+"/"+tt.def.String(), func(t *testing.T) {
			got, err := ParseKnock(tt.in, tt.def)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKnock(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseKnock(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestOptionsPlan(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		want    Plan
		wantErr string
	}{
		{
			name: "knocks keep their order and default to tcp",
			opts: Options{Args: []string{"host.example", "7000", "8000:udp", "9000/tcp", "7000"}},
			want: Plan{Host: "host.example", Knocks: []sequence.Step{tcp(7000), udp(8000), tcp(9000), tcp(7000)}},
		},
		{
			name: "-u changes only bare ports",
			opts: Options{UDP: true, Args: []string{"h", "7000", "8000:tcp", "9000/udp"}},
			want: Plan{Host: "h", Knocks: []sequence.Step{udp(7000), tcp(8000), udp(9000)}},
		},
		{
			name: "delay in milliseconds",
			opts: Options{DelayMS: 250, Args: []string{"h", "1"}},
			want: Plan{Host: "h", Delay: 250 * time.Millisecond, Knocks: []sequence.Step{tcp(1)}},
		},
		{
			name: "-4",
			opts: Options{IPv4: true, Args: []string{"h", "1"}},
			want: Plan{Host: "h", Family: IPv4, Knocks: []sequence.Step{tcp(1)}},
		},
		{
			name: "-6",
			opts: Options{IPv6: true, Args: []string{"h", "1"}},
			want: Plan{Host: "h", Family: IPv6, Knocks: []sequence.Step{tcp(1)}},
		},
		{name: "-4 and -6", opts: Options{IPv4: true, IPv6: true, Args: []string{"h", "1"}}, wantErr: "-4 and -6"},
		{name: "negative delay", opts: Options{DelayMS: -1, Args: []string{"h", "1"}}, wantErr: "negative"},
		{name: "absurd delay", opts: Options{DelayMS: math.MaxInt, Args: []string{"h", "1"}}, wantErr: "too long"},
		{name: "nothing", opts: Options{}, wantErr: "missing host"},
		{name: "host only", opts: Options{Args: []string{"h"}}, wantErr: `no knocks given for host "h"`},
		{name: "empty host", opts: Options{Args: []string{" ", "1"}}, wantErr: "empty host"},
		{name: "bad port", opts: Options{Args: []string{"h", "7000", "70000"}}, wantErr: `bad knock "70000"`},
		{name: "bad proto", opts: Options{Args: []string{"h", "7000:sctp"}}, wantErr: "unknown protocol"},
		{name: "--id without --key", opts: Options{ID: "1", Args: []string{"h", "1"}}, wantErr: "need --key"},
		{name: "--source without --key", opts: Options{Source: "none", Args: []string{"h", "1"}}, wantErr: "need --key"},

		{
			name: "sealed: defaults",
			opts: Options{KeyFile: "k", Args: []string{"host.example", "40000"}},
			want: Plan{Host: "host.example", Sealed: &Sealed{Base: 40000, Proto: sequence.TCP, KeyFile: "k"}},
		},
		{
			name: "sealed: every option",
			opts: Options{KeyFile: "k", ID: "255", Source: "[2001:db8::7]", UDP: true, IPv6: true, DelayMS: 20, Args: []string{"h", "61440"}},
			want: Plan{Host: "h", Family: IPv6, Delay: 20 * time.Millisecond, Sealed: &Sealed{
				Base: 61440, Proto: sequence.UDP, ID: 255, KeyFile: "k", Source: netip.MustParseAddr("2001:db8::7"),
			}},
		},
		{
			name: "sealed: unbound",
			opts: Options{KeyFile: "k", Source: "none", Args: []string{"h", "1"}},
			want: Plan{Host: "h", Sealed: &Sealed{Base: 1, Proto: sequence.TCP, KeyFile: "k", Unbound: true}},
		},
		{name: "sealed: nothing", opts: Options{KeyFile: "k"}, wantErr: "missing host and BASE"},
		{name: "sealed: no base", opts: Options{KeyFile: "k", Args: []string{"h"}}, wantErr: `no BASE given for host "h"`},
		{name: "sealed: knocks too", opts: Options{KeyFile: "k", Args: []string{"h", "40000", "7000"}}, wantErr: "host and BASE only"},
		{name: "sealed: empty host", opts: Options{KeyFile: "k", Args: []string{"", "40000"}}, wantErr: "empty host"},
		{name: "sealed: base too high", opts: Options{KeyFile: "k", Args: []string{"h", "61441"}}, wantErr: `bad BASE "61441"`},
		{name: "sealed: base with proto", opts: Options{KeyFile: "k", Args: []string{"h", "40000/udp"}}, wantErr: "chosen with -u"},
		{name: "sealed: bad id", opts: Options{KeyFile: "k", ID: "256", Args: []string{"h", "40000"}}, wantErr: `bad --id "256"`},
		{name: "sealed: bad source", opts: Options{KeyFile: "k", Source: "gateway", Args: []string{"h", "40000"}}, wantErr: `bad --source "gateway"`},
		{name: "sealed: -4 and -6", opts: Options{KeyFile: "k", IPv4: true, IPv6: true, Args: []string{"h", "40000"}}, wantErr: "-4 and -6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.Plan()
			if tt.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Plan() error = %v; want a *UsageError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Plan() = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestFamilyNetwork(t *testing.T) {
	for f, want := range map[Family]string{AnyFamily: "ip", IPv4: "ip4", IPv6: "ip6"} {
		if got := f.Network(); got != want {
			t.Errorf("%v.Network() = %q; want %q", f, got, want)
		}
	}
}

func TestParseBase(t *testing.T) {
	tests := []struct {
		in      string
		want    uint16
		wantErr string
	}{
		{in: "1", want: 1},
		{in: "40000", want: 40000},
		{in: "61440", want: 61440},
		{in: "061440", want: 61440},
		{in: "0", wantErr: "1-61440"},
		{in: "61441", wantErr: "1-61440"},
		{in: "65535", wantErr: "1-61440"},
		{in: "70000", wantErr: "1-61440"},
		{in: "-1", wantErr: "1-61440"},
		{in: "+40000", wantErr: "1-61440"},
		{in: "", wantErr: "1-61440"},
		{in: " 40000", wantErr: "1-61440"},
		{in: "0x9c40", wantErr: "1-61440"},
		{in: "40000:tcp", wantErr: "chosen with -u"},
		{in: "40000/udp", wantErr: "chosen with -u"},
	}
	for _, tt := range tests {
		got, err := ParseBase(tt.in)
		if tt.wantErr != "" {
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBase(%q) = %d, %v; want a usage error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBase(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseID(t *testing.T) {
	for in, want := range map[string]int{"": 0, "0": 0, "7": 7, "255": 255, "007": 7, "256": -1, "-1": -1, "x": -1, " 1": -1, "0x10": -1} {
		got, err := ParseID(in)
		if want < 0 {
			if err == nil || !strings.Contains(err.Error(), "0-255") {
				t.Errorf("ParseID(%q) = %d, %v; want an error naming 0-255", in, got, err)
			}
			continue
		}
		if err != nil || int(got) != want {
			t.Errorf("ParseID(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		in      string
		want    string // "" for none
		unbound bool
		wantErr string
	}{
		{in: ""},
		{in: "none", unbound: true},
		{in: "203.0.113.7", want: "203.0.113.7"},
		{in: "2001:db8::7", want: "2001:db8::7"},
		{in: "[2001:db8::7]", want: "2001:db8::7"},
		{in: "::ffff:203.0.113.7", want: "203.0.113.7"},
		{in: "fe80::1%eth0", want: "fe80::1"},
		{in: "127.0.0.2", want: "127.0.0.2"},
		{in: "None", wantErr: "bad --source"},
		{in: "203.0.113.7:22", wantErr: "bad --source"},
		{in: "host.example", wantErr: "bad --source"},
		{in: "0.0.0.0", wantErr: "no packet comes from"},
		{in: "::", wantErr: "no packet comes from"},
		{in: "224.0.0.1", wantErr: "no packet comes from"},
		{in: "ff02::1", wantErr: "no packet comes from"},
	}
	for _, tt := range tests {
		got, unbound, err := ParseSource(tt.in)
		if tt.wantErr != "" {
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSource(%q) = %v, %v, %v; want a usage error containing %q", tt.in, got, unbound, err, tt.wantErr)
			}
			continue
		}
		var want netip.Addr
		if tt.want != "" {
			want = netip.MustParseAddr(tt.want)
		}
		if err != nil || got != want || unbound != tt.unbound {
			t.Errorf("ParseSource(%q) = %v, %v, %v; want %v, %v", tt.in, got, unbound, err, want, tt.unbound)
		}
	}
}

// FuzzSealedArgs feeds the sealed knock's argument parsers anything: they
// must not panic, and what they accept must be usable (a base whose ports
// fit, a source a packet can come from).
func FuzzSealedArgs(f *testing.F) {
	for _, s := range []string{"40000", "61440", "61441", "0", "40000:udp", "255", "none", "[::1]", "::ffff:1.2.3.4", "fe80::1%eth0", "0.0.0.0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := ParseBase(s); err == nil {
			if b < 1 || b > 61440 {
				t.Fatalf("ParseBase(%q) = %d, outside 1-61440", s, b)
			}
			_ = sealedPorts(b)
		}
		if id, err := ParseID(s); err == nil && s != "" && strings.TrimLeft(s, "0") != strings.TrimLeft(strconv.Itoa(int(id)), "0") {
			t.Fatalf("ParseID(%q) = %d", s, id)
		}
		if a, unbound, err := ParseSource(s); err == nil {
			switch {
			case unbound && (s != "none" || a.IsValid()):
				t.Fatalf("ParseSource(%q) = %v, unbound", s, a)
			case !unbound && s != "" && (!a.IsValid() || a.Is4In6() || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast()):
				t.Fatalf("ParseSource(%q) = %v, not a source address", s, a)
			}
		}
	})
}

// sealedPorts spells an all-0xff block from base: the highest ports a
// door can own, which must not wrap.
func sealedPorts(base uint16) [sealed.Knocks]uint16 {
	var c [sealed.BlockSize]byte
	for i := range c {
		c[i] = 0xff
	}
	return sealed.Ports(base, c)
}
