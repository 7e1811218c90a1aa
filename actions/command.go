// Package actions turns a sequence.Match into effects on the system: it runs
// a door's start command, schedules its stop command, and keeps the state
// that must outlive one knock, such as knockd's one-time sequence files.
//
// Commands never run on the matcher's goroutine. The Runner hands start
// commands to a fixed pool of workers through a bounded queue, so a slow or
// hanging command can delay other starts but never the reading of knocks,
// and a flood of matches costs a counter, not memory. Stop commands run on
// a bounded set of goroutines of their own, so a door closes on time however
// many starts are waiting, and a stop that fails is retried with backoff
// before it is given up with an error saying the door may still be open.
package actions

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"portknock/config"
	"portknock/nftset"
	"portknock/sequence"
)

// Command is what a door runs, as the configuration describes it: a
// Shell line run by /bin/sh -c, or an Argv exec'd directly.
type Command = config.Command

// Door is what the Runner needs to know about one door: its commands and
// how long it stays open.
type Door struct {
	Name string
	// Start and Stop serve IPv4 sources, Start6 and Stop6 IPv6 ones, with
	// no fallback between them: the configuration already copies the IPv4
	// command into an unset _6 one (as knockd does), so an empty Start6 here
	// means the administrator asked for nothing to run for IPv6.
	Start, Start6, Stop, Stop6 Command
	// CmdTimeout, together with a Stop command, closes the door this long
	// after the open. Without both, a knock only runs Start.
	CmdTimeout time.Duration
	// Reknock is what a knock does while the door is open for its source;
	// the zero value extends, as config.ReknockExtend.
	Reknock config.Reknock
	// Set and Set6 are nftables sets IPv4 and IPv6 sources are added to,
	// with CmdTimeout as the element timeout; zero Refs for none.
	Set, Set6 nftset.Ref
}

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

// Substitute replaces the placeholders in c for one match: %IP% with the
// source address, %DOOR% with the door name, %PORT% and %PROTO% with the
// last knock's port and protocol.
//
// The address is printed from a netip.Addr with its zone removed, and the
// port and protocol are a number and "tcp"/"udp", so none of them can carry
// shell syntax into a Shell command. The door name comes from the
// administrator's configuration and is inserted as written. Argv elements are
// substituted one by one and never re-split, so a value stays one argument.
func Substitute(c Command, m sequence.Match) Command {
	r := replacerFor(m)
	if c.Shell != "" {
		return Command{Shell: r.Replace(c.Shell)}
	}
	if len(c.Argv) == 0 {
		return Command{}
	}
	argv := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		argv[i] = r.Replace(a)
	}
	return Command{Argv: argv}
}

func replacerFor(m sequence.Match) *strings.Replacer {
	ip := ""
	if src := sequence.NormalizeAddr(m.Src); src.IsValid() {
		ip = src.String()
	}
	port := ""
	if m.Last.Port != 0 {
		port = strconv.Itoa(int(m.Last.Port))
	}
	proto := ""
	// Only the two known names: an invalid Proto prints as "proto(N)", and
	// parentheses mean something to the shell.
	if m.Last.Proto == sequence.TCP || m.Last.Proto == sequence.UDP {
		proto = m.Last.Proto.String()
	}
	return strings.NewReplacer(
		"%IP%", ip,
		"%DOOR%", m.Door,
		"%PORT%", port,
		"%PROTO%", proto,
	)
}

// validate reports a Command that sets both forms, which the config loader
// should have refused; the Runner then runs neither rather than guess.
// validateCommand refuses a command that could not be run as meant.
func validateCommand(c Command) error {
	if c.Shell != "" && len(c.Argv) > 0 {
		return fmt.Errorf("command sets both a shell line and an argv")
	}
	if len(c.Argv) > 0 && c.Argv[0] == "" {
		return fmt.Errorf("command argv has an empty program name")
	}
	return nil
}
