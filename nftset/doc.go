// Package nftset is the native nftables set action: it adds a knocking
// address to a named set with a timeout, so that the kernel itself closes
// the door when the time is up, even if the daemon has died by then.
//
// It talks nf_tables netlink directly (github.com/google/nftables): no nft
// binary, no shell. The set is declared by the administrator's ruleset,
// for example
//
//	table inet fw {
//		set knock4 { type ipv4_addr; flags timeout; }
//		set knock6 { type ipv6_addr; flags timeout; }
//	}
//
// and named here in nft's own words, "inet fw knock4" (see ParseRef).
// IPv4 and IPv6 addresses go to separate sets, as nft keys are one or
// the other. The table must see the set's family: inet, or ip for
// ipv4_addr and ip6 for ipv6_addr. Conn.Check verifies a set at start-up
// so that a typo fails then, not at the first knock; Conn.Add verifies it
// again before every change, as the firewall may have been reloaded
// since. Conn.Add and Conn.Delete change elements. Changing sets needs
// CAP_NET_ADMIN.
//
// A re-knock refreshes the element by making it anew: one atomic batch
// adds it (so that the delete cannot fail), deletes it and adds it with
// the new timeout, because a plain re-add with the same timeout does not
// restart the kernel's countdown. So whatever else the element carried,
// such as counters or a comment, is reset by a re-knock. The set has one
// element per address whichever door put it there: two doors sharing
// one set overwrite each other's timeouts, the later knock decides when
// the address leaves the set, and either door's close removes it. Give
// doors with different timeouts sets of their own.
package nftset
