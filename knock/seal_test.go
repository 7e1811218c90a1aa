package knock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"portknock/sealed"
	"portknock/sequence"
)

// vectorKey is the key of docs/sealed.md's test vectors: 0x00 … 0x1f.
func vectorKey() sealed.Key {
	var k sealed.Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// fakeRouter answers LocalAddr from a table and records the questions.
type fakeRouter struct {
	local map[netip.Addr]netip.Addr
	err   error
	asked []netip.AddrPort
}

func (r *fakeRouter) LocalAddr(_ context.Context, dst netip.AddrPort) (netip.Addr, error) {
	r.asked = append(r.asked, dst)
	if r.err != nil {
		return netip.Addr{}, r.err
	}
	a, ok := r.local[dst.Addr()]
	if !ok {
		return netip.Addr{}, errors.New("no route")
	}
	return a, nil
}

func fixedNow(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

func nonceReader(t *testing.T, h string) *bytes.Reader {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 4 {
		t.Fatalf("bad nonce %q", h)
	}
	return bytes.NewReader(b)
}

// TestSealedRunVectors runs sealed plans with the clock and nonce of
// docs/sealed.md's vectors: the ports sent must be the vectors' ports, an
// independent statement of the format, not a recomputation by the code
// under test.
func TestSealedRunVectors(t *testing.T) {
	ports := func(ps ...uint16) []sent {
		var out []sent
		for _, p := range ps {
			out = append(out, sent{netip.AddrPortFrom(netip.MustParseAddr("2001:db8::99"), p), sequence.TCP})
		}
		return out
	}
	tests := []struct {
		name   string
		source string // --source as given; "" asks the router
		local  string // the router's answer
		id     byte
		base   uint16
		time   int64
		nonce  string
		want   []sent
	}{
		{
			name: "ipv4 given", source: "192.0.2.1", base: 20000, time: 1767225600, nonce: "01234567",
			want: ports(20040, 20473, 20599, 20911, 21219, 21483, 21607, 21963, 22279, 22314, 22768, 22963, 23183, 23580, 23591, 23932),
		},
		{
			name: "ipv6 from the route", local: "2001:db8::1", id: 1, base: 20000, time: 1767225600, nonce: "01234567",
			want: ports(20064, 20420, 20589, 20981, 21162, 21325, 21647, 22020, 22110, 22482, 22796, 23018, 23168, 23467, 23728, 23883),
		},
		{
			name: "unbound", source: "none", base: 20000, time: 1767225600, nonce: "01234567",
			want: ports(20249, 20468, 20703, 20801, 21057, 21472, 21585, 21878, 22077, 22312, 22743, 22919, 23210, 23423, 23791, 24061),
		},
		{
			name: "mapped from the route", local: "::ffff:198.51.100.7", id: 255, base: 1, time: 1767225645, nonce: "deadbeef",
			want: ports(209, 434, 681, 835, 1185, 1441, 1605, 1913, 2243, 2496, 2616, 3014, 3140, 3457, 3688, 3852),
		},
	}
	dst := netip.MustParseAddr("2001:db8::99")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, unbound, err := ParseSource(tt.source)
			if err != nil {
				t.Fatal(err)
			}
			router := &fakeRouter{}
			if tt.local != "" {
				router.local = map[netip.Addr]netip.Addr{dst: netip.MustParseAddr(tt.local)}
			}
			snd := &fakeSender{}
			r := Runner{Resolver: &fakeResolver{}, Sender: snd, Router: router, Now: fixedNow(tt.time), Rand: nonceReader(t, tt.nonce)}
			plan := Plan{Host: dst.String(), Sealed: &Sealed{Base: tt.base, Proto: sequence.TCP, ID: tt.id, Key: vectorKey(), Source: src, Unbound: unbound}}
			if err := r.Run(context.Background(), plan); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(snd.sent, tt.want) {
				t.Errorf("sent %v\nwant %v", snd.sent, tt.want)
			}
			wantAsked := []netip.AddrPort(nil)
			if tt.local != "" {
				wantAsked = []netip.AddrPort{netip.AddrPortFrom(dst, tt.base)}
			}
			if !reflect.DeepEqual(router.asked, wantAsked) {
				t.Errorf("router asked %v; want %v", router.asked, wantAsked)
			}
		})
	}
}

// TestSealedRunMatchesSealer checks, over random keys, times, nonces,
// sources and doors, that the knocks sent are sealed.Ports of the block
// Sealer.Seal makes, in index order, with the plan's protocol and delay.
func TestSealedRunMatchesSealer(t *testing.T) {
	sources := []string{"192.0.2.1", "198.51.100.200", "2001:db8::1", "2001:db8:1:2:3:4:5:6", "none", ""}
	for i := range 50 {
		key, err := sealed.NewKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		var rnd [4]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			t.Fatal(err)
		}
		now := time.Unix(int64(1e9+i*86400*37), 0)
		base := uint16(1 + i*1229%sealed.MaxBase)
		id := byte(i * 41)
		proto := sequence.TCP
		if i%2 == 1 {
			proto = sequence.UDP
		}
		source := sources[i%len(sources)]
		dst := netip.MustParseAddr("192.0.2.99")
		local := netip.MustParseAddr("192.0.2.10")
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			src, unbound, err := ParseSource(source)
			if err != nil {
				t.Fatal(err)
			}
			snd := &fakeSender{}
			var sleeps int
			r := Runner{
				Resolver: &fakeResolver{}, Sender: snd,
				Router: &fakeRouter{local: map[netip.Addr]netip.Addr{dst: local}},
				Now:    func() time.Time { return now }, Rand: bytes.NewReader(rnd[:]),
				Sleep: func(context.Context, time.Duration) error { sleeps++; return nil },
			}
			plan := Plan{Host: dst.String(), Delay: time.Millisecond, Sealed: &Sealed{Base: base, Proto: proto, ID: id, Key: key, Source: src, Unbound: unbound}}
			if err := r.Run(context.Background(), plan); err != nil {
				t.Fatal(err)
			}
			bound := src
			if source == "" {
				bound = local
			}
			c := sealed.NewSealer(key).Seal(now, rnd, bound, id)
			var want []sent
			for _, p := range sealed.Ports(base, c) {
				want = append(want, sent{netip.AddrPortFrom(dst, p), proto})
			}
			if !reflect.DeepEqual(snd.sent, want) {
				t.Errorf("sent %v\nwant %v", snd.sent, want)
			}
			if sleeps != sealed.Knocks-1 {
				t.Errorf("slept %d times between 16 knocks; want 15", sleeps)
			}
			// And the daemon's side agrees: the block opens for the
			// source it was bound to.
			var got [sealed.BlockSize]byte
			for _, s := range snd.sent {
				i, b, ok := sealed.Position(base, s.Dst.Port())
				if !ok {
					t.Fatalf("port %d outside the door's range", s.Dst.Port())
				}
				got[i] = b
			}
			from := bound
			if unbound {
				from = netip.MustParseAddr("203.0.113.1")
			}
			b, err := sealed.NewOpener(key).Open(got, from, now, sealed.Policy{BindSource: !unbound, MaxSkew: time.Minute})
			if err != nil || b.ID != id || b.Nonce != rnd || b.Bound() == unbound {
				t.Errorf("Open = %+v, %v; want door %d, nonce %x, bound %v", b, err, id, rnd, !unbound)
			}
		})
	}
}

func TestSealedSource(t *testing.T) {
	dst4 := netip.MustParseAddr("192.0.2.99")
	tests := []struct {
		name      string
		host      string
		source    string
		router    *fakeRouter // nil: no Router at all
		wantSrc   string      // "" for unbound
		wantAsked bool
		wantErr   string
		wantNote  string
		wantV     string // substring of the -v output
	}{
		{name: "given, router not asked", host: "192.0.2.99", source: "203.0.113.5", router: &fakeRouter{}, wantSrc: "203.0.113.5", wantV: "source 203.0.113.5 (--source)"},
		{name: "given, no router needed", host: "192.0.2.99", source: "203.0.113.5", wantSrc: "203.0.113.5"},
		{name: "none, router not asked", host: "192.0.2.99", source: "none", router: &fakeRouter{}, wantV: "source none (unbound"},
		{
			name: "route", host: "192.0.2.99", router: &fakeRouter{local: map[netip.Addr]netip.Addr{dst4: netip.MustParseAddr("192.0.2.10")}},
			wantSrc: "192.0.2.10", wantAsked: true, wantV: "source 192.0.2.10 (this machine's address toward 192.0.2.99)",
		},
		{
			name: "route's zone dropped", host: "fe80::99%2", router: &fakeRouter{local: map[netip.Addr]netip.Addr{netip.MustParseAddr("fe80::99%2"): netip.MustParseAddr("fe80::10%2")}},
			wantSrc: "fe80::10", wantAsked: true,
		},
		{name: "no route", host: "192.0.2.99", router: &fakeRouter{}, wantAsked: true, wantErr: "cannot tell this machine's address toward 192.0.2.99: no route; give it with --source"},
		{name: "no router", host: "192.0.2.99", wantErr: "needs a Router"},
		{
			name: "unspecified answer", host: "192.0.2.99", router: &fakeRouter{local: map[netip.Addr]netip.Addr{dst4: netip.IPv4Unspecified()}},
			wantAsked: true, wantErr: "the kernel named no address",
		},
		{
			name: "private source, public host: NAT note", host: "8.8.8.8",
			router:  &fakeRouter{local: map[netip.Addr]netip.Addr{netip.MustParseAddr("8.8.8.8"): netip.MustParseAddr("192.168.1.20")}},
			wantSrc: "192.168.1.20", wantAsked: true, wantNote: "give your public address with --source ADDR",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, unbound, err := ParseSource(tt.source)
			if err != nil {
				t.Fatal(err)
			}
			key := vectorKey()
			snd := &fakeSender{}
			var notes, verbose strings.Builder
			r := Runner{Resolver: &fakeResolver{}, Sender: snd, Now: fixedNow(1767225600), Rand: nonceReader(t, "01234567"), Notes: &notes, Verbose: &verbose}
			if tt.router != nil {
				r.Router = tt.router
			}
			err = r.Run(context.Background(), Plan{Host: tt.host, Sealed: &Sealed{Base: 40000, Proto: sequence.TCP, Key: key, Source: src, Unbound: unbound}})
			if tt.router != nil && (len(tt.router.asked) > 0) != tt.wantAsked {
				t.Errorf("router asked %v; want asked: %v", tt.router.asked, tt.wantAsked)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run() = %v; want an error containing %q", err, tt.wantErr)
				}
				if len(snd.sent) > 0 {
					t.Fatalf("sent %v despite the error", snd.sent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want netip.Addr
			if tt.wantSrc != "" {
				want = netip.MustParseAddr(tt.wantSrc)
			}
			c := sealed.NewSealer(key).Seal(time.Unix(1767225600, 0), [4]byte{1, 0x23, 0x45, 0x67}, want, 0)
			if len(snd.sent) != sealed.Knocks {
				t.Fatalf("sent %d knocks; want 16", len(snd.sent))
			}
			for i, p := range sealed.Ports(40000, c) {
				if snd.sent[i].Dst.Port() != p {
					t.Fatalf("knock %d on port %d; want %d: the block is not bound to %q", i, snd.sent[i].Dst.Port(), p, tt.wantSrc)
				}
			}
			if tt.wantNote == "" && notes.Len() > 0 || !strings.Contains(notes.String(), tt.wantNote) {
				t.Errorf("notes %q; want %q", notes.String(), tt.wantNote)
			}
			if !strings.Contains(verbose.String(), tt.wantV) {
				t.Errorf("verbose output %q; want it to contain %q", verbose.String(), tt.wantV)
			}
		})
	}
}

// TestSealedVerbose checks the -v output: a line about the block, then
// each knock printed exactly as a plain knock is.
func TestSealedVerbose(t *testing.T) {
	var v strings.Builder
	src, _, _ := ParseSource("192.0.2.1")
	r := Runner{Resolver: &fakeResolver{}, Sender: &fakeSender{}, Now: fixedNow(1767225600), Rand: nonceReader(t, "01234567"), Verbose: &v}
	err := r.Run(context.Background(), Plan{Host: "192.0.2.7", Sealed: &Sealed{Base: 20000, Proto: sequence.UDP, Key: vectorKey(), Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	want := "sealed block for door id 0: source 192.0.2.1 (--source), time 1767225600 (2026-01-01T00:00:00Z), nonce 01234567\n"
	for _, p := range []int{20040, 20473, 20599, 20911, 21219, 21483, 21607, 21963, 22279, 22314, 22768, 22963, 23183, 23580, 23591, 23932} {
		want += fmt.Sprintf("hitting udp 192.0.2.7:%d\n", p)
	}
	if v.String() != want {
		t.Errorf("verbose output:\n%s\nwant:\n%s", v.String(), want)
	}
}

func TestSealedNonceFailure(t *testing.T) {
	snd := &fakeSender{}
	r := Runner{Resolver: &fakeResolver{}, Sender: snd, Rand: bytes.NewReader([]byte{1, 2})}
	err := r.Run(context.Background(), Plan{Host: "192.0.2.7", Sealed: &Sealed{Base: 20000, Proto: sequence.TCP, Key: vectorKey(), Unbound: true}})
	if err == nil || !strings.Contains(err.Error(), "random nonce") || len(snd.sent) > 0 {
		t.Fatalf("Run() with a short random source = %v, sent %v; want a nonce error and nothing sent", err, snd.sent)
	}
}

// TestSealedNoncesDiffer: without an injected source, two runs make two
// blocks, so the replay cache lets both in.
func TestSealedNoncesDiffer(t *testing.T) {
	var runs [2][]sent
	for i := range runs {
		snd := &fakeSender{}
		r := Runner{Resolver: &fakeResolver{}, Sender: snd, Now: fixedNow(1767225600)}
		if err := r.Run(context.Background(), Plan{Host: "192.0.2.7", Sealed: &Sealed{Base: 20000, Proto: sequence.TCP, Key: vectorKey(), Unbound: true}}); err != nil {
			t.Fatal(err)
		}
		runs[i] = snd.sent
	}
	if reflect.DeepEqual(runs[0], runs[1]) {
		t.Fatal("two sealed knocks in the same second sent the same ports: the nonce is not random")
	}
}

func TestBehindNAT(t *testing.T) {
	tests := []struct {
		src, dst string
		want     bool
	}{
		{"192.168.1.2", "203.0.113.1", true},
		{"10.0.0.2", "8.8.8.8", true},
		{"172.16.5.5", "198.51.100.9", true},
		{"100.64.1.1", "203.0.113.1", true},
		{"fd00::5", "2001:db8::1", true},
		{"192.168.1.2", "192.168.1.1", false},
		{"192.168.1.2", "100.64.0.1", false},
		{"203.0.113.9", "198.51.100.1", false},
		{"127.0.0.1", "127.0.0.1", false},
		{"::1", "::1", false},
		{"fe80::1", "2001:db8::1", false},
	}
	for _, tt := range tests {
		if got := behindNAT(netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)); got != tt.want {
			t.Errorf("behindNAT(%s, %s) = %v; want %v", tt.src, tt.dst, got, tt.want)
		}
	}
}
