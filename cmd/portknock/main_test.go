package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"portknock/knock"
	"portknock/sequence"
)

type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := r[network+" "+host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// recorder stands for the network and the clock: it notes knocks and
// waits as one log, so their interleaving is checked too.
type recorder struct {
	log    []string
	failAt int
}

func (r *recorder) Send(_ context.Context, dst netip.AddrPort, proto sequence.Proto) error {
	r.log = append(r.log, fmt.Sprintf("%s %s", proto, dst))
	if len(r.log) == r.failAt {
		return syscall.ENETUNREACH
	}
	return nil
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.log = append(r.log, "wait "+d.String())
	return nil
}

func TestRun(t *testing.T) {
	res := fakeResolver{
		"ip host.example":  {netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("192.0.2.7")},
		"ip4 host.example": {netip.MustParseAddr("192.0.2.7")},
		"ip6 host.example": {netip.MustParseAddr("2001:db8::7")},
	}
	tests := []struct {
		name       string
		args       string
		failAt     int
		wantCode   int
		wantSent   string // the recorder's log, joined with "; "
		wantStdout string // substring
		wantStderr string // substring; "" means stderr must be empty
	}{
		{name: "tcp by default", args: "192.0.2.1 7000 8000 9000", wantSent: "tcp 192.0.2.1:7000; tcp 192.0.2.1:8000; tcp 192.0.2.1:9000"},
		{name: "mixed protocols", args: "192.0.2.1 7000:udp 8000/udp 9000:tcp", wantSent: "udp 192.0.2.1:7000; udp 192.0.2.1:8000; tcp 192.0.2.1:9000"},
		{name: "-u", args: "-u 192.0.2.1 7000 8000:tcp", wantSent: "udp 192.0.2.1:7000; tcp 192.0.2.1:8000"},
		{name: "--udp", args: "--udp 192.0.2.1 7000", wantSent: "udp 192.0.2.1:7000"},
		{name: "-d waits between knocks", args: "-d 100 192.0.2.1 1 2 3", wantSent: "tcp 192.0.2.1:1; wait 100ms; tcp 192.0.2.1:2; wait 100ms; tcp 192.0.2.1:3"},
		{name: "--delay=", args: "--delay=5 192.0.2.1 1 2", wantSent: "tcp 192.0.2.1:1; wait 5ms; tcp 192.0.2.1:2"},
		{name: "-d0 does not wait", args: "-d0 192.0.2.1 1 2", wantSent: "tcp 192.0.2.1:1; tcp 192.0.2.1:2"},
		{name: "name takes the first answer", args: "host.example 1 2:udp", wantSent: "tcp [2001:db8::7]:1; udp [2001:db8::7]:2"},
		{name: "-4", args: "-4 host.example 1 2:udp", wantSent: "tcp 192.0.2.7:1; udp 192.0.2.7:2"},
		{name: "--ipv6", args: "--ipv6 host.example 1", wantSent: "tcp [2001:db8::7]:1"},
		{name: "flags after the host", args: "192.0.2.1 1 -u 2", wantSent: "udp 192.0.2.1:1; udp 192.0.2.1:2"},
		{
			name: "-v prints each knock", args: "-v -u 192.0.2.1 7000 8000:tcp",
			wantSent:   "udp 192.0.2.1:7000; tcp 192.0.2.1:8000",
			wantStdout: "hitting udp 192.0.2.1:7000\nhitting tcp 192.0.2.1:8000\n",
		},
		{name: "-h", args: "-h", wantStdout: "Usage: portknock [options] host port[:proto] ..."},
		{name: "--help lists the options", args: "--help 192.0.2.1 1", wantStdout: "-6, --ipv6"},
		{name: "-V", args: "-V", wantStdout: "portknock "},
		{name: "no arguments", args: "", wantCode: 2, wantStderr: "portknock: missing host and knocks"},
		{name: "host without knocks", args: "192.0.2.1", wantCode: 2, wantStderr: `no knocks given for host "192.0.2.1"`},
		{name: "unknown flag", args: "-x 192.0.2.1 1", wantCode: 2, wantStderr: "unknown shorthand flag: 'x'"},
		{name: "delay not a number", args: "-d soon 192.0.2.1 1", wantCode: 2, wantStderr: `invalid argument "soon"`},
		{name: "negative delay", args: "-d -5 192.0.2.1 1", wantCode: 2, wantStderr: "negative"},
		{name: "port 0", args: "192.0.2.1 7000 0", wantCode: 2, wantStderr: `bad knock "0": port must be 1-65535`},
		{name: "port too big", args: "192.0.2.1 65536", wantCode: 2, wantStderr: "port must be 1-65535"},
		{name: "bad protocol", args: "192.0.2.1 7000:icmp", wantCode: 2, wantStderr: "unknown protocol"},
		{name: "-4 and -6", args: "-4 -6 host.example 1", wantCode: 2, wantStderr: "-4 and -6 cannot be used together"},
		{name: "-6 with an IPv4 literal", args: "-6 192.0.2.1 1", wantCode: 2, wantStderr: "192.0.2.1 is not an IPv6 address"},
		{name: "unresolvable host", args: "nx.example 1", wantCode: 1, wantStderr: "portknock: cannot resolve nx.example: no such host"},
		{
			name: "send failure stops and says which knock", args: "192.0.2.1 1 2:udp 3", failAt: 2, wantCode: 1,
			wantSent:   "tcp 192.0.2.1:1; udp 192.0.2.1:2",
			wantStderr: "portknock: knock 2 of 3 (udp 192.0.2.1:2): network is unreachable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{failAt: tt.failAt}
			r := knock.Runner{Resolver: res, Sender: rec, Sleep: rec.sleep}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), strings.Fields(tt.args), &stdout, &stderr, r)
			if code != tt.wantCode {
				t.Errorf("exit status %d; want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if got := strings.Join(rec.log, "; "); got != tt.wantSent {
				t.Errorf("sent %q; want %q", got, tt.wantSent)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q; want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if tt.wantStderr == "" && stderr.Len() > 0 {
				t.Errorf("stderr %q; want it empty", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q; want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode == 2 && !strings.Contains(stderr.String(), "Usage: portknock") {
				t.Errorf("usage error without a usage line: %q", stderr.String())
			}
		})
	}
}
