package knock

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

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
