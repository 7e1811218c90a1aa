package actions

import (
	"net/netip"
	"time"

	"portknock/nftset"
)

// Door is what the Runner needs to know about one door: its commands and
// how long it stays open.
type Door struct {
	Name string
	// Start and Stop serve IPv4 sources, Start6 and Stop6 IPv6 ones, with
	// no fallback between them: the configuration already copies the IPv4
	// command into an unset _6 one (as knockd does), so an empty Start6 here
	// means the administrator asked for nothing to run for IPv6.
	Start, Start6, Stop, Stop6 Command
	// CmdTimeout, together with a Stop command or a set, closes the door
	// this long after the open. Without either, a knock only runs Start.
	CmdTimeout time.Duration
	// Reknock is what a knock does while the door is open for its source;
	// the zero value extends, as ReknockExtend.
	Reknock Reknock
	// Set and Set6 are nftables sets IPv4 and IPv6 sources are added to,
	// with CmdTimeout as the element timeout; zero Refs for none.
	Set, Set6 nftset.Ref
}

// Reknock is what a completed knock does when its door is already open for
// the same address (and has a timed close). Every choice keeps a single
// close per open, so the door can never be left open by a close that
// removed only one of two firewall rules. The values are the words of the
// configuration's reknock key.
type Reknock string

const (
	// ReknockExtend moves the close to cmd_timeout from now and runs
	// nothing: no duplicate firewall rule (the default).
	ReknockExtend Reknock = "extend"
	// ReknockRerun runs the start command again and moves the close, for
	// start commands that are idempotent or refresh something.
	ReknockRerun Reknock = "rerun"
	// ReknockIgnore does nothing: the door closes cmd_timeout after the
	// first open, however often the address knocks meanwhile.
	ReknockIgnore Reknock = "ignore"
)

// Reknocks lists the accepted Reknock values, the default first.
func Reknocks() []Reknock { return []Reknock{ReknockExtend, ReknockRerun, ReknockIgnore} }

// setFor picks the nftables set for a source's family; ok is false when
// the door has none for it.
func (d *Door) setFor(src netip.Addr) (ref nftset.Ref, ok bool) {
	if src.Is6() && !src.Is4In6() {
		ref = d.Set6
	} else {
		ref = d.Set
	}
	return ref, ref != (nftset.Ref{})
}

// commandsFor picks the start and stop commands for a source's family.
func (d *Door) commandsFor(src netip.Addr) (start, stop Command) {
	if src.Is6() && !src.Is4In6() {
		return d.Start6, d.Stop6
	}
	return d.Start, d.Stop
}
