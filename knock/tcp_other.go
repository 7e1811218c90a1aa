//go:build !unix

package knock

import (
	"errors"
	"fmt"
	"net/netip"
)

// sendTCP is not available here: the only portable way to start a TCP
// connection waits for the handshake, and a dialer with a short timeout
// cannot tell a sent SYN from one that never left, so it could report a
// knock that did not happen.
func sendTCP(netip.AddrPort) error {
	return fmt.Errorf("TCP knocks need a Unix-like system: %w", errors.ErrUnsupported)
}
