package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// DefaultMetricsAddr is the address the documentation suggests for
// [daemon] metrics: loopback, where only this host can scrape.
const DefaultMetricsAddr = "127.0.0.1:9917"

// CheckMetricsAddr validates a [daemon] metrics address: an IP literal or
// "localhost", and a port. Host names other than localhost are refused:
// which address they resolve to could change under the daemon, and with it
// who may read its counters. The warning is non-empty for an address other
// hosts can reach (the metrics name every door and count knocks from
// anywhere), which is allowed but should be a choice.
func CheckMetricsAddr(addr string) (warning string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("want host:port, such as %q: %v", DefaultMetricsAddr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return "", fmt.Errorf("port %q is not a number in 0..65535", port)
	}
	exposed := fmt.Sprintf("serves the metrics beyond this host (%s); anyone who can reach it sees every door's counters: keep it on loopback (%s) and reach it through a proxy or tunnel, or firewall the port", addr, DefaultMetricsAddr)
	switch host {
	case "localhost":
		return "", nil
	case "":
		return exposed, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", fmt.Errorf("host %q is not an IP address or localhost", host)
	}
	if !ip.Unmap().IsLoopback() {
		return exposed, nil
	}
	return "", nil
}
