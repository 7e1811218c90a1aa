package nftset

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"portknock/internal/netnstest"
)

// ruleset declares the sets the kernel tests use; nothing refers to them
// from a chain, as no packet is sent.
const ruleset = `
table inet fw {
	set knock4 { type ipv4_addr; flags timeout; }
	set knock6 { type ipv6_addr; flags timeout; }
	set typeof4 { typeof ip saddr; flags timeout; }
	set default4 { type ipv4_addr; timeout 1h; }
	set small4 { type ipv4_addr; size 2; flags timeout; }
	set plain4 { type ipv4_addr; }
	set ports { type inet_service; flags timeout; }
	set pairs { type ipv4_addr . inet_service; flags timeout; }
	set ranges4 { type ipv4_addr; flags interval, timeout; }
	map verdicts4 { type ipv4_addr : verdict; flags timeout; }
}
table ip filter {
	set allow { type ipv4_addr; flags timeout; }
	set wrong6 { type ipv6_addr; flags timeout; }
}
table ip6 filter {
	set allow6 { type ipv6_addr; flags timeout; }
	set wrong4 { type ipv4_addr; flags timeout; }
}
`

// kernel is one test's private firewall: a network namespace with the
// ruleset loaded, a Conn working on it, and the namespace's fd for
// reading sets back.
type kernel struct {
	ns   *netnstest.NS
	fd   int
	conn *Conn
}

func newKernel(t *testing.T) *kernel {
	t.Helper()
	netnstest.Require(t, "ip", "nft")
	ns := netnstest.New(t)
	file := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(file, []byte(ruleset), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "-f", file)
	f, err := os.Open(filepath.Join("/run/netns", ns.Name))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after New's cleanup, so it runs before the namespace
	// is deleted.
	t.Cleanup(func() { f.Close() })
	return &kernel{ns: ns, fd: int(f.Fd()), conn: New(WithNetNS(int(f.Fd())))}
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// elements reads the set's elements from the kernel, by address.
func (k *kernel) elements(t *testing.T, ref Ref) map[netip.Addr]nftables.SetElement {
	t.Helper()
	nc, err := nftables.New(nftables.WithNetNSFd(k.fd))
	if err != nil {
		t.Fatal(err)
	}
	els, err := nc.GetSetElements(ref.set())
	if err != nil {
		t.Fatalf("reading nft set %q: %v", ref, err)
	}
	m := make(map[netip.Addr]nftables.SetElement, len(els))
	for _, e := range els {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			t.Fatalf("nft set %q has an element with key %x, not an address", ref, e.Key)
		}
		// A refresh that left the old element beside the new one
		// would show here.
		if _, dup := m[a]; dup {
			t.Fatalf("nft set %q lists %v twice: %+v", ref, a, els)
		}
		m[a] = e
	}
	return m
}

// element reads one element back, failing t when it is missing.
func (k *kernel) element(t *testing.T, ref Ref, addr string) nftables.SetElement {
	t.Helper()
	els := k.elements(t, ref)
	e, ok := els[netip.MustParseAddr(addr)]
	if !ok {
		t.Fatalf("nft set %q has no element %s; it has %v", ref, addr, els)
	}
	return e
}

// nftElements reads the set's elements with nft itself, as the
// administrator would see them: address to timeout in seconds.
func (k *kernel) nftElements(t *testing.T, ref Ref) map[string]int {
	t.Helper()
	out := k.ns.Run(t, "nft", "-j", "list", "set", ref.Family.String(), ref.Table, ref.Set)
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j list set: %v\n%s", err, out)
	}
	m := map[string]int{}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			// An element with a timeout is {"elem": {"val": ..., "timeout": s}}.
			var e struct {
				Elem struct {
					Val     string `json:"val"`
					Timeout int    `json:"timeout"`
				} `json:"elem"`
			}
			if err := json.Unmarshal(raw, &e); err != nil || e.Elem.Val == "" {
				t.Fatalf("nft -j list set: element %s is not a timed address (%v)", raw, err)
			}
			m[e.Elem.Val] = e.Elem.Timeout
		}
	}
	return m
}

func TestCheck(t *testing.T) {
	k := newKernel(t)
	tests := []struct {
		ref  string
		ipv6 bool
		err  string // the whole message; "" for success
	}{
		{"inet fw knock4", false, ""},
		{"inet fw knock6", true, ""},
		{"inet fw typeof4", false, ""},
		{"inet fw default4", false, ""},
		{"ip filter allow", false, ""},
		{"ip6 filter allow6", true, ""},

		{"inet nope knock4", false, `nft set "inet nope knock4": no such table "inet nope"`},
		// A table of that name exists, but in another family.
		{"ip fw knock4", false, `nft set "ip fw knock4": no such table "ip fw"`},
		{"inet fw nope", false, `nft set "inet fw nope": no such set`},
		{"inet fw plain4", false, `nft set "inet fw plain4" has no timeout flag (declare it with "flags timeout")`},
		{"inet fw knock4", true, `nft set "inet fw knock4" holds ipv4_addr, not ipv6_addr`},
		{"inet fw knock6", false, `nft set "inet fw knock6" holds ipv6_addr, not ipv4_addr`},
		{"ip6 filter allow6", false, `nft set "ip6 filter allow6" holds ipv6_addr, not ipv4_addr`},
		{"inet fw ports", false, `nft set "inet fw ports" holds inet_service, not ipv4_addr`},
		{"inet fw pairs", false, `nft set "inet fw pairs" holds ipv4_addr . inet_service, not ipv4_addr`},
		{"inet fw ranges4", false, `nft set "inet fw ranges4" has the interval flag, which single addresses do not need (remove "flags interval")`},
		{"inet fw verdicts4", false, `nft set "inet fw verdicts4" is a map, not a set (declare a set of ipv4_addr)`},
		// The kernel takes these, but no packet of the set's family
		// ever reaches the table.
		{"ip6 filter wrong4", false, `nft set "ip6 filter wrong4" holds ipv4_addr, but an ip6 table never sees IPv4 packets (declare the set in an inet or ip table)`},
		{"ip filter wrong6", true, `nft set "ip filter wrong6" holds ipv6_addr, but an ip table never sees IPv6 packets (declare the set in an inet or ip6 table)`},
	}
	for _, tt := range tests {
		err := k.conn.Check(mustRef(t, tt.ref), tt.ipv6)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Check(%q, ipv6 %v): %v", tt.ref, tt.ipv6, err)
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("Check(%q, ipv6 %v) = %v, want %q", tt.ref, tt.ipv6, err, tt.err)
		}
	}
	if err := k.conn.Check(Ref{}, false); err == nil || !strings.Contains(err.Error(), "invalid family") {
		t.Errorf("Check of the zero Ref = %v, want an invalid family error", err)
	}
}

func TestAddSetsTimeout(t *testing.T) {
	k := newKernel(t)
	ref := mustRef(t, "inet fw knock4")
	before := time.Now()
	if err := k.conn.Add(ref, netip.MustParseAddr("192.0.2.1"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e := k.element(t, ref, "192.0.2.1")
	if e.Timeout != 30*time.Second {
		t.Errorf("timeout %v, want 30s", e.Timeout)
	}
	if elapsed := time.Since(before); e.Expires > 30*time.Second || e.Expires < 30*time.Second-elapsed-time.Second {
		t.Errorf("expires in %v, want just under 30s", e.Expires)
	}
	if els := k.elements(t, ref); len(els) != 1 {
		t.Errorf("set holds %d elements, want 1: %v", len(els), els)
	}
	// nft shows the same element, in its own words.
	if got := k.nftElements(t, ref); len(got) != 1 || got["192.0.2.1"] != 30 {
		t.Errorf("nft lists %v, want 192.0.2.1 with timeout 30", got)
	}
}

func TestAddRefreshes(t *testing.T) {
	k := newKernel(t)
	ref := mustRef(t, "inet fw knock4")
	addr := netip.MustParseAddr("192.0.2.1")
	// Long enough that the element outlives a busy machine's stalls
	// between the wait below and the re-adds.
	const timeout = 10 * time.Second
	if err := k.conn.Add(ref, addr, timeout); err != nil {
		t.Fatal(err)
	}
	// Wait until the countdown is visibly under way.
	netnstest.Eventually(t, timeout, "expiry counting down below 9s", func() bool {
		return k.element(t, ref, "192.0.2.1").Expires < timeout-time.Second
	})
	k.readd(t, ref, addr, timeout)
	// Longer and shorter timeouts both replace the old one.
	k.readd(t, ref, addr, time.Hour)
	k.readd(t, ref, addr, 10*time.Second)
	if els := k.elements(t, ref); len(els) != 1 {
		t.Errorf("set holds %d elements after refreshes, want 1: %v", len(els), els)
	}
}

// tick bounds the kernel's rounding of times: two clock ticks at 100 Hz.
const tick = 20 * time.Millisecond

// readd adds addr again for timeout and checks that the element now has
// that timeout and expires in it, counted from before the call, so that
// a slow machine cannot make a refresh look missing: without one it
// would expire in at most its expiry before, minus the same time.
func (k *kernel) readd(t *testing.T, ref Ref, addr netip.Addr, timeout time.Duration) {
	t.Helper()
	was := k.element(t, ref, addr.String()).Expires
	start := time.Now()
	if err := k.conn.Add(ref, addr, timeout); err != nil {
		t.Fatalf("re-adding %v for %v: %v", addr, timeout, err)
	}
	e := k.element(t, ref, addr.String())
	took := time.Since(start)
	if e.Timeout != timeout || e.Expires > timeout || e.Expires < timeout-took-tick {
		t.Errorf("re-added %v for %v (it expired in %v before; adding and reading took %v): timeout %v, expires in %v",
			addr, timeout, was, took, e.Timeout, e.Expires)
	}
}

func TestKernelExpires(t *testing.T) {
	k := newKernel(t)
	ref := mustRef(t, "inet fw knock4")
	addr := netip.MustParseAddr("192.0.2.1")
	if err := k.conn.Add(ref, addr, time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	k.element(t, ref, "192.0.2.1")
	netnstest.Eventually(t, 10*time.Second, "the kernel removing the element", func() bool {
		return len(k.elements(t, ref)) == 0
	})
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("element gone after %v, before its 1s timeout", d)
	}
	if got := k.nftElements(t, ref); len(got) != 0 {
		t.Errorf("nft still lists %v", got)
	}
	if err := k.conn.Delete(ref, addr); !errors.Is(err, ErrNoElement) {
		t.Errorf("Delete of the expired element = %v, want ErrNoElement", err)
	}
}

func TestDelete(t *testing.T) {
	k := newKernel(t)
	ref := mustRef(t, "inet fw knock4")
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for _, addr := range []netip.Addr{a, b} {
		if err := k.conn.Add(ref, addr, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.conn.Delete(ref, a); err != nil {
		t.Fatal(err)
	}
	els := k.elements(t, ref)
	if _, ok := els[a]; ok || len(els) != 1 {
		t.Errorf("after deleting %v the set holds %v, want only %v", a, els, b)
	}
	err := k.conn.Delete(ref, a)
	if !errors.Is(err, ErrNoElement) {
		t.Fatalf("second Delete = %v, want ErrNoElement", err)
	}
	if want := `nft set "inet fw knock4": deleting 192.0.2.1: not in the set (expired, or removed already)`; err.Error() != want {
		t.Errorf("second Delete = %q, want %q", err, want)
	}
	// A missing set or table is an error, not a missing element.
	for ref, want := range map[string]string{
		"inet fw nope":     `deleting 192.0.2.2: nft set "inet fw nope": no such set`,
		"inet nope knock4": `deleting 192.0.2.2: nft set "inet nope knock4": no such table "inet nope"`,
	} {
		err := k.conn.Delete(mustRef(t, ref), b)
		if err == nil || errors.Is(err, ErrNoElement) || err.Error() != want {
			t.Errorf("Delete from %q = %v, want %q", ref, err, want)
		}
	}
	// Deleting needs no timeout flag.
	plain := mustRef(t, "inet fw plain4")
	k.ns.Run(t, "nft", "add", "element", "inet", "fw", "plain4", "{ 192.0.2.2 }")
	if err := k.conn.Delete(plain, b); err != nil {
		t.Errorf("Delete from a set without timeouts: %v", err)
	}
	if err := k.conn.Delete(plain, b); !errors.Is(err, ErrNoElement) {
		t.Errorf("second Delete from a set without timeouts = %v, want ErrNoElement", err)
	}
}

// Every family of table and both key types, each through Add, a read
// back and Delete.
func TestFamilies(t *testing.T) {
	k := newKernel(t)
	tests := []struct {
		ref, addr string
	}{
		{"inet fw knock4", "192.0.2.1"},
		{"inet fw knock6", "2001:db8::1"},
		{"inet fw typeof4", "192.0.2.3"},
		{"inet fw default4", "192.0.2.4"},
		{"ip filter allow", "192.0.2.5"},
		{"ip6 filter allow6", "2001:db8::5"},
		{"ip6 filter allow6", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		ref, addr := mustRef(t, tt.ref), netip.MustParseAddr(tt.addr)
		if err := k.conn.Check(ref, addr.Is6()); err != nil {
			t.Errorf("%s: Check: %v", tt.ref, err)
			continue
		}
		if err := k.conn.Add(ref, addr, time.Minute); err != nil {
			t.Errorf("%s: Add %s: %v", tt.ref, tt.addr, err)
			continue
		}
		e := k.element(t, ref, tt.addr)
		if e.Timeout != time.Minute {
			t.Errorf("%s: %s has timeout %v, want 1m", tt.ref, tt.addr, e.Timeout)
		}
		if got := k.nftElements(t, ref)[tt.addr]; got != 60 {
			t.Errorf("%s: nft lists %s with timeout %d, want 60", tt.ref, tt.addr, got)
		}
		if err := k.conn.Delete(ref, addr); err != nil {
			t.Errorf("%s: Delete %s: %v", tt.ref, tt.addr, err)
		}
		if _, ok := k.elements(t, ref)[addr]; ok {
			t.Errorf("%s: %s still there after Delete", tt.ref, tt.addr)
		}
	}
}

func TestMappedAddressIsIPv4(t *testing.T) {
	k := newKernel(t)
	ref := mustRef(t, "inet fw knock4")
	mapped := netip.MustParseAddr("::ffff:192.0.2.9")
	if err := k.conn.Add(ref, mapped, time.Minute); err != nil {
		t.Fatal(err)
	}
	k.element(t, ref, "192.0.2.9")
	if err := k.conn.Delete(ref, mapped); err != nil {
		t.Fatal(err)
	}
	if els := k.elements(t, ref); len(els) != 0 {
		t.Errorf("set holds %v after deleting the mapped address", els)
	}
	// An IPv4 address, mapped or not, has no place in an ipv6_addr set.
	err := k.conn.Add(mustRef(t, "inet fw knock6"), mapped, time.Minute)
	if want := `adding 192.0.2.9: nft set "inet fw knock6" holds ipv6_addr, not ipv4_addr`; err == nil || err.Error() != want {
		t.Errorf("adding a mapped address to an ipv6 set = %v, want %q", err, want)
	}
}

func TestAddErrors(t *testing.T) {
	k := newKernel(t)
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		ref     string
		addr    netip.Addr
		timeout time.Duration
		err     string // the whole message
	}{
		{"inet fw knock6", v4, time.Minute, `adding 192.0.2.1: nft set "inet fw knock6" holds ipv6_addr, not ipv4_addr`},
		{"inet fw knock4", v6, time.Minute, `adding 2001:db8::1: nft set "inet fw knock4" holds ipv4_addr, not ipv6_addr`},
		{"inet fw plain4", v4, time.Minute, `adding 192.0.2.1: nft set "inet fw plain4" has no timeout flag (declare it with "flags timeout")`},
		{"inet fw ports", v4, time.Minute, `adding 192.0.2.1: nft set "inet fw ports" holds inet_service, not ipv4_addr`},
		{"inet fw ranges4", v4, time.Minute, `adding 192.0.2.1: nft set "inet fw ranges4" has the interval flag, which single addresses do not need (remove "flags interval")`},
		{"ip6 filter wrong4", v4, time.Minute, `adding 192.0.2.1: nft set "ip6 filter wrong4" holds ipv4_addr, but an ip6 table never sees IPv4 packets (declare the set in an inet or ip table)`},
		{"ip filter wrong6", v6, time.Minute, `adding 2001:db8::1: nft set "ip filter wrong6" holds ipv6_addr, but an ip table never sees IPv6 packets (declare the set in an inet or ip6 table)`},
		{"inet fw nope", v4, time.Minute, `adding 192.0.2.1: nft set "inet fw nope": no such set`},
		{"inet nope knock4", v4, time.Minute, `adding 192.0.2.1: nft set "inet nope knock4": no such table "inet nope"`},
		{"inet fw knock4", v4, 0, `nft set "inet fw knock4": adding 192.0.2.1: timeout 0s is not positive`},
		{"inet fw knock4", v4, -time.Second, `nft set "inet fw knock4": adding 192.0.2.1: timeout -1s is not positive`},
		{"inet fw knock4", netip.Addr{}, time.Minute, `nft set "inet fw knock4": adding: no address`},
	}
	for _, tt := range tests {
		err := k.conn.Add(mustRef(t, tt.ref), tt.addr, tt.timeout)
		if err == nil || err.Error() != tt.err {
			t.Errorf("Add(%q, %v, %v) = %v, want %q", tt.ref, tt.addr, tt.timeout, err, tt.err)
		}
	}
	// A full set says so, and refreshing an element in it still works.
	small := mustRef(t, "inet fw small4")
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.1"} {
		if err := k.conn.Add(small, netip.MustParseAddr(a), time.Minute); err != nil {
			t.Errorf("adding %s to a set of size 2: %v", a, err)
		}
	}
	err := k.conn.Add(small, netip.MustParseAddr("192.0.2.3"), time.Minute)
	if want := `nft set "inet fw small4" is full: adding 192.0.2.3: raise its "size" or shorten timeouts: `; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("adding a third address to a set of size 2 = %v, want an error starting %q", err, want)
	}
	// The failed batches left nothing behind anywhere.
	for _, r := range []string{"inet fw knock4", "inet fw knock6", "inet fw plain4", "inet fw ranges4", "ip6 filter wrong4", "ip filter wrong6"} {
		if els := k.elements(t, mustRef(t, r)); len(els) != 0 {
			t.Errorf("nft set %q holds %v after failed adds", r, els)
		}
	}
}

// A firewall reload can replace a set after Check passed; Add must see
// the set as it is now, and change nothing in one it cannot use. Into a
// set that has gained the interval flag the kernel would take the lone
// address as a range up to 255.255.255.255, and into one without the
// timeout flag as an element that never expires.
func TestAddRechecksSet(t *testing.T) {
	for _, tt := range []struct {
		name, decl, err string
	}{
		{"interval", "type ipv4_addr; flags interval, timeout;",
			`adding 192.0.2.5: nft set "inet fw knock4" has the interval flag, which single addresses do not need (remove "flags interval")`},
		{"no timeout", "type ipv4_addr;",
			`adding 192.0.2.5: nft set "inet fw knock4" has no timeout flag (declare it with "flags timeout")`},
		{"other family", "type ipv6_addr; flags timeout;",
			`adding 192.0.2.5: nft set "inet fw knock4" holds ipv6_addr, not ipv4_addr`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := newKernel(t)
			ref := mustRef(t, "inet fw knock4")
			if err := k.conn.Check(ref, false); err != nil {
				t.Fatal(err)
			}
			// One nft command line is one transaction, as a reload is.
			k.ns.Run(t, "nft", "delete set inet fw knock4; add set inet fw knock4 { "+tt.decl+" }")
			err := k.conn.Add(ref, netip.MustParseAddr("192.0.2.5"), time.Minute)
			if err == nil || err.Error() != tt.err {
				t.Errorf("Add after the set became %q = %v, want %q", tt.decl, err, tt.err)
			}
			if out := k.ns.Run(t, "nft", "list", "set", "inet", "fw", "knock4"); strings.Contains(out, "elements") {
				t.Errorf("the refused Add left an element:\n%s", out)
			}
		})
	}
}

// The daemon's workers call one Conn at once; every call must land.
func TestConcurrent(t *testing.T) {
	k := newKernel(t)
	ref4, ref6 := mustRef(t, "inet fw knock4"), mustRef(t, "inet fw knock6")
	const workers, each = 8, 16
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				a4 := netip.AddrFrom4([4]byte{198, 51, byte(w), byte(i)})
				a6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(w), 15: byte(i)})
				for _, op := range []struct {
					ref  Ref
					addr netip.Addr
				}{{ref4, a4}, {ref6, a6}} {
					if err := k.conn.Add(op.ref, op.addr, time.Hour); err != nil {
						errs <- err
					}
					// Refresh and remove every other one, racing with
					// the other workers' adds.
					if i%2 == 1 {
						if err := k.conn.Add(op.ref, op.addr, 2*time.Hour); err != nil {
							errs <- err
						}
						if err := k.conn.Delete(op.ref, op.addr); err != nil {
							errs <- fmt.Errorf("deleting: %w", err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, ref := range []Ref{ref4, ref6} {
		els := k.elements(t, ref)
		if len(els) != workers*each/2 {
			t.Errorf("nft set %q holds %d elements, want %d", ref, len(els), workers*each/2)
		}
		for a, e := range els {
			if b := a.AsSlice(); b[len(b)-1]%2 != 0 || e.Timeout != time.Hour {
				t.Errorf("nft set %q holds %v with timeout %v; odd ones were deleted, even ones have 1h", ref, a, e.Timeout)
			}
		}
	}
}

// Without CAP_NET_ADMIN the kernel refuses, and the error says what is
// missing. Capabilities belong to a thread, so one locked thread drops
// it and is then thrown away.
func TestNoCapNetAdmin(t *testing.T) {
	k := newKernel(t)
	ref := mustRef(t, "inet fw knock4")
	type result struct{ check, add, del error }
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with the
		// goroutine instead of reusing it without the capability.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- result{check: fmt.Errorf("capget: %w", err)}
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- result{check: fmt.Errorf("capset: %w", err)}
			return
		}
		addr := netip.MustParseAddr("192.0.2.1")
		done <- result{
			check: k.conn.Check(ref, false),
			add:   k.conn.Add(ref, addr, time.Minute),
			del:   k.conn.Delete(ref, addr),
		}
	}()
	r := <-done
	for name, err := range map[string]error{"Check": r.check, "Add": r.add, "Delete": r.del} {
		if err == nil || !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "CAP_NET_ADMIN is needed") ||
			!strings.HasPrefix(err.Error(), `nft set "inet fw knock4": `) {
			t.Errorf("%s without CAP_NET_ADMIN = %v, want a permission error that names the set and CAP_NET_ADMIN", name, err)
		}
	}
	if els := k.elements(t, ref); len(els) != 0 {
		t.Errorf("set holds %v after a refused Add", els)
	}
}
