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
// the other. Conn.Check verifies a set once at start-up so that a typo
// fails then, not at the first knock; Conn.Add and Conn.Delete change
// elements. Changing sets needs CAP_NET_ADMIN.
package nftset
