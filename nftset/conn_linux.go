package nftset

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Conn changes nftables sets. It is safe for concurrent use: every call
// opens its own netlink socket and sends its own batch, so concurrent
// calls can neither read each other's replies nor flush each other's
// half-built batches, and the kernel applies each batch atomically.
type Conn struct {
	netns int
}

// Option configures a Conn.
type Option func(*Conn)

// WithNetNS makes the Conn work on the firewall of the network namespace
// open as fd, instead of the caller's own; tests use it to keep off the
// host's firewall. The caller keeps fd open while the Conn is used; 0
// means the caller's own namespace.
func WithNetNS(fd int) Option {
	return func(c *Conn) { c.netns = fd }
}

// New returns a Conn. It opens nothing yet, so it cannot fail; Check
// tells whether the sets are usable.
func New(opts ...Option) *Conn {
	c := &Conn{}
	for _, o := range opts {
		o(c)
	}
	return c
}

// nft returns a fresh library connection for one call. It dials its
// socket when a request is sent, and closes it after the reply.
func (c *Conn) nft(ref Ref) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if c.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(c.netns))
	}
	nc, err := nftables.New(opts...)
	if err != nil {
		return nil, explain(ref, "opening netlink", err)
	}
	return nc, nil
}

// table is the set's table as the library names it.
func (r Ref) table() *nftables.Table {
	f := nftables.TableFamilyINet
	switch r.Family {
	case FamilyIP:
		f = nftables.TableFamilyIPv4
	case FamilyIP6:
		f = nftables.TableFamilyIPv6
	}
	return &nftables.Table{Name: r.Table, Family: f}
}

// set is the set as the element calls need it: by name. HasTimeout makes
// the library send an element's timeout at all.
func (r Ref) set() *nftables.Set {
	return &nftables.Set{Table: r.table(), Name: r.Set, HasTimeout: true}
}

// Check tells whether the set exists and can take addresses of one
// family with timeouts: table and set are there, the set has the timeout
// flag and no interval flag, its key type is ipv4_addr (or ipv6_addr
// when ipv6 is set), and its table's family sees packets of that family.
// Its errors name the set in nft's words and say what to change. Check
// exists so that a mistake fails at start-up rather than at the first
// knock; Add checks again by itself.
func (c *Conn) Check(ref Ref, ipv6 bool) error {
	if err := ref.validate(); err != nil {
		return err
	}
	nc, err := c.nft(ref)
	if err != nil {
		return err
	}
	return checkSet(nc, ref, ipv6, true)
}

// checkSet looks the set up and says what keeps it from taking addresses
// of the family (with timeouts when needTimeout), or returns nil.
func checkSet(nc *nftables.Conn, ref Ref, ipv6, needTimeout bool) error {
	info, err := lookup(nc, ref)
	if err != nil {
		return err
	}
	return info.problem(ref, ipv6, needTimeout)
}

// lookup reads the set's declaration from the kernel.
func lookup(nc *nftables.Conn, ref Ref) (setInfo, error) {
	s, err := nc.GetSetByName(ref.table(), ref.Set)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return setInfo{}, explain(ref, "reading the set", err)
		}
		// The kernel says ENOENT for a missing table and for a missing
		// set alike; the user's fix differs.
		if _, terr := nc.ListTableOfFamily(ref.Table, ref.table().Family); errors.Is(terr, unix.ENOENT) {
			return setInfo{}, fmt.Errorf("nft set %q: no such table \"%s %s\"", ref, ref.Family, ref.Table)
		}
		return setInfo{}, fmt.Errorf("nft set %q: no such set", ref)
	}
	return setInfo{
		keyType:  s.KeyType.Name,
		timeout:  s.HasTimeout,
		isMap:    s.IsMap,
		interval: s.Interval,
		constant: s.Constant,
	}, nil
}

// explain wraps a netlink error, saying what is missing when the kernel
// refused for lack of privilege.
func explain(ref Ref, op string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("nft set %q: %s: permission denied: CAP_NET_ADMIN is needed (run as root, or as a dedicated user with AmbientCapabilities=CAP_NET_ADMIN): %w", ref, op, err)
	}
	return fmt.Errorf("nft set %q: %s: %w", ref, op, err)
}

// diagnose says what is wrong with the set after a change failed, or
// returns nil when the set looks right. The kernel answers ENOENT for a
// missing table, set or element alike, and EINVAL both for a key of the
// wrong length and for a timeout on a set without the flag; the set's
// declaration tells which.
func diagnose(nc *nftables.Conn, ref Ref, ipv6, needTimeout bool, op string) error {
	if err := checkSet(nc, ref, ipv6, needTimeout); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Add puts addr into the set for timeout, after which the kernel removes
// it by itself. An IPv4-mapped IPv6 address is added as the IPv4
// address, so it needs an ipv4_addr set, as every IPv4 address does. The
// timeout is sent in milliseconds, rounded up; the kernel keeps it in
// clock ticks, so it reads back rounded to those.
//
// Every Add looks the set up again and refuses, as Check would, a set
// that cannot take the address, before it sends anything: the firewall
// may have been reloaded since Check passed, and the kernel would take a
// lone address into a set that has gained "flags interval" as the start
// of a range to the end of the address space. Knocks are rare enough for
// the extra round trip.
//
// If addr is there already, its timeout starts again at the new value,
// longer or shorter. The element is made anew for that (see the package
// documentation), so counters or a comment the administrator put on it
// are lost, and the last Add wins: two doors sharing one set overwrite
// each other's timeouts for an address.
func (c *Conn) Add(ref Ref, addr netip.Addr, timeout time.Duration) error {
	if err := ref.validate(); err != nil {
		return err
	}
	key, ipv6, err := elementKey(addr)
	if err != nil {
		return fmt.Errorf("nft set %q: adding: %w", ref, err)
	}
	op := "adding " + addr.Unmap().WithZone("").String()
	timeout, err = elementTimeout(timeout)
	if err != nil {
		return fmt.Errorf("nft set %q: %s: %w", ref, op, err)
	}
	// A plain add does not restart the countdown of an element that is
	// there already: older kernels ignore the new timeout, newer ones
	// apply it only when it differs from the old one. So one batch adds
	// (so that the delete cannot fail), deletes, and adds again with the
	// timeout: the element is made anew on any kernel, and as the batch
	// is atomic the address is never out of the set meanwhile.
	nc, err := c.nft(ref)
	if err != nil {
		return err
	}
	switch err := checkSet(nc, ref, ipv6, true); {
	case errors.Is(err, os.ErrPermission):
		// Already names the set and what is missing.
		return err
	case err != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	set := ref.set()
	elem := []nftables.SetElement{{Key: key}}
	timed := []nftables.SetElement{{Key: key, Timeout: timeout}}
	if err := errors.Join(
		nc.SetAddElements(set, elem),
		nc.SetDeleteElements(set, elem),
		nc.SetAddElements(set, timed),
	); err != nil {
		return fmt.Errorf("nft set %q: %s: %w", ref, op, err)
	}
	err = nc.Flush()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrPermission):
		return explain(ref, op, err)
	}
	if derr := diagnose(nc, ref, ipv6, true, op); derr != nil {
		return derr
	}
	if errors.Is(err, unix.ENFILE) {
		// The kernel's answer when a set declared with a size is full.
		return fmt.Errorf("nft set %q is full: %s: raise its \"size\" or shorten timeouts: %w", ref, op, err)
	}
	return explain(ref, op, err)
}

// Delete removes addr from the set. When addr is not there, because it
// expired or was removed before, the error wraps ErrNoElement, which
// callers closing a door treat as success. Addresses are taken as by Add.
func (c *Conn) Delete(ref Ref, addr netip.Addr) error {
	if err := ref.validate(); err != nil {
		return err
	}
	key, ipv6, err := elementKey(addr)
	if err != nil {
		return fmt.Errorf("nft set %q: deleting: %w", ref, err)
	}
	a := addr.Unmap().WithZone("")
	op := "deleting " + a.String()
	nc, err := c.nft(ref)
	if err != nil {
		return err
	}
	if err := nc.SetDeleteElements(ref.set(), []nftables.SetElement{{Key: key}}); err != nil {
		return fmt.Errorf("nft set %q: %s: %w", ref, op, err)
	}
	err = nc.Flush()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrPermission):
		return explain(ref, op, err)
	}
	// The set is checked first, so that a missing set or table does not
	// pass for a missing element.
	if derr := diagnose(nc, ref, ipv6, false, op); derr != nil {
		return derr
	}
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nft set %q: %s: %w", ref, op, ErrNoElement)
	}
	return explain(ref, op, err)
}
