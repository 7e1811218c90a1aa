package knock

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"portknock/sequence"
)

// fakeResolver answers from a table and records every question. Answers
// may differ from call to call, like a round-robin DNS name, so a test can
// tell whether a sequence was resolved more than once.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr // network+" "+host → answer per call
	err     error
	calls   []string
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := network + " " + host
	n := 0
	for _, c := range r.calls {
		if c == key {
			n++
		}
	}
	r.calls = append(r.calls, key)
	if r.err != nil {
		return nil, r.err
	}
	answers := r.answers[key]
	if len(answers) == 0 {
		return nil, errors.New("no such host")
	}
	return answers[n%len(answers)], nil
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestResolve(t *testing.T) {
	dual := map[string][][]netip.Addr{
		"ip dual.example":  {addrs("2001:db8::1", "192.0.2.1")},
		"ip4 dual.example": {addrs("::ffff:192.0.2.1")},
		"ip6 dual.example": {addrs("2001:db8::1")},
		"ip v4.example":    {addrs("::ffff:192.0.2.7")},
		"ip6 v4.example":   {nil},
		// A resolver that ignores the family it was asked for.
		"ip4 sloppy.example": {addrs("2001:db8::9", "192.0.2.9")},
		"ip6 sloppy.example": {addrs("192.0.2.9", "2001:db8::9")},
	}
	tests := []struct {
		name      string
		host      string
		fam       Family
		want      string
		wantCalls []string
		wantErr   string
		usage     bool
	}{
		{name: "IPv4 literal, no lookup", host: "192.0.2.1", want: "192.0.2.1"},
		{name: "IPv6 literal, no lookup", host: "2001:db8::1", want: "2001:db8::1"},
		{name: "bracketed IPv6 literal", host: "[::1]", fam: IPv6, want: "::1"},
		{name: "zone kept", host: "fe80::1%eth0", want: "fe80::1%eth0"},
		{name: "mapped literal unmapped", host: "::ffff:192.0.2.3", want: "192.0.2.3"},
		{name: "mapped literal with -4", host: "::ffff:192.0.2.3", fam: IPv4, want: "192.0.2.3"},
		{name: "IPv6 literal with -4", host: "::1", fam: IPv4, wantErr: "::1 is not an IPv4 address", usage: true},
		{name: "IPv4 literal with -6", host: "127.0.0.1", fam: IPv6, wantErr: "127.0.0.1 is not an IPv6 address", usage: true},
		{name: "name, first answer", host: "dual.example", want: "2001:db8::1", wantCalls: []string{"ip dual.example"}},
		{name: "name with -4 asks for ip4", host: "dual.example", fam: IPv4, want: "192.0.2.1", wantCalls: []string{"ip4 dual.example"}},
		{name: "name with -6 asks for ip6", host: "dual.example", fam: IPv6, want: "2001:db8::1", wantCalls: []string{"ip6 dual.example"}},
		{name: "mapped answer unmapped", host: "v4.example", want: "192.0.2.7", wantCalls: []string{"ip v4.example"}},
		{name: "-4 filters a sloppy answer", host: "sloppy.example", fam: IPv4, want: "192.0.2.9", wantCalls: []string{"ip4 sloppy.example"}},
		{name: "-6 filters a sloppy answer", host: "sloppy.example", fam: IPv6, want: "2001:db8::9", wantCalls: []string{"ip6 sloppy.example"}},
		{name: "no address of the family", host: "v4.example", fam: IPv6, wantErr: "cannot resolve v4.example: no IPv6 address found", wantCalls: []string{"ip6 v4.example"}},
		{name: "unknown name", host: "nx.example", wantErr: "cannot resolve nx.example: no such host", wantCalls: []string{"ip nx.example"}},
		{name: "empty", host: "[]", wantErr: "empty host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeResolver{answers: dual}
			got, err := Resolve(context.Background(), r, tt.host, tt.fam)
			if !reflect.DeepEqual(r.calls, tt.wantCalls) {
				t.Errorf("resolver calls = %q; want %q", r.calls, tt.wantCalls)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) = %v, %v; want error containing %q", tt.host, got, err, tt.wantErr)
				}
				var ue *UsageError
				if errors.As(err, &ue) != tt.usage {
					t.Fatalf("Resolve(%q) error %v: usage error = %v; want %v", tt.host, err, !tt.usage, tt.usage)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("Resolve(%q) = %v, %v; want %s", tt.host, got, err, tt.want)
			}
		})
	}
}

func TestResolveKeepsCause(t *testing.T) {
	cause := errors.New("server misbehaving")
	_, err := Resolve(context.Background(), &fakeResolver{err: cause}, "x.example", AnyFamily)
	if !errors.Is(err, cause) {
		t.Fatalf("Resolve error %v does not wrap %v", err, cause)
	}
}

type sent struct {
	Dst   netip.AddrPort
	Proto sequence.Proto
}

// fakeSender records knocks and fails the knock numbered failAt (from 1).
type fakeSender struct {
	sent   []sent
	failAt int
	err    error
}

func (s *fakeSender) Send(_ context.Context, dst netip.AddrPort, proto sequence.Proto) error {
	s.sent = append(s.sent, sent{dst, proto})
	if len(s.sent) == s.failAt {
		return s.err
	}
	return nil
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestRunnerRun(t *testing.T) {
	// Every call returns the other family first: resolving per knock would
	// alternate between them.
	flipFlop := map[string][][]netip.Addr{
		"ip flip.example":  {addrs("192.0.2.1", "2001:db8::1"), addrs("2001:db8::1", "192.0.2.1")},
		"ip4 flip.example": {addrs("192.0.2.1"), addrs("192.0.2.2")},
	}
	unreachable := syscall.ENETUNREACH
	tests := []struct {
		name       string
		plan       Plan
		failAt     int
		want       []sent
		wantSleeps []time.Duration
		wantLog    string
		wantErr    string
	}{
		{
			name: "resolved once, same address for every knock",
			plan: Plan{Host: "flip.example", Knocks: []sequence.Step{tcp(7000), udp(8000), tcp(9000)}},
			want: []sent{
				{ap("192.0.2.1:7000"), sequence.TCP},
				{ap("192.0.2.1:8000"), sequence.UDP},
				{ap("192.0.2.1:9000"), sequence.TCP},
			},
			wantLog: "hitting tcp 192.0.2.1:7000\nhitting udp 192.0.2.1:8000\nhitting tcp 192.0.2.1:9000\n",
		},
		{
			name:    "-4 family",
			plan:    Plan{Host: "flip.example", Family: IPv4, Knocks: []sequence.Step{udp(1), udp(2)}},
			want:    []sent{{ap("192.0.2.1:1"), sequence.UDP}, {ap("192.0.2.1:2"), sequence.UDP}},
			wantLog: "hitting udp 192.0.2.1:1\nhitting udp 192.0.2.1:2\n",
		},
		{
			name:    "IPv6 literal printed with brackets",
			plan:    Plan{Host: "2001:db8::5", Knocks: []sequence.Step{tcp(22)}},
			want:    []sent{{ap("[2001:db8::5]:22"), sequence.TCP}},
			wantLog: "hitting tcp [2001:db8::5]:22\n",
		},
		{
			name:       "delay between knocks only",
			plan:       Plan{Host: "192.0.2.1", Delay: 150 * time.Millisecond, Knocks: []sequence.Step{tcp(1), tcp(2), tcp(3)}},
			want:       []sent{{ap("192.0.2.1:1"), sequence.TCP}, {ap("192.0.2.1:2"), sequence.TCP}, {ap("192.0.2.1:3"), sequence.TCP}},
			wantSleeps: []time.Duration{150 * time.Millisecond, 150 * time.Millisecond},
			wantLog:    "hitting tcp 192.0.2.1:1\nhitting tcp 192.0.2.1:2\nhitting tcp 192.0.2.1:3\n",
		},
		{
			name:    "a failed knock stops the sequence",
			plan:    Plan{Host: "192.0.2.1", Knocks: []sequence.Step{tcp(1), udp(2), tcp(3)}},
			failAt:  2,
			want:    []sent{{ap("192.0.2.1:1"), sequence.TCP}, {ap("192.0.2.1:2"), sequence.UDP}},
			wantLog: "hitting tcp 192.0.2.1:1\nhitting udp 192.0.2.1:2\n",
			wantErr: "knock 2 of 3 (udp 192.0.2.1:2): network is unreachable",
		},
		{
			name:    "unresolvable host sends nothing",
			plan:    Plan{Host: "nx.example", Knocks: []sequence.Step{tcp(1)}},
			wantErr: "cannot resolve nx.example",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &fakeResolver{answers: flipFlop}
			snd := &fakeSender{failAt: tt.failAt, err: unreachable}
			var sleeps []time.Duration
			var log strings.Builder
			r := Runner{
				Resolver: res,
				Sender:   snd,
				Sleep: func(_ context.Context, d time.Duration) error {
					sleeps = append(sleeps, d)
					return nil
				},
				Verbose: &log,
			}
			err := r.Run(context.Background(), tt.plan)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run() error = %v; want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if len(res.calls) > 1 {
				t.Errorf("host resolved %d times (%q); want at most once", len(res.calls), res.calls)
			}
			if !reflect.DeepEqual(snd.sent, tt.want) {
				t.Errorf("sent %v; want %v", snd.sent, tt.want)
			}
			if !reflect.DeepEqual(sleeps, tt.wantSleeps) {
				t.Errorf("slept %v; want %v", sleeps, tt.wantSleeps)
			}
			if log.String() != tt.wantLog {
				t.Errorf("verbose output %q; want %q", log.String(), tt.wantLog)
			}
		})
	}
}

func TestRunnerSendErrorDetails(t *testing.T) {
	snd := &fakeSender{failAt: 1, err: syscall.ENETUNREACH}
	r := Runner{Resolver: &fakeResolver{}, Sender: snd}
	err := r.Run(context.Background(), Plan{Host: "2001:db8::1", Knocks: []sequence.Step{udp(53)}})
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("Run() error = %v; want a *SendError", err)
	}
	if se.Index != 1 || se.Total != 1 || se.Knock != udp(53) || se.Dst != ap("[2001:db8::1]:53") {
		t.Errorf("SendError = %+v", se)
	}
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("Run() error %v does not wrap ENETUNREACH", err)
	}
}

func TestRunnerStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	snd := &fakeSender{}
	r := Runner{
		Resolver: &fakeResolver{},
		Sender:   snd,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			cancel()
			return ctx.Err()
		},
	}
	err := r.Run(ctx, Plan{Host: "192.0.2.1", Delay: time.Hour, Knocks: []sequence.Step{tcp(1), tcp(2)}})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped after 1 of 2 knocks") {
		t.Fatalf("Run() error = %v; want cancellation after the first knock", err)
	}
	if len(snd.sent) != 1 {
		t.Fatalf("sent %d knocks; want 1", len(snd.sent))
	}
}

func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepCtx on a cancelled context = %v; want context.Canceled", err)
	}
	if err := sleepCtx(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("sleepCtx(1ns) = %v", err)
	}
}

func TestRunnerNeedsItsParts(t *testing.T) {
	if err := (Runner{}).Run(context.Background(), Plan{Host: "192.0.2.1", Knocks: []sequence.Step{tcp(1)}}); err == nil {
		t.Fatal("Run() on an empty Runner succeeded")
	}
}

// TestNetSendRejects covers what Net refuses before touching a socket, so
// it sends nothing.
func TestNetSendRejects(t *testing.T) {
	var n Net
	if err := n.Send(context.Background(), netip.AddrPort{}, sequence.TCP); err == nil {
		t.Error("Send to an invalid destination succeeded")
	}
	if err := n.Send(context.Background(), ap("127.0.0.1:0"), sequence.UDP); err == nil {
		t.Error("Send to port 0 succeeded")
	}
	if err := n.Send(context.Background(), ap("127.0.0.1:7"), sequence.Proto(0)); err == nil {
		t.Error("Send with no protocol succeeded")
	}
}
