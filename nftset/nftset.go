package nftset

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ErrNoElement is what Delete returns, wrapped, when the address is not in
// the set: it expired or was removed already. For a close that is
// success, and callers test for it with errors.Is, as with
// fs.ErrNotExist after os.Remove.
var ErrNoElement = errors.New("not in the set (expired, or removed already)")

// elementKey is the set key for addr: 4 bytes for IPv4, 16 for IPv6, in
// network order as the kernel compares them. An IPv4-mapped IPv6 address
// is the IPv4 peer it stands for, and a zone has no place in a key.
func elementKey(addr netip.Addr) (key []byte, ipv6 bool, err error) {
	if !addr.IsValid() {
		return nil, false, errors.New("no address")
	}
	a := addr.Unmap().WithZone("")
	if a.Is4() {
		b := a.As4()
		return b[:], false, nil
	}
	b := a.As16()
	return b[:], true, nil
}

// elementTimeout is the timeout as netlink carries it: whole
// milliseconds, rounded up so that a timeout under one millisecond does
// not become none at all.
func elementTimeout(d time.Duration) (time.Duration, error) {
	if d <= 0 {
		return 0, fmt.Errorf("timeout %v is not positive", d)
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond), nil
}

// keyType names the nft type of a set that holds IPv4 or IPv6 keys.
func keyType(ipv6 bool) string {
	if ipv6 {
		return "ipv6_addr"
	}
	return "ipv4_addr"
}

// setInfo is what decides whether a set can take knock addresses, apart
// from the library's representation so the decision can be tested
// without a kernel.
type setInfo struct {
	keyType  string // nft type name, "ipv4_addr . inet_service" for concatenations
	timeout  bool   // "flags timeout", or a default timeout, which implies it
	isMap    bool
	interval bool
	constant bool
}

// problem says why the set cannot take addresses of the family, or nil.
// Delete does not need the timeout flag, so it asks without it.
func (s setInfo) problem(r Ref, ipv6, needTimeout bool) error {
	want := keyType(ipv6)
	switch {
	case s.isMap:
		return fmt.Errorf("nft set %q is a map, not a set (declare a set of %s)", r, want)
	case s.keyType != want:
		return fmt.Errorf("nft set %q holds %s, not %s", r, s.keyType, want)
	case r.Family == FamilyIP6 && !ipv6, r.Family == FamilyIP && ipv6:
		// The kernel takes any key type in any table, but a rule in an
		// ip6 table never sees an IPv4 packet, nor one in an ip table
		// an IPv6 packet: the door could never open.
		return fmt.Errorf("nft set %q holds %s, but an %s table never sees %s packets (declare the set in an inet or %s table)",
			r, want, r.Family, familyName(ipv6), otherFamily(r.Family))
	case s.constant:
		return fmt.Errorf("nft set %q is constant and cannot change (remove \"flags constant\")", r)
	case s.interval:
		// Interval sets store ranges as pairs of boundary elements; a
		// single address added there is the start of a range to the
		// end of the address space, which would open the door to all
		// of it.
		return fmt.Errorf("nft set %q has the interval flag, which single addresses do not need (remove \"flags interval\")", r)
	case needTimeout && !s.timeout:
		return fmt.Errorf("nft set %q has no timeout flag (declare it with \"flags timeout\")", r)
	}
	return nil
}

// familyName is how messages name the packets an address family's set
// matches.
func familyName(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

// otherFamily is the single-family table that sees the packets f does
// not.
func otherFamily(f Family) Family {
	if f == FamilyIP6 {
		return FamilyIP
	}
	return FamilyIP6
}
